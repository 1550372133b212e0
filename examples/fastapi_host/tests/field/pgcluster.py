"""Private PostgreSQL clusters on loopback for the field tests: a primary, a hot standby made
with ``pg_basebackup -R``, SIGKILL of every process of a cluster, promotion. Run as the
``postgres`` user when the tests run as root (PostgreSQL refuses root). Every cluster made here
is stopped by :meth:`Cluster.stop` (the tests call it in ``finally``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def pg_bin() -> Path:
    given = os.environ.get("FUNDCORE_TEST_PG_BIN")
    if given:
        return Path(given)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    assert found, "no PostgreSQL server binaries (apt-get install -y postgresql)"
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def as_owner(command: list[str]) -> list[str]:
    """``command`` run as ``postgres`` when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else command


def owned_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        shutil.chown(path, "postgres")
    return path


class Cluster:
    """One PostgreSQL server: ``data`` under ``base``, listening on 127.0.0.1:``port``."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.base = owned_dir(base)
        self.data = base / "data"
        self.port = port or free_port()
        self.log = base / "server.log"
        self.bin = pg_bin()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            as_owner([str(self.bin / command[0]), *command[1:]]),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def init(self, **settings: str) -> Cluster:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.configure(**settings)
        return self

    def configure(self, **settings: str) -> None:
        base = {
            "listen_addresses": f"'{LOOPBACK}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "max_connections": "100",
            "fsync": "on",
        }
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            for name, value in {**base, **settings}.items():
                conf.write(f"{name} = {value}\n")

    def standby_of(self, primary: Cluster) -> Cluster:
        """A hot standby of ``primary`` (``pg_basebackup -R``: standby.signal and primary_conninfo)."""
        self.run(
            "pg_basebackup",
            "-D",
            str(self.data),
            "-h",
            LOOPBACK,
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        )
        self.configure(synchronous_standby_names="''", hot_standby="on")
        return self

    def refuse_replication(self) -> None:
        """Refuse the standby's connections from now on (a ``reject`` line first in pg_hba.conf,
        reloaded) and end the one it has: the standby receives nothing more from this server,
        as when the network between them drops."""
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"host replication all {LOOPBACK}/32 reject\n" + hba.read_text())
        import psycopg

        with psycopg.connect(self.url, connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.3)  # the postmaster reloads on its own time
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_replication")

    def start(self) -> Cluster:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        return self

    def promote(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def pids(self) -> list[int]:
        """The postmaster and its children (from /proc)."""
        root = self.postmaster_pid()
        if root is None:
            return []
        found = [root]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its closing paren
            if int(stat.rsplit(")", 1)[1].split()[1]) == root:
                found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """SIGKILL every process of the server at once (a machine that dies)."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server if it runs (immediate mode: a test's cluster is thrown away); after
        :meth:`kill`, remove the small System V shared memory segment the dead server left
        (named in its postmaster.pid; a clean stop removes it itself)."""
        pid = self.postmaster_pid()
        if pid is not None and _alive(pid):
            subprocess.run(
                as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
                check=False,
            )
            return
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            shmid = int(lines[6].split()[1])  # line 7: "<key> <shmid>"
        except (OSError, IndexError, ValueError):
            return
        subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True, timeout=10, check=False)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"

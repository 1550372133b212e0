"""Runs every fundcore benchmark and writes benches/results.json and benches/RESULTS.md.

    .venv/bin/python benches/run_all.py [--quick] [--skip PARTS | --only PARTS]

PARTS is a comma list of rust, python, postgres, rest, pages, criterion, footprint, backup. The postgres part
needs FUNDCORE_TEST_DATABASE_URL: a PostgreSQL server and a role that may CREATE DATABASE
(`make bench` starts a private one with scripts/with-postgres.sh); each run gets a fresh database.

Steps (each bounded in time; the whole run stays under 12 minutes on 2 cores):
 1. machine facts and the fsync probe (4 KiB write + fsync, on the disk of benches/work/);
 2. the core's figures (`cargo bench --bench figures`): periodic ops/s, durable ops/s with
    1/4/16 callers, newest-50 history p50, per-call client()/subscribe() in Rust;
 3. criterion benches (`cargo bench --bench core`, short settings), cross-checks;
 4. footprint after 1,000,000 transactions (`cargo bench --bench footprint`);
 5. Python: fundcore and the sqlite3 baseline through the same driver (benches/py_driver.py),
    at the same durability; fundcore observed (metrics and logging on) against not, in two
    driver processes measured in alternating windows;
 6. PostgreSQL: the store from Rust (ops/s with 1/4/16 callers, round trips per operation) and
    from Python, fundcore against the psycopg baseline (benches/baseline/pg_engine.py) through
    the same driver, rounds alternating the two, with what each run cost (CPU, WAL fsyncs);
 7. REST: the FastAPI host under wrk (subscribe/cancel mix, 64 connections): one worker on the
    embedded store, then two workers on PostgreSQL (a fresh database), same load, same run; each
    with the host's fundcore.aio engine and with run_in_threadpool, in alternating rounds.
 8. Pages (benches/pages_bench.py): the client portal's GET / and GET /history timed alone and
    while wrk drives the REST mix on the same host; the bytes of the home page and its style sheet.
 9. Backup (`cargo bench --bench backup`): `Engine::backup` of a store of 1,000,000 transactions,
    on the idle store and under a steady subscribe/cancel load, and how long that load's calls
    took with and without the backup running.

Every number is a ratio or an absolute measured in this one run on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, "work")
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")
HOST_DIR = os.path.join(ROOT, "examples", "fastapi_host")

sys.path.insert(0, HERE)
import fsync_probe  # noqa: E402
import pages_bench  # noqa: E402

FIGURES: dict[str, dict] = {}  # name -> raw figure (value, unit, detail)
LOG: list[str] = []
SKIPPED: list[str] = []
PG_SERVER: dict = {}  # the PostgreSQL server's version and settings, when the postgres part ran
PARTS = ("rust", "python", "postgres", "rest", "pages", "criterion", "footprint", "backup")


def say(msg: str):
    stamp = time.strftime("%H:%M:%S")
    print(f"[bench {stamp}] {msg}", flush=True)
    LOG.append(msg)


def record(name: str, value, unit: str, **detail):
    FIGURES[name] = {"value": value, "unit": unit, "detail": detail}


def run(cmd, timeout, env=None, cwd=ROOT, check=True) -> subprocess.CompletedProcess:
    say("$ " + " ".join(cmd))
    p = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, text=True, capture_output=True)
    if check and p.returncode != 0:
        tail = (p.stdout[-2000:] + "\n" + p.stderr[-3000:]).strip()
        raise RuntimeError(f"{cmd[0]} exited {p.returncode}:\n{tail}")
    return p


# ----------------------------------------------------------------------------- machine
def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, text=True, capture_output=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - machine facts are best effort
        return ""


def machine() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    os.makedirs(WORK, exist_ok=True)
    src, fstype = (sh(f"df --output=source,fstype {WORK} | tail -1").split() + ["?", "?"])[:2]
    dev = os.path.basename(src)
    base = re.sub(r"p?\d+$", "", dev) if not os.path.exists(f"/sys/block/{dev}") else dev
    rota = sh(f"cat /sys/block/{base}/queue/rotational 2>/dev/null")
    size = sh(f"lsblk -dno SIZE /dev/{base} 2>/dev/null")
    model = sh(f"cat /sys/block/{base}/device/model 2>/dev/null")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "disk": f"{src} ({fstype}{', ' + size if size else ''}{', ' + model if model else ''}"
                f"{', rotational' if rota == '1' else ', non-rotational' if rota == '0' else ''})",
        "python": platform.python_version(),
        "rustc": sh("rustc --version"),
        "loadavg_at_start": sh("cut -d' ' -f1-3 /proc/loadavg"),
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ----------------------------------------------------------------------------- Rust
def cargo_bench(bench: str, args: list[str], env_extra: dict, timeout: int) -> list[dict]:
    out = tempfile.NamedTemporaryFile(prefix=f"{bench}-", suffix=".jsonl", dir=WORK, delete=False)
    out.close()
    env = dict(os.environ, FUNDCORE_BENCH_OUT=out.name, FUNDCORE_BENCH_DIR=WORK, **env_extra)
    if "FUNDCORE_BENCH_DATABASE_URL" not in env_extra:
        env.pop("FUNDCORE_BENCH_DATABASE_URL", None)
    try:
        run(["cargo", "bench", "-q", "-p", "fundcore-benches", "--bench", bench, "--", *args], timeout, env=env)
        with open(out.name) as f:
            return [json.loads(line) for line in f if line.strip()]
    finally:
        os.unlink(out.name)


def rust_figures(quick: bool):
    secs = "1.5" if quick else "3"
    # every figure but the PostgreSQL ones, which the postgres part measures on its own server
    for fig in cargo_bench("figures", ["periodic", "observe", "durable", "history", "calls", "sled"],
                           {"FIGURES_SECONDS": secs}, timeout=300):
        name, value, unit = fig.pop("name"), fig.pop("value"), fig.pop("unit")
        record(name, value, unit, **fig)


def target_dir() -> str:
    p = run(["cargo", "metadata", "--format-version", "1", "--no-deps"], 120)
    return json.loads(p.stdout)["target_directory"]


def criterion(quick: bool):
    t = "1" if quick else "2"
    cargo_bench("core", ["--warm-up-time", "1", "--measurement-time", t, "--noplot"], {}, timeout=300)
    base = os.path.join(target_dir(), "criterion")
    wanted = {
        ("periodic", "subscribe_or_cancel_1thread"): ("criterion_periodic_1thread_ops", "ops/s"),
        ("durable", "subscribe_or_cancel", "1"): ("criterion_durable_1threads_ops", "ops/s"),
        ("durable", "subscribe_or_cancel", "4"): ("criterion_durable_4threads_ops", "ops/s"),
        ("durable", "subscribe_or_cancel", "16"): ("criterion_durable_16threads_ops", "ops/s"),
        ("history_newest_50_of_100000",): ("criterion_history_newest50_median", "µs"),
        ("client_read",): ("criterion_client_read_median", "µs"),
    }
    for parts, (name, unit) in wanted.items():
        path = os.path.join(base, *parts, "new", "estimates.json")
        try:
            with open(path) as f:
                est = json.load(f)
        except OSError:
            continue
        ns = est["median"]["point_estimate"]
        value = 1e9 / ns if unit == "ops/s" else ns / 1e3
        record(name, value, unit, source="criterion median")


def footprint(quick: bool):
    env = {"FOOTPRINT_MAX_SECONDS": "60" if quick else "170"}
    if quick:
        env["FOOTPRINT_TRANSACTIONS"] = "200000"
    for fig in cargo_bench("footprint", [], env, timeout=420):
        name, value, unit = fig.pop("name"), fig.pop("value"), fig.pop("unit")
        record(name, value, unit, **fig)


def backup(quick: bool):
    env = {"BACKUP_MAX_SECONDS": "45" if quick else "120"}
    if quick:
        env["BACKUP_TRANSACTIONS"] = "200000"
    for fig in cargo_bench("backup", [], env, timeout=900):
        name, value, unit = fig.pop("name"), fig.pop("value"), fig.pop("unit")
        record(name, value, unit, **fig)


# ----------------------------------------------------------------------------- Python
def have_fundcore() -> bool:
    p = subprocess.run([VENV_PY, "-c", "import fundcore; fundcore.Engine"], capture_output=True, text=True)
    return p.returncode == 0


def py_driver(engine: str, durability: str, what: str, seconds: float, threads: int = 1, calls: int = 20000) -> dict:
    p = run([VENV_PY, os.path.join(HERE, "py_driver.py"), "--engine", engine, "--durability", durability,
             "--what", what, "--seconds", str(seconds), "--threads", str(threads),
             "--latency-calls", str(calls), "--json"], timeout=120)
    return json.loads(p.stdout.strip().splitlines()[-1])


def py_driver_observed(durability: str, windows: int, window_seconds: float) -> dict:
    p = run([VENV_PY, os.path.join(HERE, "py_driver.py"), "--observed", "--durability", durability,
             "--windows", str(windows), "--seconds", str(window_seconds), "--json"], timeout=120)
    return json.loads(p.stdout.strip().splitlines()[-1])


#: Windows per side of the observability figure (periodic, durable), and their length in seconds.
OBSERVED_WINDOWS = {"periodic": 24, "durable": 8}
OBSERVED_WINDOW_SECONDS = 0.25


def python_observability(quick: bool):
    """What observability costs a Python host: one driver process with the metrics recorder and
    logging at INFO, one with neither, the one-thread mix in alternating windows."""
    for durability, windows in OBSERVED_WINDOWS.items():
        windows = windows // 2 if quick else windows
        r = py_driver_observed(durability, windows, OBSERVED_WINDOW_SECONDS)
        on, off = r["modes"]["on"], r["modes"]["off"]
        record(f"py_fundcore_{durability}_1thread_observed_ops", on["ops_per_s"], "ops/s",
               unobserved_ops_per_s=off["ops_per_s"], windows=on["windows"], unobserved_windows=off["windows"])
        suffix = "" if durability == "periodic" else f"_{durability}"
        record(f"py_observed_over_unobserved{suffix}", r["ratio"], "x", observed=on["ops_per_s"],
               unobserved=off["ops_per_s"], ratio_per_window_pair=r["ratio_per_window_pair"],
               ratio_median_window_pair=r["ratio_median_window_pair"],
               cpu_us_per_op_observed=on["cpu_us_per_op"], cpu_us_per_op_unobserved=off["cpu_us_per_op"],
               log_bytes_observed=on["log_bytes"],
               method=f"two processes, {windows} alternating windows of {OBSERVED_WINDOW_SECONDS} s each")


def python_figures(quick: bool):
    secs = 1.5 if quick else 3.0
    results = {}
    for engine in ("fundcore", "baseline"):
        r = py_driver(engine, "periodic", "all", secs, calls=5000 if quick else 20000)
        results[(engine, "periodic", 1)] = r["mix"]["ops_per_s"]
        record(f"py_{engine}_client_call_p50", r["latency"]["client"]["p50_us"], "µs", **r["latency"]["client"])
        record(f"py_{engine}_subscribe_call_p50", r["latency"]["subscribe"]["p50_us"], "µs",
               **r["latency"]["subscribe"])
        for threads in (1, 4):
            r = py_driver(engine, "durable", "mix", secs, threads=threads)
            results[(engine, "durable", threads)] = r["mix"]["ops_per_s"]
    for (engine, durability, threads), ops in results.items():
        record(f"py_{engine}_{durability}_{threads}thread_ops", ops, "ops/s")
    for durability, threads in (("periodic", 1), ("durable", 1), ("durable", 4)):
        f, b = results[("fundcore", durability, threads)], results[("baseline", durability, threads)]
        record(f"py_fundcore_over_baseline_{durability}_{threads}thread", f / b, "x", fundcore=f, baseline=b)
    # per-call cost of the binding over the Rust call: Rust and Python runs alternate, and the
    # lowest p50 of each is kept (noise on a shared machine only adds time)
    rounds = 2 if quick else 3
    best: dict[str, float] = {}
    for _ in range(rounds):
        for fig in cargo_bench("figures", ["calls"], {}, timeout=120):
            best[fig["name"]] = min(best.get(fig["name"], float("inf")), fig["value"])
        r = py_driver("fundcore", "periodic", "latency", 0, calls=10000)
        for call in ("client", "subscribe"):
            key = f"py_fundcore_{call}_call_p50_min"
            best[key] = min(best.get(key, float("inf")), r["latency"][call]["p50_us"])
    for call in ("client", "subscribe"):
        py, rs = best[f"py_fundcore_{call}_call_p50_min"], best[f"rust_{call}_call_p50"]
        record(f"py_{call}_overhead_over_rust", py - rs, "µs", python_us=py, rust_us=rs, rounds=rounds,
               method="lowest p50 of alternating Rust and Python runs")
        if call == "subscribe":
            record("py_subscribe_over_rust", py / rs, "x", python_us=py, rust_us=rs)
    python_observability(quick)


# ----------------------------------------------------------------------------- PostgreSQL
def pg_admin_url() -> str | None:
    return os.environ.get("FUNDCORE_TEST_DATABASE_URL")


@contextlib.contextmanager
def fresh_database(admin_url: str, tag: str):
    """A new, empty database on the server of ``admin_url``, dropped afterwards; yields its URL."""
    import psycopg

    name = f"bench_{tag}_{os.getpid()}_{secrets.token_hex(3)}"
    base, _, query = admin_url.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_server_facts(admin_url: str) -> dict:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        facts = {"version": admin.execute("SHOW server_version").fetchone()[0]}
        for setting in ("fsync", "synchronous_commit", "wal_sync_method", "commit_delay",
                        "shared_buffers", "max_connections"):
            facts[setting] = admin.execute(f"SHOW {setting}").fetchone()[0]
        host = admin.info.host
    facts["host"] = host
    return facts


def py_driver_pg(engine: str, threads: int, seconds: float, admin_url: str) -> dict:
    p = run([VENV_PY, os.path.join(HERE, "py_driver.py"), "--engine", engine, "--database-url", admin_url,
             "--seconds", str(seconds), "--threads", str(threads), "--json"], timeout=180)
    return json.loads(p.stdout.strip().splitlines()[-1])["mix"]


def py_driver_paired(threads: int, windows: int, window_seconds: float, admin_url: str) -> dict:
    p = run([VENV_PY, os.path.join(HERE, "py_driver.py"), "--paired", ",".join(PG_ENGINES),
             "--database-url", admin_url, "--threads", str(threads), "--windows", str(windows),
             "--seconds", str(window_seconds), "--json"], timeout=300)
    return json.loads(p.stdout.strip().splitlines()[-1])


PG_ENGINES = {"fundcore_pg": "fundcore", "baseline_pg": "baseline"}
PG_CALLERS = (1, 4, 16)
# fundcore's default (named statements, direct), every statement unnamed (direct), and unnamed
# through PgBouncer in transaction pooling mode: what pooler mode costs
POOLER_ENGINES = {"fundcore_pg": "direct", "fundcore_pg_unnamed": "unnamed", "fundcore_pg_pooled": "pooled"}


def py_driver_pooler(threads: int, windows: int, window_seconds: float, admin_url: str) -> dict:
    """The three of POOLER_ENGINES side by side, under a PgBouncer started for this run
    (scripts/with-pgbouncer.sh, with PgBouncer's defaults)."""
    env = dict(os.environ, FUNDCORE_TEST_DATABASE_URL=admin_url, FUNDCORE_PGBOUNCER_DISCARD="0")
    p = run([os.path.join(ROOT, "scripts", "with-pgbouncer.sh"), VENV_PY, os.path.join(HERE, "py_driver.py"),
             "--paired", ",".join(POOLER_ENGINES), "--database-url", admin_url, "--threads", str(threads),
             "--windows", str(windows), "--seconds", str(window_seconds), "--json"], timeout=300, env=env)
    return json.loads(p.stdout.strip().splitlines()[-1])


def postgres_figures(quick: bool):
    admin = pg_admin_url()
    secs = 1.5 if quick else 3.0
    PG_SERVER.update(pg_server_facts(admin))
    say(f"PostgreSQL server: {json.dumps(PG_SERVER)}")
    # the server's WAL is on this machine's disk: its fsync rate, right before the runs
    p = fsync_probe.probe(WORK, 2.0)
    record("fsync_probe_postgres", p["fsyncs_per_s"], "fsyncs/s", p50_us=p["p50_us"], p99_us=p["p99_us"])
    # Rust: one engine (16 pooled connections) on a fresh database, 1/4/16 callers, round trips
    with fresh_database(admin, "rust") as url:
        for fig in cargo_bench("figures", ["postgres"], {"FIGURES_SECONDS": str(secs),
                                                         "FUNDCORE_BENCH_DATABASE_URL": url}, timeout=300):
            name, value, unit = fig.pop("name"), fig.pop("value"), fig.pop("unit")
            record(name, value, unit, **fig)
    # Python, fundcore against the psycopg baseline: side by side on one server, each on its own
    # fresh database, in alternating 1-second windows (A B B A …), so other work on the machine
    # falls on both alike
    windows = 3 if quick else 6
    for threads in PG_CALLERS:
        r = py_driver_paired(threads, windows, 1.0, admin)
        ops = {}
        for engine, short in PG_ENGINES.items():
            m = r["engines"][engine]
            ops[short] = m["ops_per_s"]
            record(f"py_pg_{short}_{threads}callers_ops", m["ops_per_s"], "ops/s", **m)
        by_window = [round(f / b, 2) for f, b in zip(r["engines"]["fundcore_pg"]["windows"],
                                                     r["engines"]["baseline_pg"]["windows"])]
        record(f"py_pg_fundcore_over_baseline_{threads}callers", ops["fundcore"] / ops["baseline"], "x",
               fundcore=ops["fundcore"], baseline=ops["baseline"], ratio_per_window_pair=by_window,
               method=f"{windows} alternating windows of 1 s per engine")
        # CPU per operation (driver + server) does not depend on the share of the machine that
        # other work leaves: when both are CPU-bound, the ratio of ops/s tends to this
        cpu = {short: r["engines"][engine].get("client_cpu_us_per_op", 0) + r["engines"][engine].get(
            "server_cpu_us_per_op", float("nan")) for engine, short in PG_ENGINES.items()}
        record(f"py_pg_cpu_per_op_baseline_over_fundcore_{threads}callers", cpu["baseline"] / cpu["fundcore"], "x",
               fundcore_us=cpu["fundcore"], baseline_us=cpu["baseline"])
    # Pooler mode (SPEC 10.1): fundcore through PgBouncer with prepared_statements=False beside
    # the default mode, in alternating windows in one driver process, and unnamed statements
    # without the pooler, which tells the statements' share of the cost from the pooler's
    for threads in (1, 16):
        r = py_driver_pooler(threads, windows, 1.0, admin)
        ops = {}
        for engine, short in POOLER_ENGINES.items():
            m = r["engines"][engine]
            ops[short] = m["ops_per_s"]
            if short != "direct":
                record(f"py_pg_fundcore_{short}_{threads}callers_ops", m["ops_per_s"], "ops/s", **m)
        for short in ("pooled", "unnamed"):
            by_window = [round(x / d, 2) for x, d in zip(r["engines"][f"fundcore_pg_{short}"]["windows"],
                                                         r["engines"]["fundcore_pg"]["windows"])]
            record(f"py_pg_fundcore_{short}_over_direct_{threads}callers", ops[short] / ops["direct"], "x",
                   direct=ops["direct"], **{short: ops[short]}, ratio_per_window_pair=by_window,
                   method=f"{windows} alternating windows of 1 s per mode, one driver process")
    trips = FIGURES["py_pg_baseline_1callers_ops"]["detail"].get("round_trips_per_op")
    if trips is not None:
        record("py_pg_baseline_round_trips_per_op", trips, "round trips")
    # What each costs per operation, each engine alone on a fresh database, with the server's
    # WAL statistics (which a backend publishes when it exits: one engine session per run)
    for threads in (1, 16):
        for engine, short in PG_ENGINES.items():
            m = py_driver_pg(engine, threads, secs, admin)
            record(f"py_pg_{short}_{threads}callers_cost", m["ops_per_s"], "ops/s", **m)


def pg_cost_table() -> list[str]:
    """What each Python run on PostgreSQL cost per operation (each engine alone)."""
    rows = [f"py_pg_{e}_{t}callers_cost" for t in (1, 16) for e in PG_ENGINES.values()]
    rows = [r for r in rows if r in FIGURES]
    if not rows:
        return []

    def cell(d: dict, key: str, digits: int = 0) -> str:
        v = d.get(key)
        return "—" if v is None else f"{v:,.{digits}f}"

    def trips(d: dict, engine: str) -> str:
        if "round_trips_per_op" in d:
            return f"{d['round_trips_per_op']:.1f}"
        rust = FIGURES.get("postgres_round_trips_per_op")
        return f"{rust['value']:.1f} (the store's count, Rust run)" if engine == "fundcore" and rust else "—"

    out = ["", "## What each PostgreSQL run cost (Python, per subscribe or cancel)", "",
           "Each engine alone for a few seconds on a fresh database of the same server (after the side by",
           "side runs above). Per operation of the mix: wall time per caller; CPU of the driver process",
           "(the Python caller and the client library) and of the server's processes; WAL fsyncs, the time",
           "the server spent in them (`wal_sync_time`), commits and WAL bytes; round trips. Last column:",
           "CPU cores in use during the run by the driver, the server and everything else on the machine.",
           "",
           "| run | ops/s | µs per op per caller | driver CPU µs | server CPU µs | WAL fsyncs | WAL fsync µs |"
           " commits | WAL bytes | round trips | CPU cores busy: driver / server / other work |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name in rows:
        d = FIGURES[name]["detail"]
        ops = FIGURES[name]["value"]
        engine = "fundcore" if "_fundcore_" in name else "psycopg baseline"
        threads = d.get("threads", 1)
        cores = "—"
        if d.get("server_cpu_cores") is not None:
            cores = (f"{d['client_cpu_cores']:.2f} / {d['server_cpu_cores']:.2f} / {d.get('other_cpu_cores', 0):.2f}"
                     f" of {d.get('cpus', '?')}")
        out.append(f"| {engine}, {threads} caller{'s' if threads > 1 else ''} | {ops:,.0f} | "
                   f"{threads * 1e6 / ops:,.0f} | {cell(d, 'client_cpu_us_per_op')} | {cell(d, 'server_cpu_us_per_op')} | "
                   f"{cell(d, 'wal_fsyncs_per_op', 2)} | {cell(d, 'wal_fsync_wait_us_per_op')} | "
                   f"{cell(d, 'commits_per_op', 2)} | {cell(d, 'wal_bytes_per_op')} | "
                   f"{trips(d, engine)} | {cores} |")
    return out


# ----------------------------------------------------------------------------- REST
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, token: str | None = None, body: dict | None = None, timeout: float = 10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def ensure_wrk():
    if shutil.which("wrk"):
        return
    say("wrk not found: installing the Debian package")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    run(sudo + ["apt-get", "update", "-qq"], 300)
    run(sudo + ["apt-get", "install", "-y", "-qq", "wrk"], 300, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


@contextlib.contextmanager
def rest_host(env_extra: dict, workers: int):
    """The REST host (`python -m fundcore_host.serve`) on a free loopback port; yields its base URL and an
    admin token. The host's data lives in a temporary directory removed afterwards."""
    port = free_port()
    data = tempfile.mkdtemp(prefix="rest-", dir=WORK)
    env = dict(os.environ, FUNDCORE_DATA=os.path.join(data, "store"), FUNDCORE_JWT_SECRET=secrets.token_hex(32),
               FUNDCORE_RATE_LIMIT_PER_MINUTE="0", FUNDCORE_LOG_LEVEL="WARNING", PYTHONPATH=HOST_DIR, **env_extra)
    log_path = os.path.join(data, "host.log")
    log = open(log_path, "w")
    cmd = [VENV_PY, "-m", "fundcore_host.serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    say("$ " + " ".join(cmd) + (" (FUNDCORE_DATABASE_URL set)" if "FUNDCORE_DATABASE_URL" in env_extra else ""))
    host = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if http("GET", base + "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if host.poll() is not None or time.time() > deadline:
                log.flush()
                raise RuntimeError("REST host did not start:\n" + open(log_path).read()[-3000:])
            time.sleep(0.2)
        token = run([VENV_PY, "-m", "fundcore_host.token", "--role", "admin", "--ttl", "3600"], 30,
                    env=env).stdout.strip().splitlines()[-1]
        yield base, token, data
    finally:
        os.killpg(host.pid, signal.SIGTERM)
        try:
            host.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(host.pid, signal.SIGKILL)
            host.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def rest_mix(base: str, token: str, data: str, duration: str) -> dict:
    """wrk's subscribe/cancel mix (benches/rest/mix.lua) over 1,000 new clients; wrk's JSON summary."""
    n_clients = 1000

    def make(i):
        return http("POST", base + "/clients", token, {
            "name": f"Bench {i}", "email": f"bench{i}@example.com",
            "phone": f"+57300{i:07d}", "channel": "email" if i % 2 else "sms"})[1]["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(make, range(n_clients)))
    clients_file = os.path.join(data, "clients.txt")
    with open(clients_file, "w") as f:
        f.write("\n".join(ids) + "\n")
    for _ in range(20):  # a few warm-up calls
        http("GET", base + "/funds", token)
    out = os.path.join(data, "wrk.json")
    p = run(["wrk", "-t1", f"-c{REST_CONNECTIONS}", f"-d{duration}", "--timeout", "5s", "--latency",
             "-s", os.path.join(HERE, "rest", "mix.lua"), base, "--", token, clients_file, out], 60)
    say(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "wrk: no output")
    with open(out) as f:
        return json.load(f)


REST_CONNECTIONS = os.environ.get("REST_CONNECTIONS", "64")  # for experiments; the targets are for 64

#: How the host calls the engine, compared under the same load in one run: awaiting its
#: fundcore.aio.Engine (the host as shipped) and the blocking engine through Starlette's
#: run_in_threadpool, as it did before fundcore.aio (the benchmark switch read by
#: examples/fastapi_host/fundcore_host/dependencies.py).
REST_ENGINE_CALLS = {"aio": {}, "threadpool": {"FUNDCORE_BENCH_RUN_IN_THREADPOOL": "1"}}


def rest_rounds(quick: bool) -> list[tuple[str, ...]]:
    """The order of the hosts: one of each with --quick; else two rounds, the second in the
    other order, so that a machine slowing down or speeding up falls on both alike."""
    ways = tuple(REST_ENGINE_CALLS)
    return [ways] if quick else [ways, ways[::-1]]


def rest_combined(runs: list[dict]) -> dict:
    """Several wrk runs of one host as one figure: requests over seconds, the worst percentiles."""
    requests, seconds = sum(r["requests"] for r in runs), sum(r["seconds"] for r in runs)
    return {"req_per_s": requests / seconds, "requests": requests, "seconds": round(seconds, 3),
            "p50_ms": max(r["p50_ms"] for r in runs), "p90_ms": max(r["p90_ms"] for r in runs),
            "p99_ms": max(r["p99_ms"] for r in runs), "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
            "req_per_s_per_run": [r["req_per_s"] for r in runs]}


def record_rest_comparison(prefix: str, runs: dict[str, list[dict]]):
    """``<prefix>_req_per_s`` and ``_p99_ms`` of the host as shipped, ``<prefix>_threadpool_*`` of
    the run_in_threadpool host, and ``<prefix>_aio_over_threadpool``."""
    shipped, before = rest_combined(runs["aio"]), rest_combined(runs["threadpool"])
    record(f"{prefix}_req_per_s", shipped["req_per_s"], "req/s", **shipped)
    record(f"{prefix}_p99_ms", shipped["p99_ms"], "ms", p50_ms=shipped["p50_ms"], p90_ms=shipped["p90_ms"],
           non2xx=shipped["non2xx"])
    record(f"{prefix}_threadpool_req_per_s", before["req_per_s"], "req/s", **before)
    record(f"{prefix}_threadpool_p99_ms", before["p99_ms"], "ms", p50_ms=before["p50_ms"],
           p90_ms=before["p90_ms"], non2xx=before["non2xx"])
    record(f"{prefix}_aio_over_threadpool", shipped["req_per_s"] / before["req_per_s"], "x",
           aio=shipped["req_per_s"], threadpool=before["req_per_s"],
           ratio_per_round=[round(a["req_per_s"] / t["req_per_s"], 3)
                            for a, t in zip(runs["aio"], runs["threadpool"])],
           method=f"{len(runs['aio'])} round(s) of one host each way, alternating which goes first, "
                  "a fresh store each")


def rest_ceiling(base: str, token: str, quick: bool):
    """Where the ceiling is: the same host and connections on calls that do no store writes."""
    for name, path, auth in (("rest_get_funds_req_per_s", "/funds", True),
                             ("rest_health_req_per_s", "/health", False)):
        cmd = ["wrk", "-t1", f"-c{REST_CONNECTIONS}", "-d3s" if quick else "-d5s", "--latency"]
        if auth:
            cmd += ["-H", f"Authorization: Bearer {token}"]
        p = run(cmd + [base + path], 30)
        m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", p.stdout)
        if m:
            record(name, float(m.group(1)), "req/s", non2xx=int(non2xx.group(1)) if non2xx else 0)


def rest(quick: bool):
    """The host on the embedded store with one worker, then (with a PostgreSQL server) on PostgreSQL with two
    workers, under the same wrk load in this run; each with fundcore.aio and with run_in_threadpool."""
    ensure_wrk()
    duration = "5s" if quick else "8s"
    runs: dict[str, list[dict]] = {way: [] for way in REST_ENGINE_CALLS}
    for n, order in enumerate(rest_rounds(quick)):
        for way in order:
            with rest_host(REST_ENGINE_CALLS[way], workers=1) as (base, token, data):
                runs[way].append(rest_mix(base, token, data, duration))
                if n == 0 and way == "aio":
                    rest_ceiling(base, token, quick)
    record_rest_comparison("rest", runs)
    admin_url = pg_admin_url()
    if not admin_url:
        SKIPPED.append("REST host on PostgreSQL with two workers: no PostgreSQL server "
                       "(FUNDCORE_TEST_DATABASE_URL is not set; `make bench` starts one)")
        return
    runs = {way: [] for way in REST_ENGINE_CALLS}
    for order in rest_rounds(quick):
        for way in order:
            with fresh_database(admin_url, "rest") as url:
                env = {"FUNDCORE_DATABASE_URL": url, **REST_ENGINE_CALLS[way]}
                with rest_host(env, workers=2) as (base, token, data):
                    runs[way].append(rest_mix(base, token, data, duration))
    record_rest_comparison("rest_pg_2workers", runs)
    sled = FIGURES["rest_req_per_s"]["value"]
    if sled:
        record("rest_pg_2workers_over_sled_1worker", FIGURES["rest_pg_2workers_req_per_s"]["value"] / sled, "×")


# ----------------------------------------------------------------------------- report
# name -> (label, comparison, target) ; comparison is ">=" / "<=" / None (shown for reference)
TARGETS = [
    ("fsync_probe", "fsync probe: 4 KiB write + fsync, one thread", None, None),
    ("core_periodic_1thread_ops", "core: subscribe or cancel, one thread, periodic durability", ">=", 50_000),
    ("core_periodic_1thread_observed_ops", "core: periodic, one thread, with a metrics recorder and a tracing subscriber",
     None, None),
    ("core_observed_over_unobserved", "core: observability on / off (interleaved windows, same engine)", ">=", 0.95),
    ("fsync_probe_adjacent", "fsync probe run right before the durable runs (Rust)", None, None),
    ("core_durable_1threads_ops", "core: durable (flushed before return), 1 caller", None, None),
    ("core_durable_4threads_ops", "core: durable, 4 concurrent callers", None, None),
    ("core_durable_16threads_ops", "core: durable, 16 concurrent callers", None, None),
    ("core_durable_16_over_1", "core: durable, 16 callers / 1 caller (group commit)", ">=", 4),
    ("core_durable_1_over_fsync_probe", "core: durable, 1 caller / fsync probe", ">=", 0.8),
    ("core_history_newest50_p50", "core: newest 50 transactions of a client with 100,000 (p50)", "<=", 200),
    ("rust_client_call_p50", "core: client() per call (p50, Rust)", None, None),
    ("rust_subscribe_call_p50", "core: subscribe() per call, periodic (p50, Rust)", None, None),
    ("sled_new_key_insert_us", "sled alone: insert of a new key (200 B) into a growing tree", None, None),
    ("sled_overwrite_us", "sled alone: overwrite of an existing key (200 B)", None, None),
    ("py_fundcore_client_call_p50", "Python: fundcore client() per call (p50)", None, None),
    ("py_fundcore_subscribe_call_p50", "Python: fundcore subscribe() per call, periodic (p50)", None, None),
    ("py_client_overhead_over_rust", "Python: client() cost over the Rust call", "<=", 3),
    ("py_subscribe_overhead_over_rust", "Python: subscribe() cost over the Rust call", "<=", 3),
    ("py_subscribe_over_rust", "Python: subscribe() / Rust subscribe()", "<=", 1.3),
    ("py_baseline_client_call_p50", "Python: sqlite3 baseline client() per call (p50)", None, None),
    ("py_baseline_subscribe_call_p50", "Python: sqlite3 baseline subscribe() per call, periodic (p50)", None, None),
    ("py_fundcore_periodic_1thread_ops", "Python: fundcore mix, periodic, 1 thread", None, None),
    ("py_baseline_periodic_1thread_ops", "Python: sqlite3 baseline mix, periodic (synchronous=NORMAL), 1 thread",
     None, None),
    ("py_fundcore_over_baseline_periodic_1thread", "Python: fundcore / baseline, periodic, 1 thread", ">=", 5),
    ("py_fundcore_durable_1thread_ops", "Python: fundcore mix, durable, 1 thread", None, None),
    ("py_baseline_durable_1thread_ops", "Python: sqlite3 baseline mix, durable (synchronous=FULL), 1 thread",
     None, None),
    ("py_fundcore_over_baseline_durable_1thread", "Python: fundcore / baseline, durable, 1 thread", ">=", 5),
    ("py_fundcore_durable_4thread_ops", "Python: fundcore mix, durable, 4 threads", None, None),
    ("py_baseline_durable_4thread_ops", "Python: sqlite3 baseline mix, durable, 4 threads", None, None),
    ("py_fundcore_over_baseline_durable_4thread", "Python: fundcore / baseline, durable, 4 threads", ">=", 5),
    ("py_fundcore_periodic_1thread_observed_ops",
     "Python: fundcore mix, periodic, 1 thread, with metrics enabled and logging at INFO", None, None),
    ("py_observed_over_unobserved",
     "Python: observability on / off, periodic, 1 thread (two processes, interleaved windows)", ">=", 0.95),
    ("py_fundcore_durable_1thread_observed_ops",
     "Python: fundcore mix, durable, 1 thread, with metrics enabled and logging at INFO", None, None),
    ("py_observed_over_unobserved_durable",
     "Python: observability on / off, durable, 1 thread (two processes, interleaved windows)", ">=", 0.95),
    ("fsync_probe_postgres", "fsync probe right before the PostgreSQL runs (the server's WAL is on this disk)",
     None, None),
    ("postgres_1callers_ops", "PostgreSQL store (Rust): subscribe or cancel, 1 caller", None, None),
    ("postgres_4callers_ops", "PostgreSQL store (Rust): 4 concurrent callers", None, None),
    ("postgres_16callers_ops", "PostgreSQL store (Rust): 16 concurrent callers", None, None),
    ("postgres_round_trips_per_op", "PostgreSQL store: round trips per subscribe or cancel", "<=", 2),
    ("postgres_deadline_cost_per_statement_us",
     "PostgreSQL store: what bounding a statement's wait by the operation deadline adds (timer, by itself)",
     None, None),
    ("postgres_catch_up_cost_per_call_us",
     "PostgreSQL store: reading what reached a pooled connection's socket before it is used (by itself)",
     None, None),
    ("py_pg_fundcore_1callers_ops", "Python: fundcore on PostgreSQL, mix, 1 caller", None, None),
    ("py_pg_fundcore_4callers_ops", "Python: fundcore on PostgreSQL, mix, 4 callers", None, None),
    ("py_pg_fundcore_16callers_ops", "Python: fundcore on PostgreSQL, mix, 16 callers", None, None),
    ("py_pg_baseline_1callers_ops", "Python: psycopg baseline on PostgreSQL, mix, 1 caller", None, None),
    ("py_pg_baseline_4callers_ops", "Python: psycopg baseline on PostgreSQL, mix, 4 callers", None, None),
    ("py_pg_baseline_16callers_ops", "Python: psycopg baseline on PostgreSQL, mix, 16 callers", None, None),
    ("py_pg_fundcore_over_baseline_1callers", "Python: fundcore / psycopg baseline on PostgreSQL, 1 caller",
     ">=", 3),
    ("py_pg_fundcore_over_baseline_4callers", "Python: fundcore / psycopg baseline on PostgreSQL, 4 callers",
     None, None),
    ("py_pg_fundcore_over_baseline_16callers", "Python: fundcore / psycopg baseline on PostgreSQL, 16 callers",
     ">=", 3),
    ("py_pg_cpu_per_op_baseline_over_fundcore_1callers",
     "Python on PostgreSQL: CPU per operation (driver + server), baseline / fundcore, 1 caller", None, None),
    ("py_pg_cpu_per_op_baseline_over_fundcore_4callers",
     "Python on PostgreSQL: CPU per operation (driver + server), baseline / fundcore, 4 callers", None, None),
    ("py_pg_cpu_per_op_baseline_over_fundcore_16callers",
     "Python on PostgreSQL: CPU per operation (driver + server), baseline / fundcore, 16 callers", None, None),
    ("py_pg_baseline_round_trips_per_op", "psycopg baseline: round trips per subscribe or cancel", None, None),
    ("py_pg_fundcore_pooled_1callers_ops",
     "Python: fundcore through PgBouncer (transaction pooling, prepared_statements=False), 1 caller", None, None),
    ("py_pg_fundcore_pooled_16callers_ops",
     "Python: fundcore through PgBouncer (transaction pooling, prepared_statements=False), 16 callers", None, None),
    ("py_pg_fundcore_pooled_over_direct_1callers",
     "Python: fundcore through PgBouncer, unnamed statements / default mode (direct), 1 caller", None, None),
    ("py_pg_fundcore_pooled_over_direct_16callers",
     "Python: fundcore through PgBouncer, unnamed statements / default mode (direct), 16 callers", None, None),
    ("py_pg_fundcore_unnamed_1callers_ops", "Python: fundcore with prepared_statements=False (direct), 1 caller",
     None, None),
    ("py_pg_fundcore_unnamed_16callers_ops", "Python: fundcore with prepared_statements=False (direct), 16 callers",
     None, None),
    ("py_pg_fundcore_unnamed_over_direct_1callers",
     "Python: fundcore, unnamed statements / default mode, both direct, 1 caller", None, None),
    ("py_pg_fundcore_unnamed_over_direct_16callers",
     "Python: fundcore, unnamed statements / default mode, both direct, 16 callers", None, None),
    ("py_pg_fundcore_1callers_cost", "cost run (table below): fundcore on PostgreSQL alone, 1 caller", None, None),
    ("py_pg_baseline_1callers_cost", "cost run (table below): psycopg baseline alone, 1 caller", None, None),
    ("py_pg_fundcore_16callers_cost", "cost run (table below): fundcore on PostgreSQL alone, 16 callers",
     None, None),
    ("py_pg_baseline_16callers_cost", "cost run (table below): psycopg baseline alone, 16 callers", None, None),
    ("rest_req_per_s", "REST host: subscribe/cancel mix, 64 connections, one worker", ">=", 2000),
    ("rest_p99_ms", "REST host: p99 latency", "<=", 50),
    ("rest_get_funds_req_per_s", "REST host: GET /funds (auth, no store write), 64 connections", None, None),
    ("rest_health_req_per_s", "REST host: GET /health (no auth, async), 64 connections", None, None),
    ("rest_pg_2workers_req_per_s", "REST host on PostgreSQL: subscribe/cancel mix, 64 connections, two workers",
     None, None),
    ("rest_pg_2workers_p99_ms", "REST host on PostgreSQL, two workers: p99 latency", None, None),
    ("rest_threadpool_req_per_s",
     "REST host, engine called through run_in_threadpool (before fundcore.aio): the same mix, one worker", None, None),
    ("rest_threadpool_p99_ms", "REST host, through run_in_threadpool: p99 latency", None, None),
    ("rest_aio_over_threadpool", "REST host: fundcore.aio / run_in_threadpool, the same mix, one worker", None, None),
    ("rest_pg_2workers_threadpool_req_per_s",
     "REST host on PostgreSQL, two workers, through run_in_threadpool: the same mix", None, None),
    ("rest_pg_2workers_threadpool_p99_ms", "REST host on PostgreSQL, two workers, through run_in_threadpool: p99",
     None, None),
    ("rest_pg_2workers_aio_over_threadpool",
     "REST host on PostgreSQL, two workers: fundcore.aio / run_in_threadpool, the same mix", None, None),
    ("rest_pg_2workers_over_sled_1worker",
     "REST host: PostgreSQL with two workers / embedded store with one worker (same load, this run)", None, None),
    ("pages_home_bytes", "pages: what a browser downloads for the portal's home page (page + style sheet)", None, None),
    ("pages_home_p50_ms", "pages: GET / (the portal's home) alone, p50", None, None),
    ("pages_home_under_rest_mix_p50_ms", "pages: GET / while wrk drives the REST mix on the same host, p50", None, None),
    ("pages_history_p50_ms", "pages: GET /history alone, p50", None, None),
    ("pages_history_under_rest_mix_p50_ms", "pages: GET /history under the REST mix, p50", None, None),
    ("footprint_bytes_per_tx", "footprint: bytes on disk per transaction", "<=", 400),
    ("footprint_peak_rss", "footprint: peak RSS (VmHWM)", "<=", 256),
    ("backup_idle_seconds", "backup: Engine::backup of the idle store", None, None),
    ("backup_under_load_seconds", "backup: Engine::backup while 2,000 subscribe/cancel calls/s run", None, None),
    ("backup_load_p99_alone_ms", "backup: that load's p99 call, no backup running", None, None),
    ("backup_load_p99_during_ms", "backup: that load's p99 call, during the backup", None, None),
    ("backup_load_max_alone_ms", "backup: that load's longest call, no backup running", None, None),
    ("backup_load_max_during_ms", "backup: that load's longest call, during the backup", None, None),
    ("backup_load_ops_alone", "backup: that load's calls/s, no backup running", None, None),
    ("backup_load_ops_during", "backup: that load's calls/s, during the backup", None, None),
    ("criterion_periodic_1thread_ops", "criterion: subscribe or cancel, periodic, 1 thread", None, None),
    ("criterion_durable_1threads_ops", "criterion: durable, 1 caller", None, None),
    ("criterion_durable_4threads_ops", "criterion: durable, 4 callers", None, None),
    ("criterion_durable_16threads_ops", "criterion: durable, 16 callers", None, None),
    ("criterion_history_newest50_median", "criterion: newest 50 of 100,000 (median)", None, None),
    ("criterion_client_read_median", "criterion: client() (median)", None, None),
]


def fmt(v: float) -> str:
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def build_results() -> list[dict]:
    out = []
    known = set()
    for name, label, cmp, target in TARGETS:
        known.add(name)
        fig = FIGURES.get(name)
        if fig is None:
            continue
        v = fig["value"]
        met = None
        if cmp == ">=":
            met = v >= target
        elif cmp == "<=":
            met = v <= target
        if name == "footprint_peak_rss" and not fig["detail"].get("complete", True) and met:
            met = None  # fewer than 1,000,000 transactions: a peak under the target proves nothing
        out.append({"name": name, "value": round(v, 3), "unit": fig["unit"],
                    "target": f"{cmp} {target}" if cmp else None, "met": met,
                    "label": label, "detail": fig["detail"]})
    for name, fig in FIGURES.items():
        if name not in known:
            out.append({"name": name, "value": round(fig["value"], 3), "unit": fig["unit"], "target": None,
                        "met": None, "label": name, "detail": fig["detail"]})
    return out


CARRIED: list[str] = []  # the parts measured in an earlier run (an --only run keeps the others' figures)


def carry_over(measured: set[str]):
    """Keeps the figures of benches/results.json that this partial run did not measure, marked as carried over,
    so that an --only run updates its parts without erasing the rest of the report."""
    try:
        with open(os.path.join(HERE, "results.json")) as f:
            previous = json.load(f)
    except (OSError, ValueError):
        return
    for r in previous:
        if r["name"] not in FIGURES:
            FIGURES[r["name"]] = {"value": r["value"], "unit": r["unit"], "detail": {**r["detail"], "carried_over": True}}
    CARRIED.append(", ".join(sorted(measured)))


def write_reports(results: list[dict], mach: dict, elapsed: float, quick: bool):
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
        f.write("\n")
    lines = [
        "# fundcore benchmark results",
        "",
        "Written by `make bench` (`benches/run_all.py`); every figure below was measured in one run on",
        "the machine described here. Ratios compare numbers taken minutes apart on the same machine.",
        "" if not quick else "\n**Quick run (`--quick`): shorter measurements, footprint on fewer transactions.**\n",
        "## Machine",
        "",
        f"- CPUs: {mach['nproc']} × {mach['cpu']}; memory {mach['memory_gib']} GiB",
        f"- kernel: {mach['kernel']}",
        f"- disk (benchmark stores): {mach['disk']}",
        f"- {mach['rustc']}; Python {mach['python']}",
        f"- load average at start: {mach['loadavg_at_start']}; run at {mach['date_utc']}, took {elapsed:.0f} s",
    ]
    if CARRIED:
        lines.append(f"- partial run (`--only {CARRIED[0]}`): figures marked † were measured by an earlier run"
                     " and carried over from its results.json")
    if PG_SERVER:
        lines.append(f"- PostgreSQL {PG_SERVER['version']} on {PG_SERVER['host']} (a private server started for the"
                     f" run): fsync={PG_SERVER['fsync']}, synchronous_commit={PG_SERVER['synchronous_commit']},"
                     f" wal_sync_method={PG_SERVER['wal_sync_method']}, commit_delay={PG_SERVER['commit_delay']},"
                     f" shared_buffers={PG_SERVER['shared_buffers']}")
    lines += [
        "",
        "## Figures",
        "",
        "| figure | value | target | met |",
        "|---|---:|---|:---:|",
    ]
    for r in results:
        tgt = r["target"] or "—"
        if r["target"]:
            tgt = tgt.replace(">=", "≥").replace("<=", "≤")
            cmp, num = tgt.split(" ")
            tgt = f"{cmp} {fmt(float(num))} {r['unit']}"
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        note = ""
        d = r["detail"]
        counted = r["name"].startswith("footprint") or r["name"] in ("backup_idle_seconds", "backup_under_load_seconds")
        if counted and "transactions" in d:
            note = f" (after {d['transactions']:,} transactions{'' if d.get('complete') else ', run cut short'})"
        if r["name"].startswith("rest_") and r["name"].endswith("req_per_s") and d.get("non2xx"):
            note = f" ({d['non2xx']} non-2xx of {d['requests']:,})"
        if d.get("carried_over"):
            note += " †"
        lines.append(f"| {r['label']}{note} | {fmt(r['value'])} {r['unit']} | {tgt} | {met} |")
    lines += ["", "Where a target is missed, `benches/README.md` (\"What limits the missed targets\") says",
              "what limits it, with the profile behind it."]
    lines += pg_cost_table()
    if SKIPPED:
        lines += ["", "## Not measured in this run", ""] + [f"- {s}" for s in SKIPPED]
    lines += [
        "",
        "## How each figure is measured",
        "",
        "- **fsync probe**: `benches/fsync_probe.py` writes 4 KiB and fsyncs, in a loop, in a file",
        "  under `benches/work/` (the same disk as the stores). It bounds durable commits of one caller.",
        "  The figures binary repeats it right before the durable runs, since shared disks drift.",
        "- **core** (`benches/benches/figures.rs`): subscribe/cancel pairs over a pool of clients for a",
        "  fixed time after a warm-up; durable runs use `Durability::EveryCommit` with N threads on",
        "  one engine; history is 5,000 single calls of `history(client, 50, None)` on a client with",
        "  100,000 transactions; per-call times are p50 of 20,000 single calls.",
        "- **observability** (`benches/benches/figures.rs`): the periodic one-thread mix on one engine",
        "  in 8 alternating windows (off, on, on, off, ...), on = a metrics recorder and a tracing",
        "  subscriber at INFO installed for the thread; the ratio is on / off.",
        "- **Python** (`benches/py_driver.py`): the same driver runs `fundcore.Engine(durability=...)`",
        "  and the sqlite3 baseline (`benches/baseline/`, WAL, `BEGIN IMMEDIATE`, `synchronous=FULL`",
        "  for durable and `NORMAL` for periodic); overhead over Rust = Python p50 − Rust p50 of the",
        "  same call in the same loop.",
        "- **Python observability** (`benches/py_driver.py --observed`): two driver processes, each",
        "  with its own engine and store, run the one-thread mix in alternating windows of"
        f" {OBSERVED_WINDOW_SECONDS} s",
        f"  (on, off, off, on, …; {OBSERVED_WINDOWS['periodic']} each periodic, {OBSERVED_WINDOWS['durable']} each"
        " durable, half as many with `--quick`, after a warm-up).",
        "  On is what a production host runs: `fundcore.enable_metrics()` (a process's metrics",
        "  recorder cannot be removed, hence two processes) and `logging` at INFO with a file",
        "  handler; off is neither. At INFO no record per operation reaches the handler (the span",
        "  and closing event of an operation are DEBUG, and the binding caches each logger's level),",
        "  so on pays for the metrics and the level checks. After each window the on process reads",
        "  `fundcore.metrics()` and the driver checks that every call was counted. The ratio is on",
        "  ops/s / off ops/s over all windows; the per-window ratios are in results.json.",
        "- **PostgreSQL** (`benches/benches/figures.rs`, `benches/py_driver.py`): a private server on",
        "  127.0.0.1 (`scripts/with-postgres.sh`; fsync and synchronous_commit on, so every commit",
        "  waits for its WAL fsync); each run has a fresh database. Rust: one `Engine::connect` with",
        "  16 pooled connections, N threads on 4 clients each, after a 0.3 s warm-up; round trips",
        "  counted by the store over 1,000 operations. Python: `fundcore.Engine(url)` (8 pooled",
        "  connections) and the psycopg 3 baseline (`benches/baseline/pg_engine.py`, one pooled",
        "  connection per caller), N threads on 50 clients each, both open side by side on their own",
        "  fresh databases and measured in alternating 1-second windows (A B B A …, 6 each after a",
        "  warm-up): ops/s = operations over the engine's windows' time, the ratio is taken from",
        "  those. The cost table comes from runs of each engine alone (its clients registered by an",
        "  engine closed before the measured one opens): CPU seconds of the driver process and of the",
        "  server's processes over the timed window; WAL fsyncs, fsync time, commits and WAL bytes",
        "  from `pg_stat_wal` and `pg_stat_database` over the measured engine's session; all divided",
        "  by the mix's operations.",
        "- **Pooler mode** (`benches/py_driver.py --paired fundcore_pg,fundcore_pg_unnamed,fundcore_pg_pooled`",
        "  under `scripts/with-pgbouncer.sh`: Debian's PgBouncer, transaction pooling, its defaults):",
        "  fundcore's default mode (named statements, direct), `prepared_statements=False` direct, and",
        "  `prepared_statements=False` through PgBouncer, each on its own fresh database, in one driver",
        "  process, in alternating 1-second windows, 1 and 16 callers. The ratios are each mode's ops/s",
        "  over the default mode's; the direct unnamed run tells what the statements cost (the server",
        "  plans each one again) from what the extra hop costs. PgBouncer's CPU counts as other work.",
        "- **REST** (`benches/rest/mix.lua`): `wrk -t1 -c64` against the FastAPI host",
        "  (`python -m fundcore_host.serve`, 127.0.0.1, rate limit off, the host's default durability),",
        "  1,000 new clients, each subscribing to a fund and cancelling it; any non-2xx answer is",
        "  counted. First one worker on the embedded store, then two workers on a fresh PostgreSQL",
        "  database of the private server (each worker with its own engine, pool and dispatcher).",
        "  Each is measured twice over: the host as shipped (its routes await a `fundcore.aio.Engine`)",
        "  and the host calling the blocking engine through Starlette's `run_in_threadpool`, as it did",
        "  before (`FUNDCORE_BENCH_RUN_IN_THREADPOOL=1`), each on a fresh store, in two rounds of 8 s",
        "  per host (the second round in the other order; one round of 5 s with `--quick`). A figure",
        "  is requests over seconds of its runs, its percentiles the worst run's; the ratio is",
        "  fundcore.aio / run_in_threadpool, per round in results.json.",
        "- **footprint** (`benches/benches/footprint.rs`): 10,000 clients, subscribe/cancel until",
        "  1,000,000 transactions, periodic durability, `flush()`, then allocated bytes of the store",
        "  directory / transactions, and VmHWM of the process.",
        "- **backup** (`benches/benches/backup.rs`): a store built once like the footprint's (10,000",
        "  clients, two writer threads, periodic durability, 1,000,000 transactions; 200,000 with",
        "  `--quick`), then `Engine::backup` into a new directory on the idle store; then two threads",
        "  run the subscribe/cancel mix on 1,000 clients of their own at a steady 2,000 calls/s in all",
        "  (each call due at a fixed interval), every call timed, first for as long as the idle",
        "  backup took (at least 2 s) with no backup, then while a second backup runs. p99 and",
        "  longest call of each window; the second backup is checked with `verify_store` (clean).",
        "- **criterion** (`benches/benches/core.rs`): the same operations under criterion, short",
        "  settings, as a cross-check (`cargo bench -p fundcore-benches --bench core` for full runs).",
        "",
    ]
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description="run every fundcore benchmark")
    ap.add_argument("--quick", action="store_true", help="shorter runs (numbers are rougher)")
    ap.add_argument("--skip", default="", help="comma list of parts to leave out: " + ",".join(PARTS))
    ap.add_argument("--only", default="", help="comma list of the only parts to run: " + ",".join(PARTS))
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    only = set(filter(None, a.only.split(",")))
    unknown = (skip | only) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s) {', '.join(sorted(unknown))}; parts are {', '.join(PARTS)}")
    if only:
        skip |= set(PARTS) - only
    start = time.time()
    os.makedirs(WORK, exist_ok=True)
    mach = machine()
    say(f"machine: {json.dumps(mach)}")

    p = fsync_probe.probe(WORK, 1.5 if a.quick else 3.0)
    record("fsync_probe", p["fsyncs_per_s"], "fsyncs/s", p50_us=p["p50_us"], p99_us=p["p99_us"])
    say(f"fsync probe: {p['fsyncs_per_s']:.0f}/s")

    steps = [
        ("rust", "core figures (cargo bench --bench figures)", lambda: rust_figures(a.quick)),
        ("python", "Python driver: fundcore vs sqlite3 baseline", None),
        ("postgres", "PostgreSQL store: Rust, and Python fundcore vs psycopg baseline",
         lambda: postgres_figures(a.quick)),
        ("rest", "REST host under wrk", None),
        ("pages", "the portal's pages, alone and under the REST mix", None),
        ("criterion", "criterion benches (cargo bench --bench core)", lambda: criterion(a.quick)),
        ("footprint", "footprint after 1,000,000 transactions", lambda: footprint(a.quick)),
        ("backup", "online backup of a store of 1,000,000 transactions", lambda: backup(a.quick)),
    ]
    fundcore_py = have_fundcore()
    host_ok = os.path.isdir(os.path.join(HOST_DIR, "fundcore_host"))
    for key, label, fn in steps:
        if key in skip:
            SKIPPED.append(f"{label}: left out (--only {a.only})" if only else f"{label}: skipped (--skip {key})")
            continue
        if key == "python":
            if not fundcore_py:
                SKIPPED.append(f"{label}: the `fundcore` module is not installed in .venv (`make python-dev`)")
                continue
            fn = lambda: python_figures(a.quick)  # noqa: E731
        if key == "postgres":
            if not pg_admin_url():
                SKIPPED.append(f"{label}: no PostgreSQL server (FUNDCORE_TEST_DATABASE_URL is not set; "
                               "`make bench` starts one)")
                continue
            if not fundcore_py:
                SKIPPED.append(f"{label}: the `fundcore` module is not installed in .venv (`make python-dev`)")
                continue
        if key == "rest":
            if not (fundcore_py and host_ok):
                SKIPPED.append(f"{label}: needs the `fundcore` module and examples/fastapi_host")
                continue
            fn = lambda: rest(a.quick)  # noqa: E731
        if key == "pages":
            if not (fundcore_py and host_ok):
                SKIPPED.append(f"{label}: needs the `fundcore` module and examples/fastapi_host")
                continue
            ensure_wrk()
            fn = lambda: pages_bench.pages(a.quick, record, say, rest_host, rest_mix)  # noqa: E731
        say(label)
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - a failed step is reported, the others still run
            SKIPPED.append(f"{label}: failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            say(f"FAILED {label}: {e}")
    if only:
        carry_over(only)
    results = build_results()
    write_reports(results, mach, time.time() - start, a.quick)
    for r in results:
        flag = {True: "met", False: "MISSED", None: ""}[r["met"]]
        print(f"  {r['name']:<45} {fmt(r['value']):>12} {r['unit']:<9} {r['target'] or '':<10} {flag}")
    say(f"wrote benches/results.json and benches/RESULTS.md in {time.time() - start:.0f} s")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()

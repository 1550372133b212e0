"""One Python driver for fundcore and for the baselines, so they are measured alike.

    python benches/py_driver.py --engine fundcore|baseline --durability periodic|durable \
        [--seconds 3] [--threads 1] [--latency-calls 20000] [--json]
    python benches/py_driver.py --engine fundcore_pg|baseline_pg --database-url URL \
        [--seconds 3] [--threads 1] [--json]
    python benches/py_driver.py --paired fundcore_pg,baseline_pg --database-url URL \
        [--windows 6] [--seconds 1] [--threads 1] [--json]
    scripts/with-pgbouncer.sh python benches/py_driver.py \
        --paired fundcore_pg,fundcore_pg_unnamed,fundcore_pg_pooled --database-url URL [...]
    python benches/py_driver.py --observed [debug] --durability periodic|durable \
        [--windows 24] [--seconds 0.25] [--threads 1] [--json]

With an embedded store (``fundcore``, and the sqlite3 baseline ``baseline``) it measures, on a
fresh store in a temporary directory on the benchmark disk:

* ``mix``: ops/s of a subscribe/cancel mix (each client subscribes to a fund and cancels it,
  round-robin over a pool of clients and the five funds), with ``--threads`` callers;
* ``latency``: per-call time of ``client()`` and of ``subscribe()`` (p50, p90, mean; each
  timed subscribe is followed by an untimed cancel so the balance never runs out).

An engine factory is ``factory(path, durable) -> engine`` with the Python API of docs/apis.md.

With PostgreSQL (``fundcore_pg``: ``fundcore.Engine(url)``; ``baseline_pg``: the psycopg 3
baseline of ``baseline/pg_engine.py``) it creates a fresh database on the server ``URL`` names
(a role that may ``CREATE DATABASE``), runs the same ``mix`` there and drops the database. Next
to ops/s it reports what bounds them, over the timed window: CPU of this process and of the
server's processes (when the server runs on this machine), the machine's busy share, and from
the server's statistics the WAL fsyncs, the time spent in them, commits and WAL bytes per
operation. ``--paired`` measures several of them side by side, in alternating windows of
``--seconds`` each, for ratios that other work on a shared machine does not tilt.
``fundcore_pg_unnamed`` is ``fundcore.Engine(url, prepared_statements=False)`` (every statement
sent unnamed) and ``fundcore_pg_pooled`` the same through PgBouncer in transaction pooling mode
(run under scripts/with-pgbouncer.sh, which sets ``FUNDCORE_TEST_POOLER_URL``): what pooler mode
costs against the default.

``--observed`` measures what observability costs a Python host: the ``mix`` of ``fundcore``
in two driver processes side by side, each with its own engine and store, in alternating
windows. One observes as a production host does: ``fundcore.enable_metrics()`` (the metrics
recorder, which is global to a process and stays once installed, hence two processes) and
Python's ``logging`` configured at INFO with a file handler, which the engine's log records
reach through the binding; the other does neither (the binding forwards to ``logging`` in
both; unconfigured, ``logging`` passes only warnings on).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
FUNDS = (1, 2, 3, 4, 5)


# ----------------------------------------------------------------------------- factories
def baseline_factory(path: str, durable: bool):
    sys.path.insert(0, HERE)
    from baseline.sqlite_engine import Engine

    return Engine(path, durable=durable)


def fundcore_factory(path: str, durable: bool):
    import fundcore

    # The binding names the durability switch; accept the spellings it may use.
    mode = "every_commit" if durable else "periodic"
    attempts = [
        lambda: fundcore.Engine(path, durability=mode),
        lambda: fundcore.Engine(path, durable=durable),
        lambda: fundcore.Engine(path, config=fundcore.Config(durability=mode)),
    ]
    errors = []
    for make in attempts:
        try:
            return make()
        except TypeError as e:  # unknown keyword: try the next spelling
            errors.append(str(e))
    raise RuntimeError("cannot choose durability on fundcore.Engine: " + "; ".join(errors))


FACTORIES = {"baseline": baseline_factory, "fundcore": fundcore_factory}


def fundcore_pg_factory(url: str, threads: int):
    import fundcore

    return fundcore.Engine(url)


def baseline_pg_factory(url: str, threads: int):
    sys.path.insert(0, HERE)
    from baseline.pg_engine import Engine

    # one pooled connection per caller: no caller waits for a connection
    return Engine(url, pool_size=max(threads, 1))


def fundcore_pg_unnamed_factory(url: str, threads: int):
    import fundcore

    return fundcore.Engine(url, prepared_statements=False)


def pooled_url(url: str) -> str:
    """``url`` through PgBouncer: the host and port of ``FUNDCORE_TEST_POOLER_URL`` (set by
    scripts/with-pgbouncer.sh), the same database."""
    pooler = os.environ.get("FUNDCORE_TEST_POOLER_URL")
    if not pooler:
        raise SystemExit("fundcore_pg_pooled needs FUNDCORE_TEST_POOLER_URL: run under scripts/with-pgbouncer.sh")
    base, _, query = url.partition("?")
    return pooler.rsplit("/", 1)[0] + "/" + base.rsplit("/", 1)[1] + (f"?{query}" if query else "")


def fundcore_pg_pooled_factory(url: str, threads: int):
    import fundcore

    return fundcore.Engine(pooled_url(url), prepared_statements=False)


PG_FACTORIES = {"baseline_pg": baseline_pg_factory, "fundcore_pg": fundcore_pg_factory,
                "fundcore_pg_unnamed": fundcore_pg_unnamed_factory,
                "fundcore_pg_pooled": fundcore_pg_pooled_factory}


# ----------------------------------------------------------------------------- measurements
def _clients(eng, n: int, tag: str):
    return [eng.register_client(f"Bench {tag}{i}", f"bench{tag}{i}@example.com",
                                f"+57300{i % 10_000_000:07d}", channel="email" if i % 2 else "sms").id
            for i in range(n)]


CLIENTS_PER_THREAD = 50


def client_pools(eng, threads: int, clients_per_thread: int = CLIENTS_PER_THREAD) -> list[list[str]]:
    """The clients each caller of ``mix`` works on (its own, so callers never wait for each other)."""
    return [_clients(eng, clients_per_thread, f"t{t}-") for t in range(threads)]


def mix(eng, seconds: float, threads: int = 1, max_ops: int = 5_000_000, pools=None, meter=None) -> dict:
    """subscribe/cancel pairs; returns ops/s over all threads (every call is one op).
    ``pools``: the clients of each thread (registered here when not given); ``meter``, when
    given, is started and stopped around the timed window."""
    if pools is None:
        pools = client_pools(eng, threads)
    counts = [0] * threads
    start_gate = threading.Barrier(threads + 1)
    stop = [False]
    per_thread_cap = max_ops // threads

    def work(t: int):
        pool = pools[t]
        n = 0
        k = 0
        start_gate.wait()
        while not stop[0] and n < per_thread_cap:
            cid = pool[k % len(pool)]
            fund = FUNDS[(k // len(pool)) % len(FUNDS)]
            eng.subscribe(cid, fund)
            eng.cancel(cid, fund)
            n += 2
            k += 1
        counts[t] = n

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in ts:
        th.start()
    if meter is not None:
        meter.start()
    start_gate.wait()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline and any(th.is_alive() for th in ts):
        time.sleep(0.01)
    stop[0] = True
    for th in ts:
        th.join()
    elapsed = time.perf_counter() - t0
    if meter is not None:
        meter.stop()
    total = sum(counts)
    return {"ops": total, "seconds": elapsed, "ops_per_s": total / elapsed, "threads": threads}


def _summary(samples_ns):
    s = sorted(samples_ns)
    return {"p50_us": s[len(s) // 2] / 1e3, "p90_us": s[int(len(s) * 0.9)] / 1e3,
            "mean_us": statistics.fmean(s) / 1e3, "n": len(s)}


def latency(eng, calls: int = 20_000, max_seconds: float = 10.0) -> dict:
    cids = _clients(eng, 100, "lat-")
    perf = time.perf_counter_ns
    # client(): warm up, then time each call
    for c in cids:
        eng.client(c)
    samples = []
    deadline = time.perf_counter() + max_seconds / 2
    for i in range(calls):
        c = cids[i % len(cids)]
        t0 = perf()
        eng.client(c)
        samples.append(perf() - t0)
        if i % 1024 == 0 and time.perf_counter() > deadline:
            break
    out = {"client": _summary(samples)}
    # subscribe(): timed; the matching cancel is not
    samples = []
    deadline = time.perf_counter() + max_seconds / 2
    amount = Decimal("80000.00")
    for i in range(calls):
        c = cids[i % len(cids)]
        t0 = perf()
        eng.subscribe(c, 1, amount)
        samples.append(perf() - t0)
        eng.cancel(c, 1)
        if i % 256 == 0 and time.perf_counter() > deadline:
            break
    out["subscribe"] = _summary(samples)
    return out


# ----------------------------------------------------------------------------- PostgreSQL
def _machine_cpu() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU of the machine since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return total - idle, total


def _proc_cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            after_name = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(after_name[11]) + int(after_name[12])


def _children(parent: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == parent:
                    kids.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return kids


class ServerMeter:
    """What a run cost on a PostgreSQL server.

    Over the timed window (``start``/``stop``): CPU of this process, of the server's processes
    (the postmaster and its children, when the server runs on this machine) and of the whole
    machine, and the engine's round trips when it counts them. Over the engine's session
    (``begin``/``end``: open, mix, close): WAL fsyncs, WAL writes, WAL bytes and commits from
    the server's statistics. A backend publishes its statistics when it exits (otherwise only
    every few seconds), so the session is measured between moments when no backend of the
    database is alive; opening the engine adds a handful of commits to thousands.
    """

    def __init__(self, admin, database: str):
        self.admin, self.database, self.engine = admin, database, None
        backend = admin.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.postmaster = None
        try:
            with open(f"/proc/{backend}/stat") as f:
                self.postmaster = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass  # the server runs elsewhere: no server CPU figure

    def _server_ticks(self):
        if self.postmaster is None:
            return None
        return _proc_cpu_ticks(self.postmaster) + sum(_proc_cpu_ticks(p) for p in _children(self.postmaster))

    def _settled_stats(self):
        """The server's statistics once every backend of the database has exited."""
        deadline = time.monotonic() + 10
        while self.admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                 (self.database,)).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # the last exits publish their statistics
        # this connection's own pending statistics (CREATE DATABASE's WAL) go out now
        self.admin.execute("SELECT pg_stat_force_next_flush()")
        self.admin.execute("SELECT pg_stat_clear_snapshot()")
        return self.admin.execute(
            "SELECT w.wal_sync, w.wal_write, w.wal_bytes, d.xact_commit, d.xact_rollback, w.wal_sync_time "
            "FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = %s", (self.database,)).fetchone()

    def begin(self):
        """Before the engine is opened (no backend of the database alive)."""
        self.stats0 = self._settled_stats()

    def start(self):
        self.trips0 = getattr(self.engine, "round_trips", None)
        self.machine0 = _machine_cpu()
        self.server0 = self._server_ticks()
        self.client0 = os.times()

    def stop(self):
        self.client1 = os.times()
        self.server1 = self._server_ticks()
        self.machine1 = _machine_cpu()
        self.trips1 = getattr(self.engine, "round_trips", None)

    def window(self) -> dict:
        """CPU seconds and round trips of the last ``start``/``stop`` window (sums, not rates)."""
        busy = self.machine1[0] - self.machine0[0]
        total = self.machine1[1] - self.machine0[1]
        w = {"client_cpu_s": (self.client1.user + self.client1.system) - (self.client0.user + self.client0.system),
             "machine_busy_cpu_s": busy / os.sysconf("SC_CLK_TCK") if total else None,
             "server_cpu_s": None, "round_trips": None}
        if self.server0 is not None:
            w["server_cpu_s"] = (self.server1 - self.server0) / os.sysconf("SC_CLK_TCK")
        if self.trips0 is not None and self.trips1 is not None:
            w["round_trips"] = self.trips1 - self.trips0
        return w

    def end(self, ops: int, seconds: float) -> dict:
        """After the engine is closed: the figures per operation of the mix."""
        stats1 = self._settled_stats()
        d = [b - a for a, b in zip(self.stats0, stats1)]
        out = per_op(self.window(), ops, seconds)
        out.update({
            "wal_fsyncs_per_op": d[0] / ops,
            "wal_writes_per_op": d[1] / ops,
            "wal_bytes_per_op": float(d[2]) / ops,
            "commits_per_op": d[3] / ops,
            "rollbacks_per_op": d[4] / ops,
        })
        if d[5]:  # track_wal_io_timing was on in the engine's sessions (ms in the statistics)
            out["wal_fsync_wait_us_per_op"] = float(d[5]) * 1e3 / ops
        return out


def per_op(w: dict, ops: int, seconds: float) -> dict:
    """CPU per operation and cores in use, from the sums of ``ServerMeter.window``."""
    out = {"client_cpu_us_per_op": w["client_cpu_s"] * 1e6 / ops,
           "client_cpu_cores": w["client_cpu_s"] / seconds, "cpus": os.cpu_count() or 1}
    if w["machine_busy_cpu_s"] is not None:
        out["machine_busy_cores"] = w["machine_busy_cpu_s"] / seconds
    if w["server_cpu_s"] is not None:
        out["server_cpu_us_per_op"] = w["server_cpu_s"] * 1e6 / ops
        out["server_cpu_cores"] = w["server_cpu_s"] / seconds
        if "machine_busy_cores" in out:
            out["other_cpu_cores"] = max(0.0, out["machine_busy_cores"] - out["server_cpu_cores"]
                                         - out["client_cpu_cores"])
    if w["round_trips"] is not None:
        out["round_trips_per_op"] = w["round_trips"] / ops
    return out


def check_in_database(url: str, pools: list[list[str]]):
    """The clients an engine registered are rows of the database: the engine really works on
    PostgreSQL (a build of the binding that took the URL for a directory name would not)."""
    import psycopg

    expected = sum(len(pool) for pool in pools)
    try:
        with psycopg.connect(url) as con:
            found = con.execute("SELECT count(*) FROM fundcore_clients").fetchone()[0]
    except psycopg.Error as e:
        found = f"none: {str(e).splitlines()[0]}"
    if found != expected:
        raise SystemExit(f"the engine's {expected} clients are not in the database (found {found}): "
                         "it does not work on PostgreSQL")


def database_url(admin_url: str, database: str) -> str:
    """``admin_url`` naming ``database`` instead."""
    from psycopg.conninfo import conninfo_to_dict

    if not admin_url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--database-url must be a postgresql:// URL")
    base, _, query = admin_url.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + database + (f"?{query}" if query else "")
    conninfo_to_dict(url)  # a malformed URL fails here, before anything is created
    return url


def run_pg(engine: str, admin_url: str, seconds: float, threads: int) -> dict:
    """The mix against a fresh database on the server of ``admin_url``; the database is dropped
    afterwards. The clients are registered by a first engine, closed before the measured one
    opens, so the server's figures count the mix alone."""
    import psycopg

    database = f"bench_{engine}_{threads}_{os.getpid()}_{secrets.token_hex(3)}"
    url = database_url(admin_url, database)
    make = PG_FACTORIES[engine]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        with contextlib.suppress(psycopg.Error):  # a superuser's setting: time each WAL fsync
            admin.execute(f'ALTER DATABASE "{database}" SET track_wal_io_timing = on')
        eng = None
        try:
            eng = make(url, threads)
            pools = client_pools(eng, threads)
            eng.close()
            check_in_database(url, pools)
            meter = ServerMeter(admin, database)
            meter.begin()
            eng = meter.engine = make(url, threads)
            res = {"engine": engine, "database": "postgresql"}
            res["mix"] = mix(eng, seconds, threads, pools=pools, meter=meter)
            eng.close()
            eng = None
            res["mix"].update(meter.end(res["mix"]["ops"], res["mix"]["seconds"]))
        finally:
            if eng is not None:
                eng.close()
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return res


def alternate(names: list[str], window, windows: int) -> dict[str, list[dict]]:
    """``window(name)`` for each name in turn, ``windows`` times each, the order reversed every
    other round (A B B A A B …), so that other work on the machine falls on all of them alike;
    returns each name's window results in order."""
    done: dict[str, list[dict]] = {n: [] for n in names}
    for i in range(windows):
        for n in (names if i % 2 == 0 else names[::-1]):
            done[n].append(window(n))
    return done


def run_paired(engines: list[str], admin_url: str, threads: int, windows: int, window_seconds: float) -> dict:
    """Engines side by side on one server, each on its own fresh database, measured in short
    alternating windows (``alternate``); ops/s of an engine = its operations over its windows'
    time. CPU per operation comes from the same windows (only the measured engine works during
    its window)."""
    import psycopg

    tag = f"{os.getpid()}_{secrets.token_hex(3)}"
    names = {e: f"bench_{e}_{threads}_paired_{tag}" for e in engines}
    engs, pools = {}, {}
    with psycopg.connect(admin_url, autocommit=True) as admin:
        try:
            for e in engines:
                admin.execute(f'CREATE DATABASE "{names[e]}"')
                engs[e] = PG_FACTORIES[e](database_url(admin_url, names[e]), threads)
                pools[e] = client_pools(engs[e], threads)
                check_in_database(database_url(admin_url, names[e]), pools[e])
                mix(engs[e], 0.3, threads, pools=pools[e])  # warm-up: connections, prepared statements
            meter = ServerMeter(admin, names[engines[0]])

            def window(e: str) -> dict:
                meter.engine = engs[e]
                return dict(mix(engs[e], window_seconds, threads, pools=pools[e], meter=meter), **meter.window())

            done = alternate(engines, window, windows)
        finally:
            for eng in engs.values():
                eng.close()
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out = {"threads": threads, "windows": windows, "window_seconds": window_seconds, "engines": {}}
    for e in engines:
        total = {"ops": sum(w["ops"] for w in done[e]), "seconds": sum(w["seconds"] for w in done[e])}
        for key in ("client_cpu_s", "server_cpu_s", "machine_busy_cpu_s", "round_trips"):
            values = [w[key] for w in done[e]]
            total[key] = None if None in values else sum(values)
        out["engines"][e] = dict(per_op(total, total["ops"], total["seconds"]), ops=total["ops"],
                                 seconds=total["seconds"], ops_per_s=total["ops"] / total["seconds"],
                                 threads=threads, windows=[round(w["ops_per_s"], 1) for w in done[e]])
    return out


# ----------------------------------------------------------------------------- observability
OBSERVE_MODES = ("off", "on", "debug")


def observe(mode: str, log_path: str):
    """Sets up this process as a host would, before the engine logs anything (the binding
    caches each logger's level at its first record): ``on`` = the metrics recorder and
    ``logging`` at INFO into ``log_path``; ``debug`` = the same at DEBUG, where every operation's
    span and closing event become records; ``off`` = neither (``logging`` left unconfigured)."""
    if mode == "off":
        return
    import fundcore

    if not fundcore.enable_metrics():
        raise SystemExit("fundcore.enable_metrics(): another metrics recorder was installed first")
    logging.basicConfig(filename=log_path, level=logging.DEBUG if mode == "debug" else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def operations_recorded() -> int | None:
    """Calls the metrics recorder counted (``fundcore_operations_total``); None when it is off."""
    import fundcore

    rows = [m["value"] for m in fundcore.metrics() if m["name"] == "fundcore_operations_total"]
    return sum(rows) if rows else None


def serve(durability: str, mode: str, threads: int):
    """A ``fundcore`` engine on a fresh store, observed as ``mode`` says, driven through
    stdin/stdout one JSON line at a time: it answers ``ready`` once its clients are registered
    and warmed up, then each ``mix SECONDS`` with the window's result (with the operations the
    recorder counted so far, which must match the calls made), until end of input."""
    os.makedirs(WORK, exist_ok=True)
    d = tempfile.mkdtemp(prefix=f"py-observe-{mode}-", dir=WORK)
    try:
        observe(mode, os.path.join(d, "host.log"))
        eng = fundcore_factory(os.path.join(d, "store"), durability == "durable")
        pools = client_pools(eng, threads)
        calls = sum(len(pool) for pool in pools)
        calls += mix(eng, 0.3, threads, pools=pools)["ops"]  # warm-up
        print(json.dumps({"ready": mode}), flush=True)
        for line in sys.stdin:
            seconds = float(line.split()[1])
            cpu0 = os.times()
            r = mix(eng, seconds, threads, pools=pools)
            cpu1 = os.times()
            calls += r["ops"]
            r.update(cpu_s=(cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), calls=calls,
                     recorded=operations_recorded())
            print(json.dumps(r), flush=True)
        eng.close()
        logging.shutdown()
        print(json.dumps({"log_bytes": os.path.getsize(os.path.join(d, "host.log"))
                          if os.path.exists(os.path.join(d, "host.log")) else 0}), flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_observed(durability: str, threads: int, windows: int, window_seconds: float,
                 modes: tuple[str, str] = ("on", "off")) -> dict:
    """``fundcore`` observed (``modes[0]``) and not (``modes[1]``, ``off``), in two driver
    processes (``serve``) measured in alternating windows (``alternate``); ratio = ops/s observed
    / ops/s not, over all windows, and per window pair; beside it each side's CPU time per
    operation. After each observed window the recorder must have counted every call."""
    procs = {}
    try:
        for mode in modes:
            procs[mode] = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--serve", mode, "--durability", durability,
                 "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for mode, p in procs.items():
            if json.loads(p.stdout.readline() or "{}").get("ready") != mode:
                raise SystemExit(f"the {mode} driver did not start")

        def window(mode: str) -> dict:
            p = procs[mode]
            p.stdin.write(f"mix {window_seconds}\n")
            p.stdin.flush()
            r = json.loads(p.stdout.readline())
            if mode != "off" and r["recorded"] != r["calls"]:
                raise SystemExit(f"the recorder counted {r['recorded']} operations of {r['calls']}")
            if mode == "off" and r["recorded"] is not None:
                raise SystemExit("the unobserved driver has a metrics recorder")
            return r

        done = alternate(list(modes), window, windows)
        logs = {}
        for mode, p in procs.items():
            p.stdin.close()
            logs[mode] = json.loads(p.stdout.readline())["log_bytes"]
            p.wait(30)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    out = {"durability": durability, "threads": threads, "windows": windows, "window_seconds": window_seconds,
           "modes": {}}
    for mode in modes:
        ops, secs = sum(w["ops"] for w in done[mode]), sum(w["seconds"] for w in done[mode])
        cpu = sum(w["cpu_s"] for w in done[mode])
        out["modes"][mode] = {"ops": ops, "seconds": secs, "ops_per_s": ops / secs, "cpu_us_per_op": cpu * 1e6 / ops,
                              "log_bytes": logs[mode], "windows": [round(w["ops_per_s"], 1) for w in done[mode]]}
    on, off = (out["modes"][m] for m in modes)
    out["ratio"] = on["ops_per_s"] / off["ops_per_s"]
    # a second view, less tied than ops/s to the share of the machine that other work leaves
    out["cpu_per_op_ratio"] = on["cpu_us_per_op"] / off["cpu_us_per_op"]
    out["ratio_per_window_pair"] = [round(a / b, 3) for a, b in zip(on["windows"], off["windows"])]
    out["ratio_median_window_pair"] = statistics.median(out["ratio_per_window_pair"])
    return out


# ----------------------------------------------------------------------------- CLI
def run(engine: str, durability: str, seconds: float, threads: int, latency_calls: int, what: str) -> dict:
    os.makedirs(WORK, exist_ok=True)
    d = tempfile.mkdtemp(prefix=f"py-{engine}-", dir=WORK)
    try:
        eng = FACTORIES[engine](os.path.join(d, "store"), durability == "durable")
        res = {"engine": engine, "durability": durability}
        if what in ("mix", "all"):
            res["mix"] = mix(eng, seconds, threads)
        if what in ("latency", "all"):
            res["latency"] = latency(eng, latency_calls)
        del eng
        return res
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description="Python driver: ops/s and per-call latency")
    ap.add_argument("--engine", choices=sorted(FACTORIES) + sorted(PG_FACTORIES))
    ap.add_argument("--database-url", help="PostgreSQL server for the *_pg engines (a role that may CREATE DATABASE)")
    ap.add_argument("--durability", choices=["periodic", "durable"], default="periodic")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--latency-calls", type=int, default=20_000)
    ap.add_argument("--what", choices=["mix", "latency", "all"], default="all")
    ap.add_argument("--paired", help="comma list of *_pg engines measured side by side in alternating windows "
                                     "(instead of --engine)")
    ap.add_argument("--windows", type=int, default=6, help="--paired, --observed: windows per engine")
    ap.add_argument("--observed", nargs="?", const="on", choices=OBSERVE_MODES[1:],
                    help="fundcore observed (on: metrics and logging at INFO; debug: at DEBUG) against not, "
                         "in two processes, alternating windows (instead of --engine)")
    ap.add_argument("--serve", choices=OBSERVE_MODES, help=argparse.SUPPRESS)  # one side of --observed
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.serve:
        serve(a.durability, a.serve, a.threads)
        return
    if a.observed:
        r = run_observed(a.durability, a.threads, a.windows, a.seconds, modes=(a.observed, "off"))
    elif a.paired:
        engines = a.paired.split(",")
        if not a.database_url or set(engines) - set(PG_FACTORIES):
            ap.error(f"--paired takes engines of {', '.join(sorted(PG_FACTORIES))} and needs --database-url")
        r = run_paired(engines, a.database_url, a.threads, a.windows, a.seconds)
    elif a.engine in PG_FACTORIES:
        if not a.database_url:
            ap.error(f"--engine {a.engine} needs --database-url")
        r = run_pg(a.engine, a.database_url, a.seconds, a.threads)
    elif a.engine:
        r = run(a.engine, a.durability, a.seconds, a.threads, a.latency_calls, a.what)
    else:
        ap.error("--engine, --paired or --observed is required")
    if a.json:
        print(json.dumps(r))
    else:
        print(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()

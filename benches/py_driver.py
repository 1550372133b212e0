"""One Python driver for fundcore and for the sqlite3 baseline, so the two are measured alike.

    python benches/py_driver.py --engine fundcore|baseline --durability periodic|durable \
        [--seconds 3] [--threads 1] [--latency-calls 20000] [--json]

It measures, on a fresh store in a temporary directory on the benchmark disk:

* ``mix``: ops/s of a subscribe/cancel mix (each client subscribes to a fund and cancels it,
  round-robin over a pool of clients and the five funds), with ``--threads`` callers;
* ``latency``: per-call time of ``client()`` and of ``subscribe()`` (p50, p90, mean; each
  timed subscribe is followed by an untimed cancel so the balance never runs out).

An engine factory is ``factory(path, durable) -> engine`` with the Python API of docs/apis.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
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


# ----------------------------------------------------------------------------- measurements
def _clients(eng, n: int, tag: str):
    return [eng.register_client(f"Bench {tag}{i}", f"bench{tag}{i}@example.com",
                                f"+57300{i % 10_000_000:07d}", channel="email" if i % 2 else "sms").id
            for i in range(n)]


def mix(eng, seconds: float, threads: int = 1, clients_per_thread: int = 50, max_ops: int = 5_000_000) -> dict:
    """subscribe/cancel pairs; returns ops/s over all threads (every call is one op)."""
    pools = [_clients(eng, clients_per_thread, f"t{t}-") for t in range(threads)]
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
    start_gate.wait()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline and any(th.is_alive() for th in ts):
        time.sleep(0.01)
    stop[0] = True
    for th in ts:
        th.join()
    elapsed = time.perf_counter() - t0
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
    ap.add_argument("--engine", choices=sorted(FACTORIES), required=True)
    ap.add_argument("--durability", choices=["periodic", "durable"], default="periodic")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--latency-calls", type=int, default=20_000)
    ap.add_argument("--what", choices=["mix", "latency", "all"], default="all")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = run(a.engine, a.durability, a.seconds, a.threads, a.latency_calls, a.what)
    if a.json:
        print(json.dumps(r))
    else:
        print(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()

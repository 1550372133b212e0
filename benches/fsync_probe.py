"""fsync probe: how many 4 KiB write + fsync rounds per second this disk does.

That is the physical limit for durable commits by one caller: a store that fsyncs every commit
cannot do more commits per second from one thread than this.

    python benches/fsync_probe.py [--dir DIR] [--seconds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time


def probe(directory: str, seconds: float = 3.0) -> dict:
    os.makedirs(directory, exist_ok=True)
    os.sync()  # write back what others left dirty, so the probe measures this disk, not a backlog
    block = os.urandom(4096)
    lat = []
    with tempfile.NamedTemporaryFile(dir=directory, prefix="fsync-probe-", delete=True) as f:
        fd = f.fileno()
        # preallocate so the loop measures data fsyncs, not file growth
        os.pwrite(fd, b"\0" * (4096 * 256), 0)
        os.fsync(fd)
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            t0 = time.perf_counter()
            os.pwrite(fd, block, (n % 256) * 4096)
            os.fsync(fd)
            t1 = time.perf_counter()
            lat.append(t1 - t0)
            n += 1
            if t1 >= deadline:
                break
        elapsed = time.perf_counter() - start
    lat.sort()
    return {
        "fsyncs_per_s": n / elapsed,
        "count": n,
        "seconds": elapsed,
        "p50_us": statistics.median(lat) * 1e6,
        "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6,
        "dir": os.path.abspath(directory),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "work"))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = probe(a.dir, a.seconds)
    if a.json:
        print(json.dumps(r))
    else:
        print(f"{r['fsyncs_per_s']:.0f} fsyncs/s ({r['count']} in {r['seconds']:.1f} s; "
              f"p50 {r['p50_us']:.0f} µs, p99 {r['p99_us']:.0f} µs) in {r['dir']}")


if __name__ == "__main__":
    main()

"""One engine process of the failover test: ``fundcore.Engine(url)`` shared by several threads
making keyed subscribe/cancel calls on the given clients, and a dispatcher thread whose notifier
writes down every notification it is given. Each request is retried with its key until it is
answered (acknowledged or refused) or its budget runs out; every attempt is recorded
(history.Recorder). Runs until the stop file appears, then finishes the requests in hand.

    python engine_load.py --url URL --clients a,b,c --out history.jsonl --notified sent.jsonl \
        --stop stopfile --name p1 [--threads 4] [--operation-timeout 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import fundcore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from history import OK, REFUSED, Attempt, Recorder, Request, classify_error

#: Funds the load uses and their minimums (the default catalogue).
FUNDS = {1: 75_000, 3: 50_000, 5: 100_000}
#: A request stops being retried after this many attempts or seconds.
MAX_ATTEMPTS = 60
REQUEST_BUDGET_S = 45.0


class Notifier:
    """Writes down each notification it is given (its transaction and id), then reports it sent."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed at exit
        self.lock = threading.Lock()

    def send(self, notification: Any) -> None:
        line = json.dumps({"transaction_id": str(notification.transaction_id), "id": str(notification.id)})
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--notified", required=True, type=Path)
    parser.add_argument("--stop", required=True, type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--operation-timeout", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()

    engine = fundcore.Engine(args.url, pool_size=4, operation_timeout_ms=int(args.operation_timeout * 1000))
    print(f"{args.name}: engine open (operation timeout {args.operation_timeout} s)", flush=True)
    clients = args.clients.split(",")
    recorder = Recorder(args.out)
    notifier = Notifier(args.notified)
    hard_stop = time.monotonic() + args.max_seconds
    stopping = threading.Event()

    def stop_requested() -> bool:
        if not stopping.is_set() and (args.stop.exists() or time.monotonic() > hard_stop):
            stopping.set()
        return stopping.is_set()

    def call(request: Request) -> None:
        started_at = time.monotonic()
        delay = 0.05
        while len(request.attempts) < MAX_ATTEMPTS and time.monotonic() - started_at < REQUEST_BUDGET_S:
            began = time.time()
            try:
                if request.kind == "subscribe":
                    tx = engine.subscribe(
                        request.client_id, request.fund_id, Decimal(request.amount or "0"), idempotency_key=request.key
                    )
                else:
                    tx = engine.cancel(request.client_id, request.fund_id, idempotency_key=request.key)
                request.attempts.append(Attempt(began, time.time(), OK, None, str(tx.id), args.name))
                return
            except fundcore.FundcoreError as error:
                outcome, code = classify_error(error)
                request.attempts.append(Attempt(began, time.time(), outcome, code, None, args.name))
                if outcome == REFUSED:
                    return
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def caller(seed: int) -> None:
        rng = random.Random(f"{args.name}-{seed}")
        while not stop_requested():
            client = rng.choice(clients)
            fund = rng.choice(list(FUNDS))
            if rng.random() < 0.55:
                amount = str(FUNDS[fund] + 1000 * rng.randint(0, 20))
                request = Request(args.name, client, fund, "subscribe", amount, str(uuid.uuid4()))
            else:
                request = Request(args.name, client, fund, "cancel", None, str(uuid.uuid4()))
            call(request)
            recorder.record(request)

    def dispatcher() -> None:
        while not stopping.is_set():
            with contextlib.suppress(fundcore.FundcoreError):  # the store is away: the next round tries again
                engine.dispatch_notifications(notifier, 100)
            time.sleep(0.1)

    threads = [threading.Thread(target=caller, args=(n,), daemon=True) for n in range(args.threads)]
    sender = threading.Thread(target=dispatcher, daemon=True)
    for thread in [*threads, sender]:
        thread.start()
    for thread in threads:
        thread.join(args.max_seconds + REQUEST_BUDGET_S + 30)
    stopping.set()
    sender.join(30)
    # what is still pending is sent now, so every committed change is notified once
    for _ in range(20):
        try:
            if engine.dispatch_notifications(notifier, 500).delivered == 0:
                break
        except fundcore.FundcoreError:
            time.sleep(0.2)
    recorder.close()
    engine.close()
    alive = [t for t in threads if t.is_alive()]
    print(f"{args.name}: done ({len(alive)} callers still running)", flush=True)
    return 1 if alive else 0


if __name__ == "__main__":
    sys.exit(main())

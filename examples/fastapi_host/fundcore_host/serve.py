"""Run the host: ``python -m fundcore_host.serve [--host 127.0.0.1] [--port 8000]`` (what
``make demo`` runs; settings from the environment, see ``config.py``).

Over a bare ``uvicorn --factory fundcore_host.app:create_app`` this adds:

* **the store is opened first**: when it cannot be (another process holds it, say), the
  engine's message is logged as one line and the process exits with status 1, no traceback;
* **request heads are capped while they are read**: uvicorn's httptools parser has no limit
  (an 8 MB header is read into memory), so the server speaks HTTP/1.1 through h11, whose
  buffer for an incomplete head is bounded; a head that outgrows it is answered 431
  ``REQUEST_HEADERS_TOO_LARGE`` in the error envelope, like the app's own 16 KiB check;
* uvicorn's own log lines use the host's one-line format;
* **several worker processes** (``--workers N``, PostgreSQL store only): the parent opens no
  engine; it checks the database once in a separate process, then uvicorn starts N workers,
  each of which opens its own engine and runs its own notification dispatcher (the outbox
  is claimed with ``FOR UPDATE SKIP LOCKED``, so every notification is sent once); their
  metrics are added up for ``GET /metrics`` through prometheus_client's multiprocess mode, in a
  fresh directory made for the run (``PROMETHEUS_MULTIPROC_DIR``, see ``metrics.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

import fundcore

from .app import create_app
from .config import ConfigError, Settings
from .errors import host_message
from .logs import configure_logging, printable, uvicorn_log_config
from .metrics import MULTIPROCESS_DIR_VARIABLE, multiprocess_dir
from .middleware import MAX_HEADER_BYTES

log = logging.getLogger("fundcore_host")

#: The most h11 buffers of a request head not yet complete: the app's header cap plus room for
#: the request line. Past it the connection gets its 431 and is closed.
HEAD_BUFFER_BYTES = MAX_HEADER_BYTES + 8 * 1024


def header_capped_protocol(locale: str) -> type[H11Protocol]:
    """uvicorn's h11 protocol, answering an oversized request head with the 431 envelope
    (uvicorn itself answers any parse error with a plain-text 400)."""
    body = json.dumps(
        {
            "status": "error",
            "code": "REQUEST_HEADERS_TOO_LARGE",
            "message": host_message("REQUEST_HEADERS_TOO_LARGE", locale),
            "errors": None,
        }
    ).encode("utf-8")

    class HeaderCappedH11Protocol(H11Protocol):
        def __init__(
            self,
            config: uvicorn.Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self._head_too_large = False
            next_event = self.conn.next_event

            def watched_next_event() -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
                try:
                    return next_event()
                except h11.RemoteProtocolError as error:
                    # h11 hints 431 when an incomplete head outgrew its buffer
                    self._head_too_large = error.error_status_hint == 431
                    raise

            self.conn.next_event = watched_next_event  # type: ignore[method-assign]

        def send_400_response(self, msg: str) -> None:
            if not self._head_too_large:
                super().send_400_response(msg)
                return
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", uuid.uuid4().hex.encode()),
                (b"connection", b"close"),
            ]
            for event in (
                h11.Response(status_code=431, headers=headers, reason=b"Request Header Fields Too Large"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
            self.transport.close()

    return HeaderCappedH11Protocol


def __getattr__(name: str) -> type[H11Protocol]:
    """``fundcore_host.serve:WorkerH11Protocol``: the capped protocol for worker processes,
    which uvicorn imports by name (a class built in a function cannot be sent to them); its
    locale is the environment's, which the parent process checked."""
    if name == "WorkerH11Protocol":
        protocol = header_capped_protocol(Settings.from_env().locale)
        globals()[name] = protocol
        return protocol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(settings: Settings) -> fundcore.Engine | None:
    """The engine on ``settings.store``, or ``None`` after one log line saying why not
    (e.g. the store is open in another process, or the database cannot be reached: the
    engine's own words, no traceback, never the database password)."""
    try:
        return settings.open_engine()
    except fundcore.FundcoreError as error:
        log.error("cannot start: %s", printable(settings.redact(error.message)))
        return None


def _probe_store(settings: Settings, result: Connection) -> None:
    """Run in a separate process: open and close the store, send back the error text or ``None``."""
    try:
        settings.open_engine().close()
        result.send(None)
    except fundcore.FundcoreError as error:
        result.send(error.message)
    except Exception as error:  # reported to the parent as one line
        result.send(f"{type(error).__name__}: {error}")


def check_store_in_child(settings: Settings) -> bool:
    """Whether the store opens, tried in a spawned process so that the parent never holds an
    engine before its workers start; logs one line when it does not."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    probe = context.Process(target=_probe_store, args=(settings, sender), name="fundcore-store-check")
    probe.start()
    sender.close()
    try:
        message = receiver.recv() if receiver.poll(120) else "the store check did not answer within 120 s"
    except EOFError:
        message = "the store check process ended without an answer"
    probe.join(10)
    if message is not None:
        log.error("cannot start: %s", printable(settings.redact(message)))
        return False
    return True


@contextlib.contextmanager
def shared_metrics_dir(workers: int) -> Iterator[str | None]:
    """Where the workers keep their metrics (prometheus_client's multiprocess mode), set in the
    environment they inherit: the directory ``PROMETHEUS_MULTIPROC_DIR`` names, emptied of an
    earlier run's files (prometheus_client adds up every file it finds there); else, for
    several workers, a fresh one, removed afterwards; else none (one process counts alone)."""
    given = multiprocess_dir()
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.remove(os.path.join(given, name))
        yield given
        return
    if workers == 1:
        yield None
        return
    made = tempfile.mkdtemp(prefix="fundcore-metrics-")
    os.environ[MULTIPROCESS_DIR_VARIABLE] = made
    try:
        yield made
    finally:
        del os.environ[MULTIPROCESS_DIR_VARIABLE]
        shutil.rmtree(made, ignore_errors=True)


def run_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve with ``workers`` processes (uvicorn's supervisor); each opens its own engine at
    startup (``create_app()`` reads the same environment) and keeps its metrics in
    :func:`shared_metrics_dir`."""
    # Ctrl-C: the workers have shut down cleanly
    with shared_metrics_dir(workers), contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            "fundcore_host.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            http="fundcore_host.serve:WorkerH11Protocol",
            h11_max_incomplete_event_size=HEAD_BUFFER_BYTES,
            access_log=False,
            log_config=uvicorn_log_config(settings.log_level, settings.log_format),
            lifespan="on",
        )


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> int:
    """Open the store (or check it, for several workers) and serve; the exit status."""
    if workers > 1:
        if settings.database_url is None:
            log.error(
                "cannot start: %d workers need the PostgreSQL store (FUNDCORE_DATABASE_URL); "
                "the embedded store is open in one process only",
                workers,
            )
            return 2
        if not check_store_in_child(settings):
            return 1
        log.info("serving %s with %d workers", settings.store_label, workers)
        run_workers(settings, host, port, workers)
        return 0
    engine = open_store(settings)
    if engine is None:
        return 1
    run(settings, engine, host, port)
    return 0


def run(settings: Settings, engine: fundcore.Engine, host: str, port: int) -> None:
    """Serve the app on ``engine`` until interrupted; the engine is closed afterwards."""
    try:
        with shared_metrics_dir(1):  # a PROMETHEUS_MULTIPROC_DIR given is emptied first
            app = create_app(settings, engine=engine)
            config = uvicorn.Config(
                app,
                host=host,
                port=port,
                http=header_capped_protocol(settings.locale),
                h11_max_incomplete_event_size=HEAD_BUFFER_BYTES,
                access_log=False,  # the app writes its own, escaped
                log_config=uvicorn_log_config(settings.log_level, settings.log_format),
                lifespan="on",
            )
            # Ctrl-C: uvicorn has shut down cleanly and raises the signal again afterwards
            with contextlib.suppress(KeyboardInterrupt):
                uvicorn.Server(config).run()
    finally:
        engine.close()


def load_settings() -> Settings | None:
    """Settings from the environment, or ``None`` after one log line saying which is wrong."""
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        configure_logging()
        log.error("cannot start: %s", printable(error))
        return None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fundcore_host.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each with its own engine and dispatcher (more than 1 needs FUNDCORE_DATABASE_URL)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    settings = load_settings()
    if settings is None:
        return 2
    return serve(settings, args.host, args.port, args.workers)


if __name__ == "__main__":
    sys.exit(main())

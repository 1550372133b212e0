"""Log lines of the host: one record per line, caller-controlled text made visible.

A request path, query, header or body value can hold a newline (``%0A`` in a path is decoded
to a real newline before the app sees it), an ESC sequence that recolours a terminal, or a
right-to-left override. Written as is, such a value forges a second log line or hides text.
So:

* :func:`printable` escapes a caller-controlled value before it goes into a message:
  ``\\n`` for a newline, ``\\x1b`` for ESC, ``\\\\`` for a backslash (so an escape in the
  log is never ambiguous with text the caller typed);
* :class:`OneLineFormatter` escapes whatever control characters are left in the finished line
  (a traceback included), so every record is exactly one line whatever a message holds.

``FUNDCORE_LOG_FORMAT=json`` writes each record as one JSON object instead
(:class:`JsonFormatter`: ``time``, ``level``, ``logger``, ``request_id``, ``message`` and, for an
error with a traceback, ``exception``); JSON escapes every control character, so that is one
line too. Both formats cover the host's loggers (``fundcore_host.*``), the engine's
(``fundcore.*``, whose events carry ids and outcomes, never contact data) and uvicorn's.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

#: The current request's id, for log lines written while serving it.
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

#: Characters that end a line, move the cursor, recolour a terminal or reorder text: C0 and
#: C1 controls, DEL, the Unicode line and paragraph separators, the bidirectional controls
#: and lone surrogates.
_UNSAFE = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_RE = re.compile(f"[{_UNSAFE}]")
_UNSAFE_OR_BACKSLASH_RE = re.compile(f"[{_UNSAFE}\\\\]")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: The name of the handler :func:`configure_logging` installs (so it is installed once).
_HANDLER_NAME = "fundcore_host"

#: The loggers whose records the host writes: its own and the engine's.
LOGGERS = ("fundcore_host", "fundcore")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

#: How records are written: ``text`` lines (:data:`LOG_FORMAT`) or one JSON object per line.
LogFormat = Literal["text", "json"]


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(value: object) -> str:
    """``value`` as text safe for one log line: control characters and backslashes escaped."""
    return _UNSAFE_OR_BACKSLASH_RE.sub(_escape, str(value))


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (backslashes kept: idempotent)."""
    return _UNSAFE_RE.sub(_escape, text)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class OneLineFormatter(logging.Formatter):
    """A formatter whose every record is one line: control characters are shown escaped,
    tracebacks included (``\\n`` between their lines)."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, RFC 3339 with milliseconds), ``level``,
    ``logger``, ``request_id`` (``null`` outside a request), ``message``, and ``exception`` (the
    traceback) when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", "-")
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": None if request_id == "-" else request_id,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii: every control character, line separator and bidirectional control is
        # written as an escape, so a record stays one line whatever a caller sent
        return json.dumps(entry, ensure_ascii=True)


def make_formatter(log_format: LogFormat = "text") -> logging.Formatter:
    """The formatter of ``log_format``."""
    return JsonFormatter() if log_format == "json" else OneLineFormatter(LOG_FORMAT)


def make_handler(stream: TextIO | None = None, log_format: LogFormat = "text") -> logging.Handler:
    """The handler the host logs through: one line per record, with the request id."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(make_formatter(log_format))
    return handler


def configure_logging(level: str = "INFO", log_format: LogFormat = "text") -> None:
    """The host's and the engine's records (:data:`LOGGERS`) are written to stderr at ``level``
    and above, with the request id, in ``log_format`` (one handler each, installed once; a
    second call changes the level and the format)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        installed = [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]
        if installed:
            for handler in installed:
                handler.setFormatter(make_formatter(log_format))
            continue
        handler = make_handler(log_format=log_format)
        handler.set_name(_HANDLER_NAME)
        logger.addHandler(handler)


def uvicorn_log_config(level: str = "INFO", log_format: LogFormat = "text") -> dict[str, Any]:
    """A ``logging.config`` dictionary for uvicorn's own loggers in the host's format."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"()": OneLineFormatter, "fmt": LOG_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"one_line": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "one_line",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }

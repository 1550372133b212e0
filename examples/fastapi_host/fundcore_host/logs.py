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
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from typing import Any, TextIO

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

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


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


def make_handler(stream: TextIO | None = None) -> logging.Handler:
    """The handler the host logs through: one line per record, with the request id."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    return handler


def configure_logging(level: str = "INFO") -> None:
    """Log lines of the host carry the request id: ``... [request_id] message`` (installed once)."""
    root = logging.getLogger("fundcore_host")
    root.setLevel(level)
    if not any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        handler = make_handler()
        handler.set_name(_HANDLER_NAME)
        root.addHandler(handler)


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config`` dictionary for uvicorn's own loggers with the same one-line format."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"one_line": {"()": OneLineFormatter, "fmt": LOG_FORMAT}},
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

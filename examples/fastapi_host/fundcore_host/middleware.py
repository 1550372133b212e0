"""The host's ASGI middleware: request ids, the access log, the request metrics, size limits,
HEAD, and the last-resort 500 envelope."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import envelope, host_message
from .logs import printable, request_id_var

log = logging.getLogger("fundcore_host")
access_log = logging.getLogger("fundcore_host.access")

#: Request bodies above this answer 413 PAYLOAD_TOO_LARGE.
MAX_BODY_BYTES = 64 * 1024
#: Request headers above this in all (names, values and their separators, as sent) answer 431
#: REQUEST_HEADERS_TOO_LARGE. `fundcore_host.serve` also stops reading a request head past
#: about this size, so an 8 MB header is never read into memory.
MAX_HEADER_BYTES = 16 * 1024
#: What ``X-Request-ID`` may be (anything else is replaced by a generated id).
REQUEST_ID_PATTERN = "^[A-Za-z0-9._:\\-]{1,128}$"
_REQUEST_ID_RE = re.compile(REQUEST_ID_PATTERN[1:-1])

#: Told of each response as it starts: the method as sent, the matched route's template (``None``
#: when no route matched), the status and the seconds since the request arrived.
ResponseObserver = Callable[[str, str | None, int, float], None]


class RequestContextMiddleware:
    """Request ids, access log, size limits, HEAD, and the last-resort 500 envelope.

    Accepts a sane ``X-Request-ID`` or generates one, echoes it on every response (errors too)
    and logs one access line per request. ``on_response`` is told of each response as it starts
    (method, route template, status, seconds so far), before the client can see it. Request
    headers over :data:`MAX_HEADER_BYTES` answer 431 and bodies over :data:`MAX_BODY_BYTES` 413,
    both in the envelope. ``HEAD`` is served as ``GET`` without the body. An exception that
    escapes the app becomes a 500 ``INTERNAL_ERROR`` envelope (when no response has started).
    """

    def __init__(
        self,
        app: ASGIApp,
        locale: Callable[[], str],
        startup_failures: list[Exception],
        on_response: ResponseObserver | None = None,
    ) -> None:
        self.app = app
        self.locale = locale
        self.startup_failures = startup_failures
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._quiet_startup_failure(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_RE.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0
        response_started = False
        head = scope.get("method") == "HEAD"
        # RFC 9110 §9.3.2: HEAD is GET without the content (same status and headers).
        app_scope = {**scope, "method": "GET"} if head else scope

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                self._observe(app_scope, scope, status, time.perf_counter() - started)
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and head:
                message = {**message, "body": b""}
            await send(message)

        header_bytes = sum(len(key) + len(value) + 4 for key, value in scope.get("headers", []))
        too_large = False
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    too_large = int(value) > MAX_BODY_BYTES
                except ValueError:
                    too_large = False

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    # FastAPI re-raises HTTPException while reading a body; the handler renders it
                    raise HTTPException(status_code=413)
            return message

        try:
            if header_bytes > MAX_HEADER_BYTES:
                response = envelope(
                    431,
                    "REQUEST_HEADERS_TOO_LARGE",
                    host_message("REQUEST_HEADERS_TOO_LARGE", self.locale()),
                    headers={"Connection": "close"},
                )
                await response(app_scope, receive, send_with_id)
            elif too_large:
                response = envelope(413, "PAYLOAD_TOO_LARGE", host_message("PAYLOAD_TOO_LARGE", self.locale()))
                await response(app_scope, receive, send_with_id)
            else:
                await self.app(app_scope, limited_receive, send_with_id)
        except Exception:
            log.exception("unhandled error serving %s", _request_line(scope))
            if response_started:
                raise
            response = envelope(500, "INTERNAL_ERROR", host_message("INTERNAL_ERROR", self.locale()))
            await response(app_scope, receive, send_with_id)
        finally:
            access_log.info(
                "%s -> %d in %.1f ms pid=%d ua=%s",
                _request_line(scope),
                status,
                (time.perf_counter() - started) * 1000,
                os.getpid(),
                printable(_header(scope, b"user-agent") or "-"),
            )
            request_id_var.reset(token)

    def _observe(self, app_scope: Scope, scope: Scope, status: int, seconds: float) -> None:
        """Tells ``on_response`` of a response (a failure there is logged, never the caller's)."""
        if self.on_response is None:
            return
        route = getattr(app_scope.get("route"), "path", None)
        try:
            self.on_response(str(scope.get("method", "-")), route if isinstance(route, str) else None, status, seconds)
        except Exception:
            log.exception("recording the response's metrics failed")

    def _quiet_startup_failure(self, send: Send) -> Send:
        """A startup failure already logged in one line is reported to the server without the
        traceback Starlette attaches (the server prints that message)."""

        async def quiet_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and self.startup_failures:
                message = {**message, "message": ""}
            await send(message)

        return quiet_send


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


#: Paths whose query is never logged: the provider's sign-in code and state arrive there.
_SECRET_QUERY_PATHS = frozenset({"/auth/oidc/callback"})


def _request_line(scope: Scope) -> str:
    """``METHOD /path?query`` for a log line, every part escaped (the path arrives
    percent-decoded, so ``%0A`` is a real newline here)."""
    query = scope.get("query_string", b"").decode("latin-1")
    if query and scope.get("path") in _SECRET_QUERY_PATHS:
        query = "..."
    target = scope.get("path", "") + (f"?{query}" if query else "")
    return f"{printable(scope.get('method', '-'))} {printable(target)}"

"""Log lines cannot be forged: what a caller controls is escaped and every record is one line."""

from __future__ import annotations

import io
import logging

import pytest
from conftest import ADMIN

from fundcore_host.logs import make_handler, one_line, printable


@pytest.mark.parametrize(
    "value, shown",
    [
        ("plain /clients/abc", "plain /clients/abc"),
        ("x\n2030-01-01 INFO forged", "x\\n2030-01-01 INFO forged"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("a\rb\tc\x00d\x7fe\x85f", "a\\rb\\tc\\x00d\\x7fe\\x85f"),
        ("line\u2028sep\u202eevil", "line\\u2028sep\\u202eevil"),
        ("back\\slash\\n", "back\\\\slash\\\\n"),
        ("José Ñandú ✓", "José Ñandú ✓"),
    ],
)
def test_printable_escapes_controls_and_backslashes(value, shown):
    assert printable(value) == shown
    assert "\n" not in printable(value) and "\x1b" not in printable(value)


def test_one_line_is_idempotent_on_printable_text():
    text = printable("a\nb\\c\x1b")
    assert one_line(text) == text


@pytest.fixture
def log_stream():
    """The host's own handler (the one `make demo` logs through), writing to a buffer."""
    stream = io.StringIO()
    handler = make_handler(stream)
    logger = logging.getLogger("fundcore_host")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_a_newline_or_escape_in_the_path_does_not_forge_a_log_line(api, log_stream):
    forged = "/clients/x%0A2030-01-01 00:00:00,000 INFO fundcore_host.access [-] GET /admin -> 200%1B[2K"
    r = api.get(forged, headers={"X-Request-ID": "forge-1", "User-Agent": b"evil\x1b[2Jagent"})
    assert r.status_code == 404  # no such route (the forged text holds a slash)
    lines = log_stream.getvalue().splitlines()
    access = [line for line in lines if "fundcore_host.access" in line and "[forge-1]" in line]
    assert len(access) == 1, lines
    (line,) = access
    assert "/clients/x\\n2030-01-01 00:00:00,000 INFO" in line
    assert "\\x1b[2K" in line and "\x1b" not in log_stream.getvalue()
    assert "ua=evil\\x1b[2Jagent" in line
    # no line of the log starts with the forged timestamp
    assert not any(line.startswith("2030-01-01") for line in lines), lines


def test_query_and_method_are_escaped_too(api, log_stream):
    api.get("/health?q=%0Aforged%0D", headers={"X-Request-ID": "forge-2"})
    (line,) = [line for line in log_stream.getvalue().splitlines() if "[forge-2]" in line]
    assert "GET /health?q=%0Aforged%0D -> 200" in line  # the query is logged as sent


def test_a_traceback_is_one_record_on_one_line(app_factory, log_stream):
    api = app_factory()

    def boom() -> None:
        raise RuntimeError("bug\nwith a second line")

    api.app.add_api_route("/boom", boom)
    assert api.get("/boom%0Aforged", headers={"X-Request-ID": "forge-3"}).status_code == 404
    assert api.get("/boom", headers={"X-Request-ID": "forge-3"}).status_code == 500
    lines = [line for line in log_stream.getvalue().splitlines() if "[forge-3]" in line]
    errors = [line for line in lines if " ERROR " in line]
    assert len(errors) == 1 and "Traceback (most recent call last):\\n" in errors[0], lines
    assert "RuntimeError: bug\\nwith a second line" in errors[0]
    # every line of the buffer is a record of its own (starts with a timestamp)
    assert all(line[:2] == "20" for line in log_stream.getvalue().splitlines())


def test_a_request_id_with_a_trailing_newline_is_replaced(app_factory, log_stream):
    """`$` in a regex matches before a final newline; the id must match in full."""
    import asyncio

    api = app_factory()
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/health",
        "raw_path": b"/health",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"x-request-id", b"abc-123\n")],
        "client": ("127.0.0.1", 1),
        "server": None,
    }
    asyncio.run(api.app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    echoed = dict(start["headers"])[b"x-request-id"]
    assert b"\n" not in echoed and len(echoed) == 32
    assert "abc-123" not in log_stream.getvalue()


def test_engine_ids_in_messages_are_logged_escaped(api, log_stream):
    cid = api.post(
        "/clients",
        json={"name": "Ana", "email": "ana@example.com", "phone": "+573001234567", "channel": "email"},
        headers=ADMIN,
    ).json()["id"]
    assert api.post(f"/clients/{cid}/subscriptions", json={"fund_id": 1}, headers=ADMIN).status_code == 201
    assert f"client {cid} subscribed to fund 1" in log_stream.getvalue()

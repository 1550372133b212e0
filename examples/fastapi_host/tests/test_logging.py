"""Log lines cannot be forged: what a caller controls is escaped and every record is one line,
in the text format and in JSON (``FUNDCORE_LOG_FORMAT=json``), which carries the request id and
no contact data or token."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta

import pytest
from conftest import ADMIN, LOOPBACK, SECRET, free_port, http_call, wait_until

from fundcore_host.demo_sinks import start_sinks
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


# ----------------------------------------------------------------------------- JSON lines


@pytest.fixture
def json_log_stream():
    """The host's handler in the JSON format (FUNDCORE_LOG_FORMAT=json), writing to a buffer."""
    stream = io.StringIO()
    handler = make_handler(stream, "json")
    logger = logging.getLogger("fundcore_host")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_json_records_are_one_object_per_line_even_when_forged(app_factory, json_log_stream):
    api = app_factory()

    def boom() -> None:
        raise RuntimeError("bug\nwith a second line")

    api.app.add_api_route("/boom", boom)
    forged = '/no/such/x%0A{"level": "INFO", "message": "forged"}%E2%80%A8%1B[2K'
    assert api.get(forged, headers={"X-Request-ID": "json-1"}).status_code == 404
    assert api.get("/boom", headers={"X-Request-ID": "json-2"}).status_code == 500
    lines = json_log_stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one whole JSON object
    assert all(set(record) >= {"time", "level", "logger", "request_id", "message"} for record in records), records
    assert all(line.isascii() and "\x1b" not in line for line in lines)
    (access,) = [r for r in records if r["request_id"] == "json-1" and r["logger"] == "fundcore_host.access"]
    assert access["message"].startswith('GET /no/such/x\\n{"level": "INFO", "message": "forged"}\\u2028\\x1b[2K -> 404')
    assert not any(r["message"] == "forged" for r in records)
    (error,) = [r for r in records if r["request_id"] == "json-2" and r["level"] == "ERROR"]
    assert error["logger"] == "fundcore_host" and "RuntimeError: bug\nwith a second line" in error["exception"]
    # startup lines come before any request: their request id is null
    assert {r["request_id"] for r in records} == {None, "json-1", "json-2"}, records
    assert datetime.fromisoformat(records[0]["time"]).utcoffset() == timedelta(0)


def test_json_logs_of_a_running_host_carry_request_ids_and_no_contact_data(live_host, tmp_path):
    """``FUNDCORE_LOG_FORMAT=json`` at DEBUG, the real notifiers delivering: every line of the
    process is a JSON object; the engine's records (``fundcore.*``) carry the request id of the
    call that made them; no line holds a name, an email address, a phone number or a token."""
    sinks = start_sinks(tmp_path / "sinks", LOOPBACK, free_port(), free_port())
    contacts = [
        {"name": "Ana Gómez", "email": "ana.gomez@example.com", "phone": "+573001112233", "channel": "email"},
        {"name": "Bruno Díaz", "email": "bruno.diaz@example.com", "phone": "+573004445566", "channel": "sms"},
    ]
    changed_email = "ana.new@example.com"
    try:
        host = live_host(
            env={
                "FUNDCORE_LOG_FORMAT": "json",
                "FUNDCORE_LOG_LEVEL": "DEBUG",
                "FUNDCORE_DISPATCH_INTERVAL_MS": "50",
                **sinks.notifier_env(),
            }
        )
        ids = []
        for n, contact in enumerate(contacts):
            status, client, _ = http_call("POST", f"{host.url}/clients", contact, ADMIN | {"X-Request-ID": f"reg-{n}"})
            assert status == 201, client
            ids.append(client["id"])
            url = f"{host.url}/clients/{client['id']}/subscriptions"
            assert http_call("POST", url, {"fund_id": 1}, ADMIN | {"X-Request-ID": f"sub-{n}"})[0] == 201
            assert http_call("POST", url, {"fund_id": 1}, ADMIN | {"X-Request-ID": f"again-{n}"})[0] == 409
        status, _, _ = http_call(
            "PATCH", f"{host.url}/clients/{ids[0]}", {"email": changed_email}, ADMIN | {"X-Request-ID": "patch-0"}
        )
        assert status == 200

        def delivered() -> bool:
            return all(
                http_call("GET", f"{host.url}/clients/{cid}/notifications", headers=ADMIN)[1][0]["status"]
                == "delivered"
                for cid in ids
            )

        wait_until(delivered, timeout_s=30)
        assert http_call("GET", f"{host.url}/metrics")[0] == 200
        assert host.stop() == 0
    finally:
        sinks.stop()

    text = host.log()
    records = [json.loads(line) for line in text.splitlines()]  # every line of the process
    assert all(set(record) >= {"time", "level", "logger", "request_id", "message"} for record in records)
    by_request: dict[str, list[dict[str, str]]] = {}
    for record in records:
        by_request.setdefault(record["request_id"], []).append(record)
    for n in range(len(contacts)):
        made = by_request[f"sub-{n}"]
        assert any(r["logger"] == "fundcore_host.access" and " -> 201 " in r["message"] for r in made), made
        engine = [r for r in made if r["logger"].startswith("fundcore.")]
        assert any('operation="subscribe"' in r["message"] for r in engine), made
        assert any('result="ok"' in r["message"] for r in engine), made
        refused = [r for r in by_request[f"again-{n}"] if r["logger"].startswith("fundcore.")]
        assert any('result="ALREADY_SUBSCRIBED"' in r["message"] for r in refused), by_request[f"again-{n}"]
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's own lines too
    assert any("dispatch round: delivered=" in r["message"] for r in records)  # outside a request
    secrets = [ADMIN["Authorization"].split()[1], SECRET, changed_email]
    secrets += [value for contact in contacts for value in (contact["name"], contact["email"], contact["phone"])]
    # also as JSON writes them (ensure_ascii: "Gómez" is "G\u00f3mez"), and the phone's digits alone
    secrets += [json.dumps(value)[1:-1] for value in secrets] + [c["phone"].lstrip("+") for c in contacts]
    leaked = sorted({secret for secret in secrets if secret in text})
    assert not leaked, leaked

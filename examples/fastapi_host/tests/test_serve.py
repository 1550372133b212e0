"""The host as `make demo` runs it (`python -m fundcore_host.serve`), in real processes on
loopback: a store held by another process, request-head limits on the wire, one-line logs."""

from __future__ import annotations

import json
import socket

from conftest import ADMIN, LOOPBACK, http_call, wait_until


def raw_request(port: int, head: bytes, chunk: int = 4096, max_bytes: int | None = None) -> tuple[bytes, int]:
    """Send a request head over a socket in chunks; stop when the server answers or closes.
    Returns (the answer, the bytes sent)."""
    sent = 0
    with socket.create_connection((LOOPBACK, port), timeout=20) as sock:
        sock.settimeout(0.001)
        answer = b""
        try:
            while sent < len(head) and (max_bytes is None or sent < max_bytes):
                sock.sendall(head[sent : sent + chunk])
                sent += chunk
                try:
                    answer += sock.recv(65536)
                    if answer:
                        break
                except (TimeoutError, BlockingIOError):
                    pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(20)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (TimeoutError, ConnectionResetError):
            pass
    return answer, min(sent, len(head))


def envelope_of(answer: bytes) -> tuple[str, dict[str, str], dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    return status_line, headers, json.loads(body)


def test_a_second_host_on_the_same_store_exits_with_one_clear_line(live_host, tmp_path):
    first = live_host()
    second = live_host(data_dir=tmp_path, wait=False)
    assert second.process.wait(timeout=60) != 0
    output = second.log()
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert "Traceback" not in output and " ERROR fundcore_host " in lines[0] and "cannot start: " in lines[0]
    assert str(tmp_path / "fundcore") in lines[0]  # the engine's message names the store
    # the first host is unaffected
    assert http_call("GET", f"{first.url}/funds", headers=ADMIN)[0] == 200


def test_under_bare_uvicorn_the_failure_is_one_line_too(live_host, tmp_path):
    live_host()
    second = live_host(data_dir=tmp_path, wait=False, module="uvicorn")
    assert second.process.wait(timeout=60) != 0
    output = second.log()
    assert "Traceback" not in output, output
    ours = [line for line in output.splitlines() if "fundcore_host" in line]
    assert len(ours) == 1 and "cannot start: " in ours[0], output
    # what uvicorn adds is its own one-line summary, nothing else at error level
    assert [line for line in output.splitlines() if "ERROR" in line and "fundcore_host" not in line] == [
        "ERROR:    Application startup failed. Exiting."
    ], output


def test_headers_over_16_kib_are_431_on_the_wire(live_host):
    host = live_host()
    pads = "".join(f"X-Pad-{i}: {'p' * 2000}\r\n" for i in range(9))
    head = f"GET /funds HTTP/1.1\r\nHost: {LOOPBACK}\r\n{pads}X-Request-ID: wire-1\r\n\r\n".encode()
    answer, _ = raw_request(host.port, head, chunk=len(head))  # all at once: parsed, then refused
    status, headers, body = envelope_of(answer)
    assert status.startswith("HTTP/1.1 431"), answer[:200]
    assert body["code"] == "REQUEST_HEADERS_TOO_LARGE" and body["status"] == "error"
    assert headers["x-request-id"] == "wire-1"


def test_an_8_mb_header_is_refused_before_it_is_read(live_host):
    host = live_host()
    head = b"GET /funds HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + b"a" * (8 * 1024 * 1024) + b"\r\n\r\n"
    answer, sent = raw_request(host.port, head, chunk=4096)
    status, headers, body = envelope_of(answer)
    assert status.startswith("HTTP/1.1 431"), answer[:200]
    assert body == {
        "status": "error",
        "code": "REQUEST_HEADERS_TOO_LARGE",
        "message": "Los encabezados de la solicitud son demasiado grandes",
        "errors": None,
    }
    assert headers["connection"] == "close" and headers["x-request-id"]
    assert sent < 1024 * 1024, sent  # the server answered and closed long before 8 MB went out
    # and it keeps serving
    assert http_call("GET", f"{host.url}/health")[0] == 200


def test_a_forged_log_line_stays_one_escaped_line_in_the_servers_log(live_host):
    host = live_host()
    status, _, _ = http_call(
        "GET",
        f"{host.url}/clients/x%0A2030-01-01%2000:00:00,000%20INFO%20forged%1B[2J",
        headers={**ADMIN, "X-Request-ID": "live-forge"},
    )
    assert status == 404
    # the access line is written once the response is sent: wait for it
    lines = wait_until(lambda: [line for line in host.log().splitlines() if "[live-forge]" in line])
    assert len(lines) == 1, host.log()
    assert "/clients/x\\n2030-01-01 00:00:00,000 INFO forged\\x1b[2J -> 404" in lines[0]
    assert "\x1b" not in host.log() and not any(line.startswith("2030") for line in host.log().splitlines())


def test_head_over_the_wire(live_host):
    host = live_host()
    answer, _ = raw_request(host.port, b"HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b""
    assert b"content-length: 15" in head.lower()


def test_a_pool_size_the_engine_refuses_is_one_line_at_start(live_host, tmp_path):
    """FUNDCORE_POOL_SIZE reaches the engine, whose rule decides (a pool of no connection is
    refused before any connection is tried): one line naming it, status 1, no password."""
    host = live_host(
        env={
            "FUNDCORE_DATABASE_URL": f"postgresql://fundcore:s3cret-pw@{LOOPBACK}:9/fundcore",
            "FUNDCORE_POOL_SIZE": "0",
            "FUNDCORE_DATA": None,
        },
        wait=False,
    )
    assert host.process.wait(timeout=60) == 1
    output = host.log()
    lines = output.splitlines()
    assert len(lines) == 1 and "cannot start: " in lines[0] and "pool_size" in lines[0], output
    assert "s3cret-pw" not in output and "Traceback" not in output


def test_uvicorn_factory_builds_the_app_from_the_environment(live_host, tmp_path):
    """`uvicorn --factory fundcore_host.app:create_app`: settings and store from FUNDCORE_*."""
    host = live_host(module="uvicorn", env={"FUNDCORE_LOCALE": "en"})
    status, body, _ = http_call("GET", f"{host.url}/clients/0190b2a4-7c1e-7000-8000-000000000000", headers=ADMIN)
    assert status == 404 and body["message"] == "Client 0190b2a4-7c1e-7000-8000-000000000000 not found"
    assert (tmp_path / "fundcore").is_dir()


def test_a_bad_variable_is_one_line_naming_it_and_status_2(live_host):
    host = live_host(
        env={"FUNDCORE_DATABASE_URL": "mysql://fundcore:s3cret-pw@db/fundcore", "FUNDCORE_DATA": None},
        wait=False,
    )
    assert host.process.wait(timeout=60) == 2
    output = host.log()
    lines = output.splitlines()
    assert len(lines) == 1 and "cannot start: FUNDCORE_DATABASE_URL: " in lines[0], output
    assert "s3cret-pw" not in output and "Traceback" not in output

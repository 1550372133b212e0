"""A local mail server and SMS gateway for the demo, on loopback, that keep what they receive.

* **SMTP** (aiosmtpd): every message accepted is written to ``<dir>/mail/`` as one ``.eml``
  file (open it with any mail reader, or read it as text);
* **SMS gateway** (http.server): every ``POST /sms`` (the JSON the host's SMS notifier sends) is
  written to ``<dir>/sms/`` as one ``.json`` file, then answered 200.

A file is complete once it has its name (written aside, then renamed). The host's notifiers
talk to these exactly as to real servers, so a notification is marked ``delivered`` only after
one of them accepted it. ``python -m fundcore_host.demo`` starts them with the host;
``python -m fundcore_host.demo_sinks --dir data`` runs them alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

#: The largest SMS request the gateway reads.
MAX_SMS_REQUEST_BYTES = 64 * 1024


def _file_name(kind_id: str, suffix: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", kind_id)[:80] or uuid.uuid4().hex
    return f"{stamp}-{safe_id}{suffix}"


def _write_whole(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` as ``folder/name``; the name appears only once the content is complete."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.partial"
    partial.write_bytes(data)
    final = folder / name
    os.replace(partial, final)
    return final


class _MailHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""  # the message as received, set by aiosmtpd before DATA ends
        parsed = message_from_bytes(raw, policy=default_policy)
        notification_id = str(parsed.get("X-Fundcore-Notification-Id") or uuid.uuid4().hex)
        _write_whole(self.folder, _file_name(notification_id, ".eml"), raw)
        return "250 Message accepted for delivery"


def _sms_handler(folder: Path) -> type[BaseHTTPRequestHandler]:
    class SmsHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/sms":
                self._answer(404, {"accepted": False, "error": "POST /sms"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 < length <= MAX_SMS_REQUEST_BYTES:
                self._answer(400, {"accepted": False, "error": "a JSON body of at most 64 KiB"})
                return
            try:
                message = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(400, {"accepted": False, "error": "not JSON"})
                return
            record = {"received_at": datetime.now(UTC).isoformat(), "message": message}
            notification_id = str(message.get("id") if isinstance(message, dict) else "") or uuid.uuid4().hex
            text = json.dumps(record, ensure_ascii=False, indent=2) + "\n"
            _write_whole(folder, _file_name(notification_id, ".json"), text.encode("utf-8"))
            self._answer(200, {"accepted": True})

        def _answer(self, status: int, payload: dict[str, object]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the files are the record
            return

    return SmsHandler


@dataclass
class Sinks:
    """The running sinks: where they listen and where they write."""

    host: str
    smtp_port: int
    sms_port: int
    mail_dir: Path
    sms_dir: Path
    _smtp: Controller
    _http: ThreadingHTTPServer
    _thread: threading.Thread

    @property
    def sms_url(self) -> str:
        return f"http://{self.host}:{self.sms_port}/sms"

    def notifier_env(self) -> dict[str, str]:
        """The host's settings that send notifications here."""
        return {
            "FUNDCORE_SMTP_HOST": self.host,
            "FUNDCORE_SMTP_PORT": str(self.smtp_port),
            "FUNDCORE_SMTP_TLS": "none",
            "FUNDCORE_SMS_GATEWAY_URL": self.sms_url,
        }

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(10)
        self._smtp.stop()


def start_sinks(directory: str | Path, host: str = "127.0.0.1", smtp_port: int = 8025, sms_port: int = 8026) -> Sinks:
    """Start both sinks, writing under ``directory/mail`` and ``directory/sms``."""
    base = Path(directory)
    mail_dir, sms_dir = base / "mail", base / "sms"
    mail_dir.mkdir(parents=True, exist_ok=True)
    sms_dir.mkdir(parents=True, exist_ok=True)
    http = ThreadingHTTPServer((host, sms_port), _sms_handler(sms_dir))
    smtp = Controller(_MailHandler(mail_dir), hostname=host, port=smtp_port)
    try:
        smtp.start()
    except BaseException:
        http.server_close()
        raise
    thread = threading.Thread(
        target=http.serve_forever, kwargs={"poll_interval": 0.2}, name="demo-sms-sink", daemon=True
    )
    thread.start()
    return Sinks(host, smtp_port, http.server_address[1], mail_dir, sms_dir, smtp, http, thread)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fundcore_host.demo_sinks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="data", help="where mail/ and sms/ are written (default: data)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument("--sms-port", type=int, default=8026)
    args = parser.parse_args(argv)
    sinks = start_sinks(args.dir, args.host, args.smtp_port, args.sms_port)
    print(
        f"SMTP on {sinks.host}:{sinks.smtp_port} -> {sinks.mail_dir}/ ; SMS on {sinks.sms_url} -> {sinks.sms_dir}/",
        flush=True,
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    while not stopping.is_set():
        time.sleep(0.2)
    sinks.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

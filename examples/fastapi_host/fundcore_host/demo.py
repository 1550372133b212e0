"""``make demo``: the host on loopback, with a local mail server and SMS gateway that keep what
they receive, so notifications are delivered for real.

    python -m fundcore_host.demo [--data data] [--host 127.0.0.1] [--port 8000]
                                 [--smtp-port 8025] [--sms-port 8026] [--workers 1]

The store is ``<data>/fundcore`` (or FUNDCORE_DATA), or the PostgreSQL database of
FUNDCORE_DATABASE_URL (what ``make demo-postgres`` sets, with ``--workers 2``); mail lands in ``<data>/mail/`` (one
``.eml`` per message) and SMS in ``<data>/sms/`` (one ``.json`` per message); the host's own
accounts beside the store (``<data>/fundcore-accounts.sqlite3``, or the database). Prints how to
sign up and sign in, an admin token for scripts and example calls, then serves until Ctrl-C
(which stops the sinks too).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from . import serve
from .auth.accounts import accounts_path
from .config import Settings
from .demo_sinks import start_sinks
from .token import make_token


def operator_command(settings: Settings) -> str:
    """The command that makes an operator account in the demo's account store (a database
    password, if any, shows as ``***``)."""
    if settings.database_url:
        where = f"FUNDCORE_DATABASE_URL={shlex.quote(settings.store_label)}"
    else:
        where = f"FUNDCORE_ACCOUNTS_PATH={shlex.quote(str(accounts_path(settings)))}"
    command = "PYTHONPATH=examples/fastapi_host .venv/bin/python -m fundcore_host.accounts create-operator"
    return f"{where} {command} --email ops@example.com"


def banner(
    url: str, store: str, mail_dir: Path, sms_dir: Path, smtp: str, sms_url: str, token: str, operator: str
) -> str:
    auth = '-H "Authorization: Bearer $TOKEN"'
    json_body = "-H 'Content-Type: application/json'"
    field = "python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])'"
    return f"""
fundcore REST host on {url}  (docs: {url}/docs, store: {store})
Metrics (Prometheus text format, no token): {url}/metrics

In a browser:
  clients:   {url}/  (create an account on its sign-up page, then subscribe, cancel, ...)
  operators: {url}/ops  (sign in with an operator account; make one from another terminal:)
  {operator}

Notifications are delivered for real, on loopback:
  email -> SMTP server {smtp}, each message kept as one .eml file in {mail_dir}/
  SMS   -> gateway {sms_url}, each message kept as one .json file in {sms_dir}/

Sign up as a client (the host's own accounts: the client is registered with its account),
then sign in, from another terminal:
  curl -s -X POST {url}/auth/sign-up {json_body} -d '{{"name":"Bea","email":"bea@example.com","phone":"+573001234568","channel":"email","password":"a long passphrase"}}'
  SIGNED_IN=$(curl -s -X POST {url}/auth/sign-in {json_body} -d '{{"email":"bea@example.com","password":"a long passphrase"}}')
  ACCESS=$(echo "$SIGNED_IN" | {field} access_token); CLIENT=$(echo "$SIGNED_IN" | {field} client_id)
  curl -s {url}/clients/$CLIENT -H "Authorization: Bearer $ACCESS"
  # POST /auth/refresh and /auth/sign-out take {{"refresh_token": ...}}

Admin token for scripts (24 h; minted with FUNDCORE_JWT_SECRET, not a sign-in):
  export TOKEN={token}

Or, with the admin token:
  curl -s {url}/funds {auth}
  CLIENT=$(curl -s -X POST {url}/clients {auth} -H 'Content-Type: application/json' -d '{{"name":"Ana","email":"ana@example.com","phone":"+573001234567","channel":"email"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -s -X POST {url}/clients/$CLIENT/subscriptions {auth} -H 'Content-Type: application/json' -d '{{"fund_id": 1, "amount": "80000"}}'
  curl -s {url}/clients/$CLIENT/notifications {auth}     # "delivered" within a second
  ls {mail_dir}/ {sms_dir}/

More in examples/fastapi_host/README.md. Ctrl-C stops the server and the sinks.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fundcore_host.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data", help="store, mail/ and sms/ under this folder (default: data)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument("--sms-port", type=int, default=8026)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (more than 1 needs FUNDCORE_DATABASE_URL, the PostgreSQL store)",
    )
    args = parser.parse_args(argv)
    data = Path(args.data)
    os.environ.setdefault("FUNDCORE_DATA", str(data / "fundcore"))
    try:
        sinks = start_sinks(data, args.host, args.smtp_port, args.sms_port)
    except OSError as error:
        print(f"cannot start the demo's mail server and SMS gateway: {error}", file=sys.stderr)
        return 1
    try:
        os.environ.update(sinks.notifier_env())
        settings = serve.load_settings()
        if settings is None:
            return 2
        token = make_token(settings.jwt_secret.get_secret_value(), "admin", "admin", ttl_s=86_400)
        store = settings.store_label
        if args.workers > 1:
            store += f", {args.workers} workers"
        url = f"http://{args.host}:{args.port}"
        text = banner(
            url,
            store,
            sinks.mail_dir,
            sinks.sms_dir,
            f"{sinks.host}:{sinks.smtp_port}",
            sinks.sms_url,
            token,
            operator_command(settings),
        )
        if args.workers > 1 or settings.database_url:
            # the workers open their own engines; the banner comes first
            print(text, flush=True)
            return serve.serve(settings, args.host, args.port, args.workers)
        engine = serve.open_store(settings)
        if engine is None:
            return 1
        print(text, flush=True)
        serve.run(settings, engine, args.host, args.port)
        return 0
    finally:
        sinks.stop()


if __name__ == "__main__":
    sys.exit(main())

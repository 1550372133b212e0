"""``python -m fundcore_host.accounts create-operator --email ops@example.com``: an operator
account (role ``admin``) of the host's own accounts, the only way one is made (sign-up makes
clients).

The password is read from standard input (its first line), or asked twice without echo when
standard input is a terminal; never from an argument, which other users of the machine could
read in the process list and the shell would keep in its history. The account store is the
host's: ``FUNDCORE_DATABASE_URL`` (schema ``fundcore_host``) when set, else the SQLite file beside
``FUNDCORE_DATA`` (or ``FUNDCORE_ACCOUNTS_PATH``); the host may be running.

Exit status: 0 made; 1 the email has an account, or the store cannot be used; 2 a setting, the
email or the password is refused.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from .auth.accounts import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    WeakPasswordError,
    create_operator,
    open_account_store,
)
from .auth.store import AccountExistsError, AccountStoreError
from .config import ConfigError, Settings


def read_password(stdin: TextIO) -> str | None:
    """The new password: asked twice on a terminal (``None`` when the two differ), else the
    first line of ``stdin`` without its line end."""
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Password again: ")
        return first if first == second else None
    line = stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fundcore_host.accounts",
        description="Manage the host's own accounts (the store of FUNDCORE_DATABASE_URL or FUNDCORE_DATA).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    operator = commands.add_parser(
        "create-operator",
        help="make an operator (admin) account; the password comes from stdin, or a prompt on a terminal",
        description=(
            f"Make an operator (role admin) account. The password ({MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} "
            "characters) is the first line of standard input, or is asked twice when standard input is a terminal."
        ),
    )
    operator.add_argument("--email", required=True, help="the operator's sign-in email")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"fundcore_host.accounts: {error}", file=sys.stderr)
        return 2
    password = read_password(stdin or sys.stdin)
    if password is None:
        print("fundcore_host.accounts: the two passwords differ", file=sys.stderr)
        return 2
    store = open_account_store(settings)
    try:
        account = create_operator(store, args.email, password)
    except WeakPasswordError as error:
        print(f"fundcore_host.accounts: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"fundcore_host.accounts: --email: {error}", file=sys.stderr)
        return 2
    except AccountExistsError:
        print("fundcore_host.accounts: an account with this email exists already", file=sys.stderr)
        return 1
    except AccountStoreError as error:
        print(f"fundcore_host.accounts: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"operator account {account.id} created in {store.label}; it signs in at POST /auth/sign-in")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

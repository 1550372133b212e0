"""Shared fixtures for the fundcore Python tests.

Tests that take the `store` fixture (or `engine`, built on it) run once per kind of store: the
embedded store, in a fresh directory, and PostgreSQL, in a fresh database on the server that
`FUNDCORE_TEST_DATABASE_URL` names (a superuser URL; `make test-python` starts a private
throwaway server and sets it). Without that variable only the embedded store runs and
`test_a_postgres_test_server_is_configured` fails, so a missing server never passes silently;
`FUNDCORE_TEST_STORES=sled` runs the embedded store alone on purpose (and deselects the tests
marked `postgres`), `FUNDCORE_TEST_STORES=postgres` PostgreSQL alone.
"""

from __future__ import annotations

import datetime
import os
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

import fundcore

#: The repository the suite reads files of (READMEs, docs, stubs, scenarios). `make test-python`
#: runs a copy of the tests outside the source tree, against the installed wheel, and names the
#: repository in FUNDCORE_REPO; run in place, it is two levels up.
REPO_VARIABLE = "FUNDCORE_REPO"
REPO = Path(os.environ.get(REPO_VARIABLE) or Path(__file__).resolve().parents[2]).resolve()
SCENARIOS = REPO / "core" / "tests" / "scenarios"

ANA = ("Ana", "ana@example.com", "+573001234567")

#: Where the tests find their PostgreSQL server.
SERVER_URL = "FUNDCORE_TEST_DATABASE_URL"


def store_kinds() -> list[str]:
    """The kinds of store the parametrized tests run on."""
    chosen = os.environ.get("FUNDCORE_TEST_STORES")
    if chosen == "sled":
        return ["sled"]
    if chosen == "postgres":
        return ["postgres"]
    if not os.environ.get(SERVER_URL):
        return ["sled"]
    return ["sled", "postgres"]


def postgres_missing() -> str | None:
    """Why the PostgreSQL tests did not run, unless that was asked for."""
    if os.environ.get("FUNDCORE_TEST_STORES") == "sled" or os.environ.get(SERVER_URL):
        return None
    return (
        f"{SERVER_URL} is not set, so only the embedded store was tested: run "
        "`make test-python` (it starts a private PostgreSQL), or "
        "`scripts/with-postgres.sh .venv/bin/python -m pytest bindings-python/tests`, or set "
        "FUNDCORE_TEST_STORES=sled to test the embedded store alone"
    )


def server_url() -> str:
    """The test server's superuser URL (fails the test, with the reason, when there is none)."""
    url = os.environ.get(SERVER_URL)
    if not url:
        pytest.fail(postgres_missing() or f"{SERVER_URL} is not set")
    return url


_admin = None


def admin():
    """One autocommit connection to the test server, for CREATE DATABASE and roles."""
    global _admin
    if _admin is None or _admin.closed:
        import psycopg

        _admin = psycopg.connect(server_url(), autocommit=True)
    return _admin


def fresh_database() -> str:
    """Creates an empty database on the test server; returns its URL."""
    server = server_url()
    name = f"fundcore_test_{uuid.uuid4().hex}"
    admin().execute(f"CREATE DATABASE {name}")
    base, _database = server.rsplit("/", 1)
    return f"{base}/{name}"


@dataclass
class Store:
    """A fresh store a test may open (and reopen) engines on."""

    kind: str
    #: The embedded store's directory, or the database's URL.
    location: str

    def open(self, **settings) -> fundcore.Engine:
        return fundcore.Engine(self.location, **settings)


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres: a test of the PostgreSQL store alone")
    if not (SCENARIOS.is_dir() and (REPO / "bindings-python" / "python" / "fundcore").is_dir()):
        raise pytest.UsageError(
            f"{REPO} is not the fundcore repository (no core/tests/scenarios or bindings-python/python/fundcore): "
            f"tests run outside the source tree need {REPO_VARIABLE}=<the repository's root>"
        )


def pytest_collection_modifyitems(config, items):
    """Tests of the PostgreSQL store alone are left out when it is not under test (then
    `test_a_postgres_test_server_is_configured` says why, unless that was asked for)."""
    if "postgres" in store_kinds():
        return
    left_out = [item for item in items if item.get_closest_marker("postgres")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]


@pytest.fixture(params=store_kinds())
def store(request, tmp_path) -> Store:
    """A fresh store of each kind under test."""
    if request.param == "postgres":
        return Store("postgres", fresh_database())
    return Store("sled", str(tmp_path / "store"))


@pytest.fixture
def database_url() -> str:
    """A fresh PostgreSQL database (for the tests marked `postgres`)."""
    return fresh_database()


@pytest.fixture(scope="module", params=store_kinds())
def shared_engine(request, tmp_path_factory):
    """One engine per kind of store for a whole module, for tests that only need a client of
    their own (many cases of one check)."""
    if request.param == "postgres":
        location = fresh_database()
    else:
        location = str(tmp_path_factory.mktemp("shared") / "store")
    with fundcore.Engine(location) as eng:
        yield eng


@pytest.fixture
def engine(store):
    """A fresh engine on each kind of store, closed after the test."""
    with store.open() as eng:
        yield eng


@pytest.fixture
def ana(engine):
    """A registered client notified by email."""
    return engine.register_client(*ANA, channel="email")


class RecordingNotifier:
    """Delivers everything and remembers what it was given."""

    def __init__(self):
        self.sent: list[fundcore.Notification] = []

    def send(self, notification):
        self.sent.append(notification)


def assert_attributes_match_dict(record) -> None:
    """Every attribute agrees with the record's JSON form (one wire format)."""
    data = record.to_dict()
    for key, value in data.items():
        attr = getattr(record, key)
        if isinstance(attr, Decimal):
            assert isinstance(value, str) and Decimal(value) == attr and str(attr) == value
        elif isinstance(attr, datetime.datetime):
            assert attr.tzinfo is not None and attr.utcoffset() == datetime.timedelta(0)
            assert datetime.datetime.fromisoformat(value.replace("Z", "+00:00")) == attr
        else:
            assert attr == value, key

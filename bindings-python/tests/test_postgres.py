"""What is particular to `fundcore.Engine(url)` on PostgreSQL: the test server is there, the URL
is never shown with its credentials, and bad URLs, wrong passwords and unreachable servers are
StorageErrors that name the server and never the password. (The shared suites run on
PostgreSQL through the `store` fixture; processes and threads are in test_processes.py and
test_threads.py.)"""

from __future__ import annotations

from decimal import Decimal

import pytest

import fundcore
from conftest import ANA, admin, postgres_missing, server_url

SECRET = "not-shown-secret"


def test_a_postgres_test_server_is_configured():
    """Without a server the PostgreSQL half of the suite would pass by not running."""
    missing = postgres_missing()
    if missing is not None:
        pytest.fail(missing)


def server_address() -> str:
    """`host:port` of the test server."""
    return server_url().split("://", 1)[1].rsplit("@", 1)[-1].split("/", 1)[0]


def with_credentials(database_url: str, userinfo: str) -> str:
    """`database_url` with its user information replaced by `userinfo`."""
    scheme, rest = database_url.split("://", 1)
    return f"{scheme}://{userinfo}@{rest.rsplit('@', 1)[-1]}"


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("userinfo", "scheme", "query", "shown"),
    [
        # The password in the user information (the server trusts loopback, so any works).
        (f"postgres:{SECRET}", "postgresql", "", "postgresql://…@{location}"),
        (f"postgres:{SECRET}", "postgres", "", "postgres://…@{location}"),
        # The password as a query parameter: the query string is not shown.
        ("postgres", "postgresql", f"?application_name=fundcore_test&password={SECRET}", "postgresql://…@{location}?…"),
        # An @ in the query: where the credentials end is unclear, so only the scheme is shown.
        ("postgres", "postgresql", f"?application_name=a@b&password={SECRET}", "postgresql://…"),
    ],
    ids=["userinfo", "postgres-scheme", "query", "ambiguous"],
)
def test_path_and_repr_never_show_the_credentials(database_url, userinfo, scheme, query, shown):
    url = scheme + "://" + with_credentials(database_url, userinfo).split("://", 1)[1] + query
    location = database_url.rsplit("@", 1)[-1]
    expected = shown.format(location=location)
    with fundcore.Engine(url) as eng:
        ana = eng.register_client(*ANA, channel="email")
        assert eng.subscribe(ana.id, 1).balance_after == Decimal("425000.00")
        assert eng.path == expected
        assert repr(eng) == f"<fundcore.Engine path='{expected}' locale='es'>"
    assert repr(eng) == f"<fundcore.Engine path='{expected}' locale='es' closed>"
    assert SECRET not in eng.path and "postgres@" not in eng.path


@pytest.mark.postgres
def test_the_pool_size_is_the_most_connections_an_engine_opens(database_url):
    """`pool_size` reaches the store: however many threads call, the engine opens at most
    that many connections to the database (counted by the server)."""
    import threading

    database = database_url.rsplit("/", 1)[1]

    def connections() -> int:
        row = admin().execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'fundcore'",
            (database,),
        ).fetchone()
        return row[0]

    with fundcore.Engine(database_url, pool_size=3) as eng:
        clients = [eng.register_client(f"C{i}", f"c{i}@example.com", "+573001234567", "email") for i in range(6)]
        most = 0
        stop = threading.Event()

        def churn(client):
            while not stop.is_set():
                eng.subscribe(client.id, 3)
                eng.cancel(client.id, 3)

        threads = [threading.Thread(target=churn, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for _ in range(30):
            most = max(most, connections())
            stop.wait(0.02)
        stop.set()
        for t in threads:
            t.join()
        assert most == 3
        for c in clients:
            assert eng.client(c.id).balance == Decimal("500000.00")


def storage_error(url: str, locale: str = "en") -> fundcore.StorageError:
    with pytest.raises(fundcore.StorageError) as raised:
        fundcore.Engine(url, locale=locale)
    err = raised.value
    assert err.code == "STORAGE_ERROR"
    assert str(err) == err.message
    assert SECRET not in err.message and SECRET not in repr(err)
    return err


@pytest.mark.postgres
def test_an_unreachable_server_is_a_storage_error_naming_it():
    err = storage_error(f"postgresql://fundcore:{SECRET}@127.0.0.1:1/fundcore")
    assert "127.0.0.1:1" in err.message and "refused" in err.message, err.message
    err = storage_error(f"postgresql://fundcore:{SECRET}@127.0.0.1:1/fundcore", locale="es")
    assert err.message.startswith("Falla del almacenamiento") and "127.0.0.1:1" in err.message


@pytest.mark.postgres
def test_a_wrong_password_is_a_storage_error_naming_the_server():
    # The test server asks this one role for a password (scram-sha-256).
    admin().execute(
        """DO $$ BEGIN
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fundcore_password_probe') THEN
               CREATE ROLE fundcore_password_probe LOGIN PASSWORD 'right-secret';
             END IF;
           END $$"""
    )
    err = storage_error(f"postgresql://fundcore_password_probe:{SECRET}@{server_address()}/postgres")
    assert server_address() in err.message, err.message
    assert "password authentication failed" in err.message, err.message


@pytest.mark.postgres
def test_a_database_that_does_not_exist_is_a_storage_error_naming_server_and_database():
    err = storage_error(f"postgresql://postgres:{SECRET}@{server_address()}/fundcore_no_such_database")
    assert server_address() in err.message and "fundcore_no_such_database" in err.message, err.message


@pytest.mark.postgres
@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://fundcore:{SECRET}@127.0.0.1:not-a-port/fundcore",
        f"postgresql://fundcore:{SECRET}@[::1/fundcore",
        f"postgres://fundcore:{SECRET}@127.0.0.1/fundcore?connect_timeout=soon",
    ],
    ids=["port", "host", "parameter"],
)
def test_a_malformed_url_is_a_storage_error_that_says_so(url):
    err = storage_error(url)
    assert "invalid PostgreSQL URL" in err.message, err.message

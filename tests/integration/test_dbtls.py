"""libpq itself enforces what platform/dbtls.py asks for: outside local runs the
service will not talk to a Postgres that offers no TLS (the test server offers none)."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy

from amazon_pilot.platform.db import dispose_engine, get_engine
from amazon_pilot.platform.migrate import apply_migrations
from amazon_pilot.platform.settings import reset_settings
from tests.conftest import on_unix_socket


@pytest.fixture()
def production(monkeypatch: pytest.MonkeyPatch, database_url: str):  # type: ignore[no-untyped-def]
    if on_unix_socket(database_url):
        pytest.skip("the test database is on a Unix socket, where libpq ignores sslmode")
    with psycopg.connect(database_url) as conn:
        if conn.execute("SHOW ssl").fetchone() != ("off",):
            pytest.skip("the test server speaks TLS: nothing to refuse")
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("DATABASE_URL", database_url)
    reset_settings()
    dispose_engine()
    yield database_url
    monkeypatch.undo()
    reset_settings()
    dispose_engine()


def test_the_engine_refuses_a_server_without_tls(production: str) -> None:
    with pytest.raises(sqlalchemy.exc.OperationalError, match="SSL"), get_engine().connect():
        pass


def test_migrations_refuse_a_server_without_tls(production: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="SSL"):
        apply_migrations(production)


def test_the_proxy_host_is_where_connections_go(monkeypatch: pytest.MonkeyPatch,
                                               database_url: str) -> None:
    """A URL whose host does not exist still connects: libpq takes the proxy's host."""
    from urllib.parse import urlsplit, urlunsplit

    if on_unix_socket(database_url):
        pytest.skip("the test database is on a Unix socket: no host to stand in for")

    parts = urlsplit(database_url)
    real_host = parts.hostname or "127.0.0.1"
    nowhere = parts._replace(netloc=parts.netloc.replace(real_host, "no-such-db.invalid"))
    monkeypatch.setenv("DATABASE_URL", urlunsplit(nowhere))
    monkeypatch.setenv("DATABASE_PROXY_HOST", real_host)
    reset_settings()
    dispose_engine()
    try:
        with get_engine().connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    finally:
        monkeypatch.undo()
        reset_settings()
        dispose_engine()

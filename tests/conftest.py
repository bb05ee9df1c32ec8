"""Shared fixtures: a real Postgres database per test session, and the local stack.

Postgres is TEST_DATABASE_URL's server when set, else the embedded server under
.pilot/test-postgres. Each session works in a database of its own, dropped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from amazon_pilot.runtime.stack import EmbeddedPostgres, ensure_database, with_database

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield with_database(configured, "postgres")
        return
    server = EmbeddedPostgres(ROOT / ".pilot" / "test-postgres")
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def database_url(pg_admin_url: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    from amazon_pilot.db.migrate import apply_migrations

    name = f"pilot_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = ensure_database(pg_admin_url, name)
    apply_migrations(url)
    yield url
    from amazon_pilot.db.engine import dispose_engine

    dispose_engine()
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        conn.execute(drop)

"""The one SQLAlchemy engine of a process, created on first use.

Lambda keeps a process warm between invocations, so the pool is small and lives at
module level; nothing connects at import time (cold start stays cheap).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine

from amazon_pilot.config import settings

_engine: Engine | None = None
_lock = threading.Lock()


class DatabaseNotConfigured(RuntimeError):
    pass


def sqlalchemy_url(url: str) -> str:
    """Accept plain libpq URLs and point SQLAlchemy at psycopg 3."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise DatabaseNotConfigured(f"not a PostgreSQL URL: {url.split('@')[-1]}")


def resolve_database_url() -> str:
    cfg = settings()
    if cfg.database_url:
        return cfg.database_url
    if cfg.database_secret_arn:
        from amazon_pilot.adapters.aws import client

        secret = client("secretsmanager").get_secret_value(SecretId=cfg.database_secret_arn)
        raw = secret["SecretString"]
        return str(json.loads(raw)["url"]) if raw.lstrip().startswith("{") else raw
    raise DatabaseNotConfigured("set DATABASE_URL or DATABASE_SECRET_ARN")


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                _engine = create_engine(
                    sqlalchemy_url(resolve_database_url()),
                    pool_size=5,
                    max_overflow=10,
                    pool_pre_ping=True,
                    pool_recycle=300,
                )
    return _engine


def dispose_engine() -> None:
    global _engine
    with _lock:
        if _engine is not None:
            _engine.dispose()
            _engine = None


@contextmanager
def transaction() -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on error."""
    with get_engine().begin() as conn:
        yield conn

"""The one SQLAlchemy engine of a process, created on first use.

Lambda keeps a process warm between invocations, so the pool is small and lives at
module level; nothing connects at import time (cold start stays cheap).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine

from amazon_pilot.platform.settings import settings

_engine: Engine | None = None
_autocommit: Engine | None = None
_engine_url: str | None = None
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
    """DATABASE_URL when set (local tooling), else the secret DATABASE_SECRET_ARN names
    (how it is deployed): read on first use, once per container."""
    cfg = settings()
    if cfg.database_url:
        return cfg.database_url
    if cfg.database_secret_arn:
        from amazon_pilot.adapters.secrets import secret_field

        return secret_field(cfg.database_secret_arn, "url")
    raise DatabaseNotConfigured("set DATABASE_SECRET_ARN (or DATABASE_URL)")


def get_engine() -> Engine:
    global _engine, _engine_url
    # Resolved on every call (a cached lookup): each function of the local runtime must
    # be able to read the URL itself, as it must in Lambda; one URL shares one pool.
    url = resolve_database_url()
    engine = _engine
    if engine is None or _engine_url != url:
        with _lock:
            if _engine is None or _engine_url != url:
                if _engine is not None:
                    _engine.dispose()
                # No pre-ping (a round trip on every checkout): connections are
                # recycled after a minute, and a connection found dead on use
                # invalidates the pool (SQLAlchemy's disconnect handling).
                _engine = create_engine(
                    sqlalchemy_url(url),
                    pool_size=5,
                    max_overflow=10,
                    pool_recycle=60,
                )
                _engine_url = url
            engine = _engine
    return engine


def autocommit_engine() -> Engine:
    """The same pool with each statement on its own: no BEGIN/COMMIT round trips.
    For reads and single-statement writes on hot paths."""
    global _autocommit
    base = get_engine()
    if _autocommit is None or _autocommit.pool is not base.pool:
        _autocommit = base.execution_options(isolation_level="AUTOCOMMIT")
    return _autocommit


def dispose_engine() -> None:
    global _engine, _autocommit
    with _lock:
        if _engine is not None:
            _engine.dispose()
            _engine = None
            _autocommit = None


@contextmanager
def reading() -> Iterator[Connection]:
    """A connection for reads that need no transaction (each statement stands alone)."""
    with autocommit_engine().connect() as conn:
        yield conn


@contextmanager
def transaction() -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on error."""
    with get_engine().begin() as conn:
        yield conn


# ---------------------------------------------------------------- column values
# Readers of nullable columns for the stores: numeric -> float, json/jsonb read as text
# by some queries -> its value.

def as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def as_strings(value: Any) -> list[str]:
    """The strings of a JSON list (anything else in it is dropped)."""
    return [str(v) for v in value if isinstance(v, str)] if isinstance(value, list) else []

"""The one SQLAlchemy engine of a process, created on first use.

Lambda keeps a process warm between invocations, so the pool is small and lives at
module level; nothing connects at import time (cold start stays cheap).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine

from amazon_pilot.platform.dbtls import database_tls
from amazon_pilot.platform.settings import settings

_engine: Engine | None = None
_autocommit: Engine | None = None
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
                # No pre-ping (a round trip on every checkout): connections are
                # recycled after a minute, and a connection found dead on use
                # invalidates the pool (SQLAlchemy's disconnect handling).
                url, cfg = resolve_database_url(), settings()
                _engine = create_engine(
                    sqlalchemy_url(url),
                    pool_size=cfg.database_pool_size,
                    max_overflow=cfg.database_max_overflow,
                    pool_recycle=60,
                    connect_args=database_tls(url),  # TLS required outside local runs
                )
    return _engine


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


_AFTER_COMMIT = "amazon_pilot.after_commit"


@contextmanager
def transaction() -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on error.
    Callbacks registered with `after_commit` run once the commit succeeded."""
    hooks: list[Callable[[], None]] = []
    with get_engine().begin() as conn:
        try:
            yield conn
        finally:
            # conn.info outlives this checkout (it is the pooled connection's): never
            # leave callbacks there for the next transaction
            hooks = conn.info.pop(_AFTER_COMMIT, [])
    for hook in hooks:
        hook()


def after_commit(conn: Connection, hook: Callable[[], None]) -> None:
    """Run `hook` after `conn`'s transaction commits (never if it rolls back). Only
    `transaction()` runs them: on another connection a hook runs late or not at all,
    which the outbox tolerates (its scheduled relay sends what no nudge did)."""
    conn.info.setdefault(_AFTER_COMMIT, []).append(hook)


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

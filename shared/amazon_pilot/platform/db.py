"""The SQLAlchemy engine of a process, created on first use, with timeouts on every
connection.

Lambda keeps a process warm between invocations, so the pool is small and lives at
module level; nothing connects at import time (cold start stays cheap).

Timeouts (settings DB_CONNECT_TIMEOUT_SECONDS, DB_STATEMENT_TIMEOUT_MS, DB_LOCK_TIMEOUT_MS;
docs/slos.md): connecting gives up after the connect timeout; the server cancels a
statement after the statement timeout and a lock wait after the lock timeout; and a
server that does not answer at all (hung, or a network path that swallows packets) is
given up on by the client one second after the statement timeout: the connection is
closed and never reused. Every such failure is an OperationalError that
`is_unavailable` recognises: the API answers 503 with Retry-After, a job is retried.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc

from amazon_pilot.platform.dbtls import database_tls
from amazon_pilot.platform.settings import Settings, settings

# One engine per (database, timeouts): the local runtime runs the API functions and the
# workers in one process, each with its own settings; in Lambda there is exactly one.
_engines: dict[tuple[Any, ...], Engine] = {}
_autocommit: dict[tuple[Any, ...], Engine] = {}
_lock = threading.Lock()
REPLY_GRACE_S = 1.0  # past the statement timeout, a silent server is taken as hung
RETRY_AFTER_S = 5  # what a client is told to wait when the database is unavailable


class DatabaseNotConfigured(RuntimeError):
    pass


class ServerNotAnswering(Exception):
    """Marker base of the error raised when the server sent nothing back within the reply
    deadline (the concrete class is also a psycopg.OperationalError; see below)."""


@lru_cache(maxsize=1)
def _deadline_connection() -> type[Any]:
    """psycopg's Connection whose every wait on the server (a statement, COPY, commit,
    rollback) ends after `reply_deadline_s`: psycopg funnels all of them through `wait`,
    so this is the one place a hung server is noticed. Built on first connect, so
    importing this module does not load psycopg (cold starts)."""
    import psycopg
    from psycopg import errors as pg_errors

    class NotAnswering(ServerNotAnswering, psycopg.OperationalError):
        pass

    class DeadlineConnection(psycopg.Connection[Any]):
        reply_deadline_s: float | None = None

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            deadline = timeout if timeout is not None else self.reply_deadline_s
            try:
                return super().wait(gen, interval, deadline)
            except pg_errors._WaitTimeout as exc:  # psycopg's own timeout
                self.pgconn.finish()  # mid-protocol: unusable; SQLAlchemy sees it closed
                raise NotAnswering(
                    f"the database did not answer within {deadline:g} s") from exc

    return DeadlineConnection


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


def connect_arguments(cfg: Settings) -> dict[str, Any]:
    """libpq parameters every connection is opened with (server-side timeouts included)."""
    options = [f"-c statement_timeout={cfg.db_statement_timeout_ms}",
               f"-c lock_timeout={cfg.db_lock_timeout_ms}"]
    return {"connect_timeout": cfg.db_connect_timeout_s, "options": " ".join(options)}


def reply_deadline(cfg: Settings) -> float | None:
    """How long the client waits for any answer (None: the statement timeout is off)."""
    if not cfg.db_statement_timeout_ms:
        return None
    return cfg.db_statement_timeout_ms / 1000 + REPLY_GRACE_S


def _engine_key(cfg: Settings, url: str) -> tuple[Any, ...]:
    return (url, cfg.db_connect_timeout_s, cfg.db_statement_timeout_ms, cfg.db_lock_timeout_ms)


def _new_engine(cfg: Settings, url: str) -> Engine:
    # No pre-ping (a round trip on every checkout): connections are recycled after a
    # minute, and a connection found dead on use invalidates the pool (SQLAlchemy's
    # disconnect handling). Waiting for a pooled connection is bounded like connecting.
    engine = create_engine(
        sqlalchemy_url(url),
        pool_size=cfg.database_pool_size,
        max_overflow=cfg.database_max_overflow,
        pool_recycle=60,
        pool_timeout=cfg.db_connect_timeout_s,
        # timeouts, and the TLS (and RDS Proxy host) required outside local runs
        connect_args=connect_arguments(cfg) | database_tls(url),
    )
    deadline = reply_deadline(cfg)

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
        conn = _deadline_connection().connect(*cargs, **cparams)
        conn.reply_deadline_s = deadline
        return conn

    return engine


def get_engine() -> Engine:
    cfg = settings()
    # The URL is resolved on every call (a cached lookup): each function of the local
    # runtime must be able to read it itself, as it must in Lambda.
    url = resolve_database_url()
    key = _engine_key(cfg, url)
    engine = _engines.get(key)
    if engine is None:
        with _lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = _new_engine(cfg, url)
    return engine


def autocommit_engine() -> Engine:
    """The same pool with each statement on its own: no BEGIN/COMMIT round trips.
    For reads and single-statement writes on hot paths."""
    base = get_engine()
    key = _engine_key(settings(), resolve_database_url())
    found = _autocommit.get(key)
    if found is None or found.pool is not base.pool:
        found = _autocommit[key] = base.execution_options(isolation_level="AUTOCOMMIT")
    return found


def dispose_engine() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _autocommit.clear()


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or did not answer in time (connect, statement or
    lock timeout, a hung server, an exhausted pool): worth retrying, not a bug."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection within the timeout
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
    import psycopg  # loaded already whenever a database error exists

    return isinstance(exc, psycopg.OperationalError)


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

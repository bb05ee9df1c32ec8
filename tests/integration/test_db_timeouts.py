"""Database timeouts (platform/db.py): with Postgres hung, slow or locked, every
connection gives up within its bound and says so in a way callers recognise
(`is_unavailable`): the API answers 503, a job is retried.

"Hung" is real: a loopback TCP proxy in front of the test's Postgres that stops passing
bytes, as a frozen server or a network path that swallows packets would."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text

from amazon_pilot.platform.db import dispose_engine, get_engine, is_unavailable
from amazon_pilot.platform.settings import environment_view
from tests.conftest import on_unix_socket


class FreezableProxy:
    """Passes bytes between a client and Postgres until `freeze()`; then holds them."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target, timeout=5)
        try:
            while not self.closed.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.2)
                if self.frozen.is_set():
                    continue  # hold everything: nobody answers
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


def _tcp_target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


@pytest.fixture()
def proxied(database_url: str) -> Iterator[tuple[FreezableProxy, str]]:
    if on_unix_socket(database_url):
        pytest.skip("the test database is on a Unix socket; no TCP path to freeze")
    host, port = _tcp_target(database_url)
    proxy = FreezableProxy(host, port)
    parts = urlsplit(database_url)
    netloc = parts.netloc.rsplit("@", 1)
    hostport = f"127.0.0.1:{proxy.port}"
    url = urlunsplit(parts._replace(netloc=f"{netloc[0]}@{hostport}" if len(netloc) == 2
                                    else hostport))
    yield proxy, url
    proxy.close()
    dispose_engine()


def _view(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_SECRET_ARN"}
    env.update({"DATABASE_URL": url, "DB_CONNECT_TIMEOUT_SECONDS": "2",
                "DB_STATEMENT_TIMEOUT_MS": "1000", "DB_LOCK_TIMEOUT_MS": "500", **extra})
    return env


def _timed_failure(query: str) -> tuple[float, BaseException]:
    started = time.monotonic()
    try:
        with get_engine().connect() as conn:
            conn.execute(text(query)).all()
    except Exception as exc:
        return time.monotonic() - started, exc
    raise AssertionError(f"{query!r} did not fail")


def test_a_hung_server_is_given_up_on_for_pooled_and_new_connections(
        proxied: tuple[FreezableProxy, str]) -> None:
    proxy, url = proxied
    with environment_view(_view(url)):
        with get_engine().connect() as conn:  # a pooled connection, opened while it answers
            assert conn.execute(text("SELECT 1")).scalar() == 1
        proxy.freeze()
        waited, error = _timed_failure("SELECT 1")
        print(f"hung server, pooled connection: gave up after {waited:.2f} s")
        assert is_unavailable(error), repr(error)
        assert 1.0 <= waited < 4.0  # the statement timeout (1 s) + 1 s of grace
        waited, error = _timed_failure("SELECT 1")  # the pool was dropped: a new connection
        print(f"hung server, new connection: gave up after {waited:.2f} s")
        assert is_unavailable(error), repr(error)
        assert waited < 4.5  # the connect timeout (2 s)


def test_a_slow_statement_and_a_lock_wait_are_cancelled_by_the_server(
        database_url: str) -> None:
    with environment_view(_view(database_url)):
        waited, error = _timed_failure("SELECT pg_sleep(10)")
        print(f"slow statement cancelled after {waited:.2f} s")
        assert is_unavailable(error) and "statement timeout" in str(error)
        assert waited < 3.0
        with get_engine().begin() as holder:
            holder.execute(text("SELECT pg_advisory_xact_lock(724242)"))
            waited, error = _timed_failure("SELECT pg_advisory_xact_lock(724242)")
        print(f"lock wait cancelled after {waited:.2f} s")
        assert is_unavailable(error) and "lock timeout" in str(error)
        assert waited < 2.0
    dispose_engine()


def test_timeouts_are_settings_with_named_errors() -> None:
    from amazon_pilot.platform.settings import SettingsError, load_settings

    cfg = load_settings({"DB_STATEMENT_TIMEOUT_MS": "0", "DB_CONNECT_TIMEOUT_SECONDS": "5"})
    assert (cfg.db_statement_timeout_ms, cfg.db_connect_timeout_s) == (0, 5)
    with pytest.raises(SettingsError, match="DB_CONNECT_TIMEOUT_SECONDS"):
        load_settings({"DB_CONNECT_TIMEOUT_SECONDS": "1"})  # libpq's minimum is 2
    with pytest.raises(SettingsError, match="DB_LOCK_TIMEOUT_MS"):
        load_settings({"DB_LOCK_TIMEOUT_MS": "soon"})

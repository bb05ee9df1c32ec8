"""The health checks against a database that does not answer (a closed local port, a
real psycopg connection error): fixed words out, the driver's text only in the log."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from amazon_pilot.platform import system
from amazon_pilot.platform.db import dispose_engine
from amazon_pilot.platform.settings import reset_settings


@pytest.fixture()
def unreachable_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends
    url = f"postgresql://secret_user:hunter2@127.0.0.1:{port}/private_db"
    dispose_engine()
    monkeypatch.setenv("DATABASE_URL", url)
    reset_settings()
    system.forget_probe()
    yield url
    monkeypatch.undo()
    reset_settings()
    dispose_engine()
    system.forget_probe()


def test_a_failed_check_never_shows_the_driver_message(
    unreachable_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    result = system._timed(system._database, system.DATABASE_FAILED)
    assert not result.ok and result.error == system.DATABASE_FAILED
    shown = result.model_dump_json()
    for secret in ("secret_user", "hunter2", "private_db", "127.0.0.1", "connection"):
        assert secret not in shown
    assert "health check failed" in caplog.text  # the operator still sees why, in the log


def test_the_public_probe_says_down_and_is_cached(unreachable_database: str) -> None:
    assert system.probe(now=1000.0) is False
    system._probe_state.update(at=1000.0, up=True)
    assert system.probe(now=1004.0) is True  # within PROBE_CACHE_S: no new check
    assert system.probe(now=1006.0) is False  # checked again

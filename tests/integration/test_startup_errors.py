"""`pilot run` refuses to start with a one-line reason, and leaves nothing running."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest

from pilot_dev.cli import main
from pilot_dev.runtime.stack import Stack, StackConfig, StackError, free_port


def test_port_in_use_is_named_with_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StackError, match=f"port {port} .* in use.*--port"):
            Stack(StackConfig(port=port)).start()


def test_database_down_is_reported_and_nothing_is_left_running() -> None:
    threads_before = {t.name for t in threading.enumerate()}
    config = StackConfig(port=free_port(), database_url="postgresql://pilot@127.0.0.1:1/pilot")
    stack = Stack(config)
    with pytest.raises(StackError, match=r"cannot reach Postgres .* unset DATABASE_URL"):
        stack.start()
    assert stack.moto is None and stack.server is None and not stack.pollers
    leftovers = {t.name for t in threading.enumerate()} - threads_before
    assert not {n for n in leftovers if n.startswith(("poll-", "http", "schedules"))}


def test_cli_prints_one_line_and_exits_non_zero(
        capsys: pytest.CaptureFixture[str], stack_env: Callable[[str, str], None]) -> None:
    # stack_env forgets the settings loaded from it afterwards: later tests of this
    # process must not keep this test's unreachable database
    stack_env("DATABASE_URL", "postgresql://pilot@127.0.0.1:1/pilot")
    code = main(["run", "--port", str(free_port())])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pilot run: cannot reach Postgres") and err.count("\n") == 1


def test_firing_a_schedule_before_the_consumers_start_says_so() -> None:
    # The API answers before the queue consumers and the schedules are up (they start
    # after it): a fire in that window is a 503 with its reason, not a server error.
    stack = Stack(StackConfig(port=free_port()))
    status, body = stack.control("POST", "/_pilot/schedules/DailyRefresh/fire", b"")
    assert status == 503
    assert body["error"]["code"] == "STARTING"
    assert stack.control("GET", "/_pilot/alarms", b"") == (200, {"alarms": []})

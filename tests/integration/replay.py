"""Replaying recorded dataset exports through the session's running stack."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pilot_dev.runtime.stack import Stack
from pilot_dev.standins.replay import Recording
from tests.integration.test_tracking import wait_queues_idle

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@contextmanager
def replaying(stack: Stack, *exports: Path) -> Iterator[Recording]:
    """While the block runs, every actor run is answered from these exports (as
    APIFY_REPLAY does for `pilot run`); work queued before or after is not."""
    standin = stack.standins["apify"]
    wait_queues_idle(stack)
    recording = Recording(exports)
    standin.replay(recording)
    try:
        yield recording
    finally:
        wait_queues_idle(stack)
        standin.replay(None)

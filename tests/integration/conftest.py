"""The local stack, started once per session exactly as `pilot run` starts it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from amazon_pilot.runtime.stack import Stack, StackConfig


@pytest.fixture(scope="session")
def stack(database_url: str) -> Iterator[Stack]:
    config = StackConfig.from_env(
        port=0,
        database_url=database_url,
        aws_endpoint_url=None,
        stack_name="amazon-pilot-test",
        schedules=False,  # tests fire schedules on demand
        extra_env={"RETRY_BASE_SECONDS": "1"},
    )
    running = Stack(config).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


def sqs_client(stack: Stack) -> Any:
    return stack.client("sqs")

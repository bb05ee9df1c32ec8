"""The local stack, started once per session exactly as `pilot run` starts it."""

from __future__ import annotations

import os
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
        # AWS_ENDPOINT_URL (e.g. LocalStack, scripts/localstack-test.sh) or embedded moto;
        # a stack name of its own so queues left by another run never mix in
        stack_name=f"amazon-pilot-test-{os.getpid()}",
        schedules=False,  # tests fire schedules on demand
        extra_env={
            "RETRY_BASE_SECONDS": "1",
            # Tests make many requests from one address and with free users: keep the
            # limits out of their way. Tests of the limits themselves lower them for a
            # moment (the stack runs in this process and reads them per request).
            "RATE_LIMIT_IP": "100000",
            "RATE_LIMIT_FREE": "100000",
        },
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

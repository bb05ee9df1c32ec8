"""A minimal harness for the delivery fault cases (test_db_hang.py,
test_duplicate_delivery.py): `pilot run` as a subprocess on a database of its own, with
its AWS endpoint (moto's server) and, when asked, its Apify stand-in in this process, so
a test can send messages to the stack's queues and count what the stand-in was asked.

Everything is on 127.0.0.1. (The fault suite's shared conftest offers the same kind of
fixtures; these are kept small so the two can be reconciled.)"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilot_dev.runtime.stack import DEFAULT_STACK, free_port
from tests.chaos.helpers import started

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Chaos-delivery-2026-long"


@pytest.fixture()
def own_database(fresh_database: str) -> str:
    """An empty database of this test's own (conftest.fresh_database)."""
    return fresh_database


@pytest.fixture()
def aws_endpoint(open_aws: None) -> Iterator[str]:
    # (open_aws: a session stack of this process may have moto's process-wide IAM on)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's backends are shared by every server of this process: a previous test's
    # stack left queues of the same names, and a long-poll receive of its killed process
    # may still be waiting on them (it would take this test's message). New queues.
    sqs = sqs_client(endpoint)
    for url in sqs.list_queues(QueueNamePrefix=f"{DEFAULT_STACK}-").get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)
    yield endpoint
    server.stop()


class PilotRun:
    """`pilot run --no-schedules` in a child process, killed at the end of the test."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "pilot-run.log"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DATABASE_URL", "APIFY_TOKEN", "OPENAI_API_KEY",
                                 "APIFY_REPLAY", "TEST_DATABASE_URL", "AWS_ENDPOINT_URL")}
        self.env.update({
            "PILOT_STATE_FILE": str(workdir / "stack.json"),
            "RETRY_BASE_SECONDS": "1",
            "RATE_LIMIT_IP": "100000", "RATE_LIMIT_FREE": "100000",
            "RATE_LIMIT_PRO": "100000", "RATE_LIMIT_ENTERPRISE": "100000",
            "JWT_SECRET": "chaos-delivery-signing-key-" + "x" * 32,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "PYTHONUNBUFFERED": "1",
            **env,
        })
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def start(self, timeout: float = 120) -> PilotRun:
        pilot = str(Path(sys.executable).parent / "pilot")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [pilot, "run", "--port", str(self.port), "--no-schedules"], cwd=ROOT,
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pilot run exited:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (self.client.get("/v1/health", timeout=5).status_code < 500
                        and started(Path(self.env["PILOT_STATE_FILE"]), self.process.pid)):
                    return self
            time.sleep(0.3)
        raise RuntimeError(f"pilot run not ready after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_lines(self, *needles: str) -> list[str]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if all(n in line for n in needles)]

    def sign_in(self) -> dict[str, str]:
        email = f"delivery-{uuid.uuid4().hex[:10]}@example.com"
        body = {"email": email, "password": PASSWORD}
        registered = self.client.post("/v1/auth/register", json=body)
        assert registered.status_code in (200, 201, 202), registered.text
        response = self.client.post("/v1/auth/login", json=body)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}",
                "email": email}

    def close(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None
        self.client.close()


def sqs_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def queue_url(sqs: Any, name: str) -> str:
    """The `pilot run` stack's queue `<stack>-name` (critical, critical-dlq, ...). The
    endpoint lives in this process, whose own session stack (if a test started one)
    keeps its queues there too."""
    urls = sqs.list_queues().get("QueueUrls", [])
    found = [u for u in urls if u.endswith(f"/{DEFAULT_STACK}-{name}")]
    assert len(found) == 1, urls
    return str(found[0])


def dlq_bodies(sqs: Any, url: str) -> list[str]:
    seen: dict[str, str] = {}
    for _ in range(2):
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                     VisibilityTimeout=1).get("Messages", []):
            seen[m["MessageId"]] = m["Body"]
    return list(seen.values())

"""Postgres hung (issue 14, item 6): `pilot run` against a Postgres reached through a
loopback proxy that stops passing bytes. The API answers 503 with Retry-After within
5 s for /v1/products, login and /v1/health (timings printed); a job sent meanwhile goes
back to its queue and runs once Postgres answers again, once, and not in the DLQ."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from tests.chaos.delivery_harness import (
    PilotRun,
    aws_endpoint,  # noqa: F401  (fixture)
    dlq_bodies,
    own_database,  # noqa: F401  (fixture)
    queue_url,
    sqs_client,
)
from tests.chaos.helpers import wait_for
from tests.conftest import on_unix_socket
from tests.integration.test_db_timeouts import FreezableProxy

pytestmark = pytest.mark.chaos
WITHIN_S = 5.0


def _through(proxy: FreezableProxy, url: str) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


def test_with_postgres_hung_the_api_says_503_within_5_s_and_jobs_wait(
        own_database: str, aws_endpoint: str, tmp_path: Path) -> None:  # noqa: F811
    if on_unix_socket(own_database):
        pytest.skip("the test database is on a Unix socket; no TCP path to freeze")
    parts = urlsplit(own_database)
    proxy = FreezableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    stack = PilotRun(tmp_path, {"DATABASE_URL": _through(proxy, own_database),
                                "AWS_ENDPOINT_URL": aws_endpoint})
    try:
        stack.start()
        headers = stack.sign_in()
        email = headers.pop("email")
        assert stack.client.get("/v1/products", headers=headers).status_code == 200

        proxy.freeze()
        calls: dict[str, Callable[[], httpx.Response]] = {
            "GET /v1/products": lambda: stack.client.get("/v1/products", headers=headers),
            "POST /v1/auth/login": lambda: stack.client.post(
                "/v1/auth/login", json={"email": email, "password": "Chaos-delivery-2026-long"}),
            "GET /v1/health": lambda: stack.client.get("/v1/health"),
        }
        seen = {}
        for name, call in calls.items():
            started = time.monotonic()
            response = call()
            seen[name] = (response.status_code, round(time.monotonic() - started, 2),
                          response.headers.get("retry-after"), response)
        for name, (status, took, retry_after, _) in seen.items():
            print(f"postgres hung: {name} -> {status} in {took:.2f} s, Retry-After {retry_after}")
        for name, (status, took, retry_after, response) in seen.items():
            assert status == 503, (name, response.text)
            assert took < WITHIN_S, (name, took)
            assert retry_after and int(retry_after) > 0, name
        for name in ("GET /v1/products", "POST /v1/auth/login"):
            assert seen[name][3].json()["error"]["code"] == "SERVICE_UNAVAILABLE"

        # a job arriving while Postgres is hung fails retryably and is not lost
        sqs = sqs_client(aws_endpoint)
        key = f"hung-{uuid.uuid4().hex[:8]}"
        sqs.send_message(QueueUrl=queue_url(sqs, "critical"),
                         MessageBody=json.dumps({"type": "record", "key": key, "payload": {}}))
        wait_for(lambda: stack.log_lines("will retry", key), 60, "a retryable failure")
        proxy.thaw()

        def recorded() -> int:
            with psycopg.connect(own_database, autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'job.record'"
                                   " AND target = %s", (key,)).fetchone()
            return int(row[0]) if row else 0

        wait_for(recorded, 90, "the job to run once Postgres answers")
        retries = len(stack.log_lines("will retry", key))
        dead = [b for b in dlq_bodies(sqs, queue_url(sqs, "critical-dlq")) if key in b]
        print(f"postgres hung: job failed {retries} time(s) while hung, then ran "
              f"{recorded()} time(s); in the DLQ: {len(dead)}")
        assert recorded() == 1 and not dead
        assert stack.client.get("/v1/health").status_code == 200  # recovered
    finally:
        stack.close()
        proxy.close()

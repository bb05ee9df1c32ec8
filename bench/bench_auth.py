"""What authentication and rate limiting cost per request (a script, not a test).

Starts the local stack (as tests/integration/conftest.py does, on a fresh database of
the embedded Postgres), then:

1. HTTP: 2,000 keep-alive requests (http.client, one connection) of an authenticated
   GET /v1/auth/me and of GET /v1/health, interleaved; p50/p99 of each.
2. In process: the auth + rate-limit layer alone (`security.authenticate`: JWT check,
   then the user lookup and the counter increment in one round trip), 2,000 times,
   and its parts.

    .venv/bin/python bench/bench_auth.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, samples: list[float]) -> str:
    return (f"{name:<38} p50 {pct(samples, 0.50):7.3f} ms   p99 {pct(samples, 0.99):7.3f} ms"
            f"   mean {statistics.fmean(samples):7.3f} ms")


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    n = args.requests

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from amazon_pilot.runtime.stack import (
        EmbeddedPostgres,
        Stack,
        StackConfig,
        ensure_database,
        with_database,
    )

    configured = os.environ.get("TEST_DATABASE_URL")
    server = None
    if configured:
        admin_url = with_database(configured, "postgres")
    else:
        server = EmbeddedPostgres(ROOT / ".pilot" / "test-postgres")
        admin_url = server.start()
    name = f"pilot_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    database_url = ensure_database(admin_url, name)
    stack = Stack(StackConfig.from_env(
        port=0, database_url=database_url, aws_endpoint_url=None,
        stack_name="amazon-pilot-bench", schedules=False, pollers=False,
        extra_env={"RATE_LIMIT_ENTERPRISE": "10000000", "RATE_LIMIT_IP": "10000000",
                   "POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING"},
    )).start()
    try:
        stack.warm()
        from amazon_pilot.db.accounts import create_user

        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        create_user(email, "Bench password 1", plan="enterprise")
        conn = http.client.HTTPConnection("127.0.0.1", stack.config.port)

        def call(method: str, path: str, body: dict[str, object] | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes]:
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=payload, headers={
                "content-type": "application/json", **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read()

        status, raw = call("POST", "/v1/auth/login",
                           {"email": email, "password": "Bench password 1"})
        assert status == 200, raw
        token = json.loads(raw)["access_token"]
        auth = {"authorization": f"Bearer {token}"}

        def me() -> None:
            code, body = call("GET", "/v1/auth/me", headers=auth)
            assert code == 200, body

        def health() -> None:
            code, body = call("GET", "/v1/health")
            assert code == 200, body

        for _ in range(200):  # warm: pools, caches, the signing key
            me()
            health()
        me_ms: list[float] = []
        health_ms: list[float] = []
        for _ in range(n):
            me_ms += timed(me, 1)
            health_ms += timed(health, 1)

        # the layer alone, in process
        from amazon_pilot.api import ratelimit, security

        scope_headers = [(b"authorization", f"Bearer {token}".encode())]

        def layer() -> None:
            state = security.authenticate({"type": "http", "headers": scope_headers,
                                           "state": {}, "client": ("127.0.0.1", 1)})
            assert state.user is not None

        claims = security.verify_access_token(token)
        layer_ms = timed(layer, n)
        jwt_ms = timed(lambda: security.verify_access_token(token), n)
        db_ms = timed(lambda: ratelimit.hit_with_user(claims["sub"]), n)

        print(f"stack {stack.url}; {n} requests each, one keep-alive connection (http.client),"
              " interleaved; Python", sys.version.split()[0])
        print(summary("GET /v1/auth/me (auth + limit + query)", me_ms))
        print(summary("GET /v1/health (DB + 3 SQS calls)", health_ms))
        print(f"{'difference of p50 (me - health)':<38} "
              f"{pct(me_ms, 0.5) - pct(health_ms, 0.5):+7.3f} ms")
        print(summary("auth + rate-limit layer, in process", layer_ms))
        print(summary("  of which JWT verification", jwt_ms))
        print(summary("  of which user + counter round trip", db_ms))
        conn.close()
    finally:
        stack.stop()
        import psycopg
        from psycopg import sql

        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(name)))
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

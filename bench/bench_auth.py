"""What authentication and rate limiting cost per request (a script, not a test).

Starts the local stack in this process (as tests/integration/conftest.py does) on a fresh
database (common.bench_database), then:

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
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from common import bench_database, keep_alive_latencies, local_stack, percentile


def line(name: str, samples: list[float]) -> str:
    return (f"{name:<38} p50 {percentile(samples, 50):7.3f} ms"
            f"   p99 {percentile(samples, 99):7.3f} ms"
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

    # limits out of the way; moto in process even if AWS_ENDPOINT_URL is set; no pollers
    limits = {"RATE_LIMIT_ENTERPRISE": "10000000", "RATE_LIMIT_IP": "10000000"}
    with (bench_database() as database_url,
          local_stack(database_url, extra_env=limits, aws_endpoint_url=None,
                      pollers=False) as stack):
        stack.warm()
        import httpx

        from amazon_pilot.accounts.service import create_user

        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        create_user(email, "Bench password 1", plan="enterprise")
        login = httpx.post(f"{stack.url}/v1/auth/login",
                           json={"email": email, "password": "Bench password 1"})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        auth = {"authorization": f"Bearer {token}"}

        conn = http.client.HTTPConnection("127.0.0.1", stack.config.port)
        try:
            for _ in range(200):  # warm: pools, caches, the signing key
                keep_alive_latencies(conn, "/v1/auth/me", 1, auth)
                keep_alive_latencies(conn, "/v1/health", 1)
            me_ms: list[float] = []
            health_ms: list[float] = []
            for _ in range(n):  # interleaved: a slow spell of the machine hits both alike
                me_ms += [us / 1000 for us in keep_alive_latencies(conn, "/v1/auth/me", 1, auth)]
                health_ms += [us / 1000 for us in keep_alive_latencies(conn, "/v1/health", 1)]
        finally:
            conn.close()

        # the layer alone, in process
        from amazon_pilot.platform import ratelimit, security

        scope_headers = [(b"authorization", f"Bearer {token}".encode())]

        def layer() -> None:
            state = security.authenticate({"type": "http", "headers": scope_headers,
                                           "state": {}, "client": ("127.0.0.1", 1)})
            assert state.user is not None

        claims = security.verify_access_token(token)
        layer_ms = timed(layer, n)
        jwt_ms = timed(lambda: security.verify_access_token(token), n)
        db_ms = timed(lambda: ratelimit.hit_with_user(claims["sub"], "127.0.0.1"), n)

        print(f"stack {stack.url}; {n} requests each, one keep-alive connection (http.client),"
              " interleaved; Python", sys.version.split()[0])
        print(line("GET /v1/auth/me (auth + limit + query)", me_ms))
        print(line("GET /v1/health (cached DB probe)", health_ms))
        print(f"{'difference of p50 (me - health)':<38} "
              f"{percentile(me_ms, 50) - percentile(health_ms, 50):+7.3f} ms")
        print(line("auth + rate-limit layer, in process", layer_ms))
        print(line("  of which JWT verification", jwt_ms))
        print(line("  of which user + counter round trip", db_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

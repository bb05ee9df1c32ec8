"""Shared fixtures: a real Postgres database per test session, and the local stack.

Postgres is TEST_DATABASE_URL's server when set, else the embedded server under
.pilot/test-postgres. Each session works in a database of its own, dropped at the end.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilot_dev.runtime.stack import (
    EmbeddedPostgres,
    Stack,
    StackConfig,
    ensure_database,
    with_database,
)

ROOT = Path(__file__).resolve().parents[1]
_running: list[Stack] = []  # the session's stack, once a test has started it


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield with_database(configured, "postgres")
        return
    server = EmbeddedPostgres(ROOT / ".pilot" / "test-postgres")
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def database_url(pg_admin_url: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    from amazon_pilot.platform.migrate import apply_migrations

    name = f"pilot_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = ensure_database(pg_admin_url, name)
    apply_migrations(url)
    yield url
    from amazon_pilot.platform.db import dispose_engine

    dispose_engine()
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        conn.execute(drop)


# The local stack, started once per session exactly as `pilot run` starts it, and
# shared by the integration and end-to-end tests (one stack per process: the functions
# share the process environment).
@pytest.fixture(scope="session")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A key ring of the session's own for secrets at rest (the stack makes it), so tests
    # never touch the developer's .pilot/secrets.key; tests may rotate it in place.
    os.environ.setdefault("SECRETS_KEY_FILE",
                          str(tmp_path_factory.mktemp("secrets") / "secrets.key"))
    # The per-address ceiling of signed-in traffic, out of the way like the limits below;
    # in the process environment, not extra_env, so stack_env can lower it for a test.
    os.environ.setdefault("RATE_LIMIT_IP_AUTHENTICATED", "100000")
    config = StackConfig.from_env(
        port=0,
        database_url=database_url,
        # AWS_ENDPOINT_URL (e.g. LocalStack, scripts/localstack-test.sh) or embedded moto;
        # a stack name of its own so queues left by another run never mix in
        stack_name=f"amazon-pilot-test-{os.getpid()}",
        schedules=False,  # tests fire schedules on demand
        # PILOT_FROM_BUILD=DIR (make smoke-from-build): the functions run from sam build's
        # artifacts in processes of their own, so tests that change the stack's
        # environment or patch its code in this process do not apply: run `-m smoke`.
        from_build=Path(os.environ["PILOT_FROM_BUILD"]) if os.environ.get("PILOT_FROM_BUILD")
        else None,
        extra_env={
            "RETRY_BASE_SECONDS": "1",
            # Tests make many requests from one address and with free users: keep the
            # limits out of their way. Tests of the limits themselves lower them for a
            # moment (the stack runs in this process and reads them per request).
            "RATE_LIMIT_IP": "100000",
            "RATE_LIMIT_FREE": "100000",
            "REGISTER_PER_IP": "100000",
            # a Keepa key, so the stack keeps it as a secret and grants it as a deploy
            # does; PRODUCT_SOURCE stays apify unless a test switches it (test_keepa.py)
            "KEEPA_API_KEY": "sandbox-key",
        },
    )
    running = Stack(config).start()
    _running.append(running)
    yield running
    running.stop()


@pytest.fixture()
def stack_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Change a stack-wide variable for one test. The running stack's functions read
    variables through settings(), loaded once per environment as at a cold start, so
    each change (and the undo after the test) forgets what was loaded."""
    from amazon_pilot.platform.settings import reset_settings

    def set_variable(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        reset_settings()

    yield set_variable
    monkeypatch.undo()
    reset_settings()


# PILOT_SMOKE_URL=https://... (the pipeline, after deploying staging): the smoke tests
# marked `stage` run against that deployed stage over HTTP, the same code as against the
# local stack; everything needing the local stack (its database, queues, stand-ins) is
# deselected (pytest_collection_modifyitems below).
SMOKE_URL = os.environ.get("PILOT_SMOKE_URL", "").rstrip("/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SMOKE_URL:
        return
    keep = [item for item in items if item.get_closest_marker("stage")]
    dropped = [item for item in items if not item.get_closest_marker("stage")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


@pytest.fixture(scope="session")
def api(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    base_url = SMOKE_URL or request.getfixturevalue("stack").url
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def operator(stack: Stack) -> Iterator[httpx.Client]:
    """A client of the runtime's /_pilot/... surface: it carries the operator token."""
    with httpx.Client(base_url=stack.url, timeout=120, headers=stack.operator_headers) as client:
        yield client


@pytest.fixture()
def open_aws() -> Iterator[None]:
    """moto's IAM enforcement is process-wide: a test that talks to moto as itself
    (a moto server of its own) turns it off for its duration when the session's
    stack has it on, and back on after."""
    iam = _running[0].iam if _running else None
    if iam is not None:
        iam.enforce(False)
    try:
        yield
    finally:
        if iam is not None:
            iam.enforce(True)


def on_unix_socket(url: str) -> bool:
    """The embedded Postgres listens on a Unix socket (`?host=/dir`): no TCP path to put
    a proxy in, and libpq ignores sslmode there. Tests of those skip on it; CI gives
    them a TCP server (TEST_DATABASE_URL, .ci/run)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    host = parts.hostname or parse_qs(parts.query).get("host", [""])[0]
    return not host or host.startswith("/")


@pytest.fixture()
def from_address(stack: Stack) -> Iterator[Callable[[str], httpx.Client]]:
    """Clients of the stack's API calling from other loopback addresses (127.0.0.N): the
    API sees each as a caller of its own."""
    clients: list[httpx.Client] = []

    def make(address: str) -> httpx.Client:
        client = httpx.Client(base_url=stack.url, timeout=60,
                              transport=httpx.HTTPTransport(local_address=address))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


class ShortLinkServer(BaseHTTPRequestHandler):
    """Stands in for a.co and amzn.to: 301 chains as theirs are, ending on a store URL;
    an unknown link is a 404 (an expired one)."""

    routes: dict[str, str] = {}

    def do_GET(self) -> None:
        target = self.routes.get(f"{self.headers.get('Host')}{self.path}")
        self.send_response(301 if target else 404)
        if target:
            self.send_header("Location", target)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def shortener(stack_env: Callable[[str, str], None]) -> Iterator[dict[str, str]]:
    """The session stack resolves a.co and amzn.to through a ShortLinkServer; the test
    fills in its routes ("a.co/d/x" -> the next URL)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ShortLinkServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    stack_env("SHORT_LINKS", "on")
    stack_env("SHORT_LINK_VIA", f"a.co=127.0.0.1:{port},amzn.to=127.0.0.1:{port}")
    ShortLinkServer.routes = {}
    yield ShortLinkServer.routes
    server.shutdown()
    server.server_close()

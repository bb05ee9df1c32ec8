"""The chaos harness: `pilot run` as a real subprocess on a free loopback port against a
database of its own, which a test can kill -9 and start again, plus a loopback TCP proxy
that can cut or hang a dependency (the AWS endpoint, Postgres) on command.

Everything stays on 127.0.0.1. Tests here carry the `chaos` marker (excluded from the
default suite; `make chaos` runs them) and report what they saw with `chaos_report`,
printed at the end of the run, so a run's counts are in its output.

Shape for a new case (see test_crash_recovery.py):

    def test_something(pilot_stack, seller_login, chaos_report):
        stack = pilot_stack()                    # started, /v1/health answered
        headers = seller_login(stack)            # a seller signed in through the API
        stack.client.post("/v1/products", json=..., headers=headers)
        stack.kill9(); stack.start()             # a crash and a restart, same database
        chaos_report("my case", processed=..., dead_lettered=...)
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from pilot_dev.runtime.stack import ensure_database, free_port
from tests.chaos.helpers import started

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = float(os.environ.get("CHAOS_READY_TIMEOUT", "120"))
PASSWORD = "Chaos-pass-2026-long"

CHAOS_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/chaos/ is a chaos test, whatever its file says: the default
    suite (`-m 'not chaos'` in pyproject) never starts one."""
    for item in items:
        if CHAOS_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.chaos)

# ---------------------------------------------------------------- counts, printed at the end

_REPORT: list[str] = []


@pytest.fixture()
def chaos_report(request: pytest.FixtureRequest) -> Callable[..., None]:
    """chaos_report("kill -9 during refresh", processed=200, dead_lettered=0)"""
    def record(case: str, **counts: Any) -> None:
        line = f"{request.node.name} | {case}: " + ", ".join(f"{k}={v}" for k, v in counts.items())
        _REPORT.append(line)
        print(line, flush=True)
    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORT:
        terminalreporter.section("chaos counts")
        for line in _REPORT:
            terminalreporter.write_line(line)


# ---------------------------------------------------------------- a database per stack


@pytest.fixture()
def fresh_database(pg_admin_url: str) -> Iterator[str]:
    """An empty database on the test server (TEST_DATABASE_URL or the embedded one),
    dropped afterwards; `pilot run` applies the migrations itself when it starts."""
    name = f"pilot_chaos_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = ensure_database(pg_admin_url, name)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


# ---------------------------------------------------------------- the running stack


class PilotProcess:
    """`pilot run` in a child process: start, kill -9, start again on the same port and
    database. The child's output goes to `log_path` (its tail is shown when start fails)."""

    def __init__(self, database_url: str | None, workdir: Path, *,
                 env: dict[str, str] | None = None, aws_endpoint_url: str | None = None,
                 schedules: bool = False, data_dir: Path | None = None,
                 run_args: list[str] | None = None) -> None:
        """Without `database_url`, the stack's embedded Postgres; with `data_dir`, run as
        `pilot --data-dir DIR run` (its state file, keys and database in that folder)."""
        self.database_url = database_url
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log_path = workdir / "pilot-run.log"
        self.aws_endpoint_url = aws_endpoint_url
        self.schedules = schedules
        self.run_args = run_args or []  # more options of `pilot run`
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "AWS_ENDPOINT_URL", "APIFY_TOKEN", "OPENAI_API_KEY",
                            "APIFY_REPLAY", "TEST_DATABASE_URL")}
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.data_dir is None:
            env["PILOT_STATE_FILE"] = str(self.workdir / "stack.json")  # not the developer's
        env.pop("PILOT_DATA_DIR", None)
        env.update({
            "RETRY_BASE_SECONDS": "1",
            "RATE_LIMIT_IP": "100000",
            "RATE_LIMIT_FREE": "100000",
            "RATE_LIMIT_PRO": "100000",
            "RATE_LIMIT_ENTERPRISE": "100000",
            "PYTHONUNBUFFERED": "1",
            # The embedded AWS endpoint's secrets die with the process; a fixed signing key
            # keeps a test's sign-in valid across a kill -9 and restart.
            "JWT_SECRET": "chaos-signing-key-" + "x" * 32,
        })
        if self.aws_endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.aws_endpoint_url
            env["AWS_ACCESS_KEY_ID"] = env["AWS_SECRET_ACCESS_KEY"] = "testing"
        env.update(self.extra_env)
        return env

    def start(self) -> PilotProcess:
        pilot = shutil.which("pilot", path=str(Path(sys.executable).parent)) or "pilot"
        args = [pilot, *self.data_dir_args(), "run", "--port", str(self.port)]
        if not self.schedules:
            args.append("--no-schedules")
        args += self.run_args
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n===== start {self.starts} =====\n".encode())
        log.flush()
        self.process = subprocess.Popen(args, cwd=ROOT, env=self.environment(), stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.wait_ready()
        return self

    def data_dir_args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)] if self.data_dir is not None else []

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"pilot run exited ({self.process.returncode}):\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (self.client.get("/v1/health", timeout=5).status_code < 500
                        and started(self.state_file(), self.process.pid)):
                    return
            time.sleep(0.3)
        raise RuntimeError(f"pilot run not ready after {timeout:.0f} s:\n{self.tail()}")

    def kill9(self) -> None:
        """SIGKILL to the whole process group: no shutdown code runs, as in a crash."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """A clean stop (SIGTERM: in-flight work is finished first)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.kill9()
        self.process = None

    def restart(self) -> PilotProcess:
        self.kill9()
        return self.start()

    def fire(self, schedule: str) -> Any:
        """Fire one of the template's schedules now (the runtime's control surface)."""
        response = self.client.post(f"/_pilot/schedules/{schedule}/fire", timeout=300,
                                    headers=self.operator_headers())
        response.raise_for_status()
        return response.json()

    def status(self) -> dict[str, Any]:
        """The runtime's own description (stand-ins, queues, endpoint)."""
        response = self.client.get("/_pilot/status", headers=self.operator_headers())
        response.raise_for_status()
        return dict(response.json())

    def operator_headers(self) -> dict[str, str]:
        """/_pilot/... answers only with the token this run wrote next to its state file."""
        token = Path(self.state()["operator_token_file"]).read_text().strip()
        return {"X-Pilot-Operator-Token": token}

    def state(self) -> dict[str, Any]:
        """What `pilot run` wrote to its state file (queue URLs, AWS endpoint, pid)."""
        return dict(json.loads(self.state_file().read_text()))

    def state_file(self) -> Path:
        return (self.data_dir if self.data_dir is not None else self.workdir) / "stack.json"

    def sqs(self) -> Any:
        """The stack's SQS as its operator (the runtime's own identity: its endpoint
        enforces IAM, so an unknown key is refused), as `pilot queues` reaches it."""
        from pilot_dev.cli import aws_client

        return aws_client(self.state(), "sqs")

    def dlq_depth(self) -> int:
        """Messages in all DLQs (visible and in flight), without receiving any."""
        sqs, total = self.sqs(), 0
        for logical_id, url in self.state()["queues"].items():
            if logical_id.endswith("DLQ"):
                attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
                total += sum(int(v) for v in attributes["Attributes"].values())
        return total

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every message in the stack's DLQs: {"queue", "body", "reason"} (reason: the
        failure_reason attribute, None when the redrive policy moved it)."""
        sqs, found = self.sqs(), []
        for logical_id, url in self.state()["queues"].items():
            if not logical_id.endswith("DLQ"):
                continue
            seen: set[str] = set()
            while True:
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                               VisibilityTimeout=60, WaitTimeSeconds=0,
                                               MessageAttributeNames=["All"]).get("Messages", [])
                fresh = [m for m in messages if m["MessageId"] not in seen]
                if not fresh:
                    break
                for message in fresh:
                    seen.add(message["MessageId"])
                    reason = (message.get("MessageAttributes") or {}).get("failure_reason")
                    found.append({"queue": logical_id, "body": json.loads(message["Body"]),
                                  "reason": reason["StringValue"] if reason else None})
        return found

    def apify_fault(self, mode: str, count: int = 1, delay_s: float | None = None) -> None:
        """Tell the Apify stand-in to misbehave (e.g. "slow": runs stay RUNNING delay_s)."""
        url = self.status()["standins"]["apify"]
        httpx.post(f"{url}/_sandbox/faults", json={"mode": mode, "count": count,
                                                   "delay_s": delay_s}).raise_for_status()

    def db(self) -> psycopg.Connection[Any]:
        """A plain connection to the stack's database, for what a test checks."""
        return psycopg.connect(self.database_url, autocommit=True)

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.kill9()
        self.client.close()


@pytest.fixture()
def pilot_stack(fresh_database: str, tmp_path: Path) -> Iterator[Callable[..., PilotProcess]]:
    """pilot_stack(env={...}, aws_endpoint_url=None, schedules=False, run_args=[...]) ->
    a started stack on a fresh database; killed at the end of the test whatever happened."""
    made: list[PilotProcess] = []

    def make(**options: Any) -> PilotProcess:
        stack = PilotProcess(fresh_database, tmp_path, **options)
        made.append(stack)
        return stack.start()

    yield make
    for stack in made:
        stack.close()


# ---------------------------------------------------------------- sign-in


def _create_user(database_url: str, role: str, plan: str) -> str:
    """An account written with the service's own code (the password hash it verifies)."""
    from amazon_pilot.accounts.service import create_user
    from amazon_pilot.platform.db import dispose_engine
    from amazon_pilot.platform.settings import reset_settings

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = database_url
    reset_settings()
    dispose_engine()
    try:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        create_user(email, PASSWORD, role=role, plan=plan)
        return email
    finally:
        dispose_engine()
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        reset_settings()


def login(stack: PilotProcess, role: str = "seller", plan: str = "enterprise") -> dict[str, str]:
    """A new account of this role, signed in through the stack's API: Authorization headers
    (plus "email" and "password" under keys a test can pop)."""
    email = _create_user(stack.database_url, role, plan)
    response = stack.client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    if role == "admin":  # admin routes refuse a session without a second factor
        from tests.integration.sellers import enrol_mfa

        token = enrol_mfa(stack.client, token)[1]["tokens"]["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture()
def seller_login() -> Callable[..., dict[str, str]]:
    return lambda stack, plan="enterprise": login(stack, "seller", plan)


@pytest.fixture()
def admin_login() -> Callable[..., dict[str, str]]:
    return lambda stack: login(stack, "admin")


# ---------------------------------------------------------------- a dependency that fails


class FaultProxy:
    """A loopback TCP proxy in front of a dependency. Modes:
    - "pass": bytes flow both ways;
    - "cut": connections whose client bytes contain `pattern` (any, when None) are closed,
      as when the service is down (e.g. pattern b"AmazonSQS" cuts only SQS calls);
    - "hang": nothing answers (a hung server): every connection when `pattern` is None,
      else each connection from the moment its client sends `pattern` (e.g. b"AmazonSQS"
      hangs only SQS calls); a held connection is closed once the mode is restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.pattern: bytes | None = None
        self.cuts = 0
        self.hangs = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    def cut(self, pattern: bytes | None = None) -> None:
        self.mode, self.pattern = "cut", pattern

    def hang(self, pattern: bytes | None = None) -> None:
        self.mode, self.pattern = "hang", pattern

    def restore(self) -> None:
        self.mode, self.pattern = "pass", None

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        sockets = [client, upstream]
        held = False  # this connection met a pattern hang: it never answers again
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.5)
                if held and self.mode != "hang":
                    return  # restored: the hung call fails now, as after a timeout
                if self.mode == "hang" and self.pattern is None:
                    continue
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    matches = self.pattern is None or self.pattern in data
                    if sock is client and self.mode == "cut" and matches:
                        self.cuts += 1
                        return
                    if sock is client and self.mode == "hang" and matches and not held:
                        held = True
                        self.hangs += 1
                    if not held:
                        (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


@pytest.fixture()
def moto_behind_proxy(open_aws: None) -> Iterator[FaultProxy]:
    """An AWS endpoint (moto's server, in this process) reached through a FaultProxy:
    pass its `.url` as the stack's aws_endpoint_url, then `.cut(b"AmazonSQS")` / `.restore()`.
    Its state outlives the stack's process (unlike the embedded one)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = FaultProxy(host, port)
    yield proxy
    proxy.close()
    server.stop()

"""Helpers shared by the benchmarks: the stack (in a subprocess or in process), timing,
a fresh database.

Benchmarks print figures; they never assert. Each compares against a reference
measured in the same run, because these machines are noisy.
"""

from __future__ import annotations

import http.client
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pilot_dev.runtime.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
PILOT_RUN_LOG = ROOT / ".pilot" / "bench-pilot-run.log"  # what the latest bench `pilot run` printed
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


# A bench stopped with SIGTERM (a timeout, CI's cancel) unwinds like Ctrl-C, so its
# `finally` blocks stop the `pilot run` and drop the database it started.
signal.signal(signal.SIGTERM, _stop_on_sigterm)


def free_port() -> int:
    from pilot_dev.runtime.stack import free_port as pick

    return pick()


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def wait_http(port: int, path: str = "/v1/health/live", timeout: float = 60) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"nothing answered on port {port} within {timeout} s")


def wait_serving(port: int, timeout: float = 120) -> int:
    """After wait_http: until every process of `pilot run --http-processes N` listens,
    so that a load's connections spread over all of them. Returns how many serve."""
    import json

    token_file = Path(os.environ.get("PILOT_DATA_DIR") or ROOT / ".pilot") / "operator-token"
    started = time.perf_counter()
    last: object = None  # what the status said last, for the error
    while time.perf_counter() - started < timeout:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/_pilot/status",
                         headers={"X-Pilot-Operator-Token": token_file.read_text()})
            answer = conn.getresponse()
            children = json.loads(answer.read()).get("http_processes", [])
            last = (answer.status, children)
            if answer.status == 200 and all(child["serving"] for child in children):
                return 1 + len(children)
        except (OSError, ValueError) as exc:
            last = exc  # not up yet, or the token not written yet
        time.sleep(0.1)
    raise RuntimeError(f"pilot run's HTTP processes did not all listen within {timeout} s "
                       f"(last: {last!r}; its output: {PILOT_RUN_LOG})")


def hammer(port: int, path: str, n: int, headers: dict[str, str] | None = None) -> list[float]:
    """n sequential keep-alive GETs with http.client; returns latencies in microseconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return keep_alive_latencies(conn, path, n, headers)
    finally:
        conn.close()


def keep_alive_latencies(conn: http.client.HTTPConnection, path: str, n: int,
                         headers: dict[str, str] | None = None) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        samples.append((time.perf_counter() - started) * 1e6)
        if response.status >= 400:
            raise RuntimeError(f"GET {path} answered {response.status}")
    return samples


def summary(samples: list[float]) -> str:
    return (f"p50 {statistics.median(samples):8.0f} µs   p99 {percentile(samples, 99):8.0f} µs"
            f"   (n={len(samples)})")


def stop_with_this_process() -> None:
    """Run in a child before exec: the kernel sends it SIGTERM when this process dies."""
    from pilot_dev.runtime.parent_death import signal_on_parent_death

    signal_on_parent_death(signal.SIGTERM)  # `pilot run` stops cleanly on SIGTERM


@contextmanager
def pilot_run(port: int, env: dict[str, str] | None = None, workers: int | None = None,
              http_processes: int | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`pilot run` in a subprocess (so the client does not share its interpreter), with
    `workers` consumer processes and `http_processes` serving the API (default: pilot
    run's own, the core count)."""
    extra = ["--workers", str(workers)] if workers is not None else []
    if http_processes is not None:
        extra += ["--http-processes", str(http_processes)]
    PILOT_RUN_LOG.parent.mkdir(parents=True, exist_ok=True)
    with PILOT_RUN_LOG.open("wb") as log:  # the latest run's output, to read on a failure
        process = subprocess.Popen(
            [str(VENV_BIN / "pilot"), "run", "--port", str(port), "--no-schedules", *extra],
            cwd=ROOT, env={**os.environ, **(env or {})},
            stdout=log, stderr=subprocess.STDOUT,
            # killed outright (kill -9), the bench cannot stop it: the kernel does
            preexec_fn=stop_with_this_process,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def local_stack(database_url: str, extra_env: dict[str, str] | None = None,
                **config: Any) -> Iterator[Stack]:
    """The stack in this process, on `database_url`: for benches that also call its code
    in process, which needs the stack's environment (database, secrets, stand-ins).

    `config` overrides StackConfig fields (e.g. pollers=False); `extra_env` adds variables.
    """
    from pilot_dev.runtime.stack import Stack, StackConfig

    settings = {"port": 0, "stack_name": "amazon-pilot-bench", "schedules": False,
                "echo_access_log": False, **config}
    quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING"}
    stack = Stack(StackConfig.from_env(database_url=database_url,
                                       extra_env={**quiet, **(extra_env or {})},
                                       **settings)).start()
    try:
        yield stack
    finally:
        stack.stop()


@contextmanager
def bench_database() -> Iterator[str]:
    """A database of its own on the embedded test server, dropped afterwards."""
    import psycopg
    from psycopg import sql

    from amazon_pilot.platform.migrate import apply_migrations
    from pilot_dev.runtime.stack import EmbeddedPostgres, ensure_database

    server = EmbeddedPostgres(ROOT / ".pilot" / "bench-postgres")
    admin = os.environ.get("BENCH_DATABASE_URL") or server.start()
    name = f"pilot_bench_{uuid.uuid4().hex[:8]}"
    url = ensure_database(admin, name)
    apply_migrations(url)
    try:
        yield url
    finally:
        from amazon_pilot.platform.db import dispose_engine

        dispose_engine()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        server.stop()


# Issue 2's reference Lambda module: the libraries every API function loads, and nothing
# of ours. bench_runtime and bench_coldstart time the functions against it.
REFERENCE_MODULE = textwrap.dedent("""
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from fastapi import FastAPI
    from mangum import Mangum
    from sqlalchemy import create_engine
    logger, metrics, tracer = Logger(service="ref"), Metrics(namespace="ref"), Tracer()
    engine = create_engine("postgresql+psycopg://u@127.0.0.1/db")
    app = FastAPI()
    @app.get("/")
    async def root():
        return {"ok": True}
    handler = Mangum(app, lifespan="off")
""")


def goal(name: str, figure: float, unit: str, target: str, met: bool, *,
         reference: str = "", ratio: str = "") -> None:
    """One issue goal's figure, for the table `run_all.py` prints at the end of `make bench`.

    The bench prints its own detailed lines; this only records the figure (with the
    reference measured in the same run, and the ratio the goal is stated in) as one JSON
    line in $BENCH_FIGURES, so every goal can be read in one place after one run.
    Outside run_all (no $BENCH_FIGURES) it does nothing."""
    import json

    path = os.environ.get("BENCH_FIGURES")
    if not path:
        return
    line = {"bench": Path(sys.argv[0]).name, "name": name, "figure": figure, "unit": unit,
            "target": target, "met": met, "reference": reference, "ratio": ratio}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")

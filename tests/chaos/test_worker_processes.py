"""`pilot run --workers N` and `--http-processes N`: the queue consumers, and more
processes serving the API, which never outlive the runtime, even when only the
runtime's own process is killed -9 (its children are not signalled then: they must
notice by themselves)."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil
import pytest

from tests.chaos.helpers import fresh_asins, wait_for

pytestmark = pytest.mark.chaos


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def kill_runtime_alone(stack: Any, children: list[int], what: str) -> float:
    """kill -9 of the runtime's process only (its children get no signal); the seconds
    until every child was gone by itself."""
    assert stack.process is not None
    os.kill(stack.process.pid, signal.SIGKILL)
    stack.process.wait(timeout=30)
    stack.process = None
    started = time.monotonic()
    wait_for(lambda: not alive(children), 15, f"{what} {children} gone")
    return round(time.monotonic() - started, 2)


def test_worker_processes_fetch_and_die_with_the_runtime(pilot_stack: Any,
                                                         seller_login: Any,
                                                         chaos_report: Any) -> None:
    stack = pilot_stack()  # `pilot run` without --workers: one worker per core
    headers = seller_login(stack)
    workers = stack.status()["worker_processes"]
    assert len(workers) == (os.cpu_count() or 1), workers
    assert stack.process is not None
    runtime = psutil.Process(stack.process.pid)
    assert {c.pid for c in runtime.children()} >= set(workers)

    # a first fetch is a queued job: only a worker process consumes it
    asins = fresh_asins(3)
    items = [{"url": f"https://www.amazon.com/dp/{a}"} for a in asins]
    response = stack.client.post("/v1/products/bulk", json={"items": items}, headers=headers)
    assert response.status_code == 200, response.text

    def fetched() -> bool:
        with stack.db() as conn:
            return bool(conn.execute(
                "SELECT count(*) = 3 FROM products WHERE last_fetch_status IS NOT NULL"
            ).fetchone()[0])

    wait_for(fetched, 120, "the three products fetched by a worker process")

    # kill -9 of the runtime's process alone: its workers must go by themselves
    gone_after = kill_runtime_alone(stack, workers, "worker processes")
    chaos_report("workers die with the runtime", workers=len(workers), gone_after_s=gone_after)

    # and a new runtime on the same database starts its own workers
    stack.start()
    assert len(stack.status()["worker_processes"]) == len(workers)


def _api_requests_counted(stack: Any) -> float:
    """AWS/ApiGateway Count as the endpoint's CloudWatch holds it, after the runtime has
    evaluated and published its local metrics (POST /_pilot/alarms)."""
    from pilot_dev.cli import aws_client

    time.sleep(2)  # the access lines shipped and the children's samples relayed
    stack.client.post("/_pilot/alarms", headers=stack.operator_headers()).raise_for_status()
    cloudwatch = aws_client(stack.state(), "cloudwatch")
    total = 0.0
    for metric in cloudwatch.list_metrics(Namespace="AWS/ApiGateway",
                                          MetricName="Count")["Metrics"]:
        now = datetime.now(UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/ApiGateway", MetricName="Count", Dimensions=metric["Dimensions"],
            StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
            Period=60, Statistics=["Sum"])["Datapoints"]
        total += sum(point["Sum"] for point in points)
    return total


def test_http_processes_share_the_port_count_in_the_metrics_and_die_with_the_runtime(
        pilot_stack: Any, chaos_report: Any) -> None:
    stack = pilot_stack(run_args=["--http-processes", "2"])

    def serving() -> list[int]:
        children = stack.status()["http_processes"]
        return [c["pid"] for c in children] if children and all(
            c["serving"] for c in children) else []

    children = wait_for(serving, 120, "the second HTTP process listening")
    assert len(children) == 1, children
    assert stack.process is not None
    assert set(children) <= {c.pid for c in psutil.Process(stack.process.pid).children()}
    before = _api_requests_counted(stack)

    # Connections spread over both processes (SO_REUSEPORT), and each one guards the
    # runtime's control surface: no token, 401; with it, the parent's own answer.
    sent = 0
    for _ in range(24):
        with httpx.Client(base_url=stack.url, timeout=30) as fresh:  # a connection each
            assert fresh.get("/_pilot/status").status_code == 401
            answer = fresh.get("/_pilot/status", headers=stack.operator_headers())
            assert answer.status_code == 200, answer.text
            assert [c["pid"] for c in answer.json()["http_processes"]] == children
            assert fresh.get("/v1/health/live").status_code == 200
            sent += 3

    # Each process writes its access lines to a stream of its own, as each Lambda
    # instance does: both served.
    from pilot_dev.cli import aws_client

    logs = aws_client(stack.state(), "logs")
    group = next(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]
                 if g["logGroupName"].startswith("/aws/apigateway/"))
    wait_for(lambda: sum(1 for s in logs.describe_log_streams(logGroupName=group)["logStreams"]
                         if s.get("lastEventTimestamp")) >= 2, 30,
             "access lines from both processes")

    # Every request counts in the API's metrics (the alarms' input), whichever process
    # served it: the child's samples reach the runtime's store through their pipe. The
    # first count's own POST /_pilot/alarms lands in this window too.
    counted = _api_requests_counted(stack) - before
    assert sent + 1 <= counted <= sent + 3, (counted, sent)

    # kill -9 of the runtime's process alone: its HTTP process goes by itself, and the
    # port is free for the next start
    gone_after = kill_runtime_alone(stack, children, "HTTP processes")
    chaos_report("HTTP processes die with the runtime", processes=len(children),
                 gone_after_s=gone_after, requests=sent)
    stack.start()
    assert len(wait_for(serving, 120, "the restarted runtime's HTTP process")) == 1


def test_ctrl_c_while_the_children_load_stops_everything_quietly(pilot_stack: Any) -> None:
    """The API answers before the worker and HTTP processes have loaded (they start after
    it, so as not to slow the runtime's last steps): a Ctrl-C then, which the terminal
    sends to the whole process group, stops every process without a traceback."""
    stack = pilot_stack(run_args=["--workers", "2", "--http-processes", "2"])
    assert stack.process is not None
    runtime = psutil.Process(stack.process.pid)
    children = wait_for(lambda: [c.pid for c in runtime.children()], 30, "the children started")
    os.killpg(stack.process.pid, signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0
    stack.process = None
    wait_for(lambda: not alive(children), 30, f"children {children} gone")
    output = stack.tail(400)
    assert "stopped." in output, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output

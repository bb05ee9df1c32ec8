"""`pilot run --workers N`: the queue consumers run in processes of their own, which
never outlive the runtime, even when only the runtime's own process is killed -9 (its
children are not signalled then: they must notice by themselves)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

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
    os.kill(stack.process.pid, signal.SIGKILL)
    stack.process.wait(timeout=30)
    stack.process = None
    started = time.monotonic()
    wait_for(lambda: not alive(workers), 15, f"worker processes {workers} gone")
    chaos_report("workers die with the runtime", workers=len(workers),
                 gone_after_s=round(time.monotonic() - started, 2))

    # and a new runtime on the same database starts its own workers
    stack.start()
    assert len(stack.status()["worker_processes"]) == len(workers)

"""Ships each invocation's log lines to its function's CloudWatch log group, in the
background, so that writing logs never adds latency to a request."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any


class CloudWatchShipper:
    def __init__(self, logs_client: Any) -> None:
        self.client = logs_client
        self.stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._queue: queue.Queue[tuple[str, list[str], int] | None] = queue.Queue()
        self._ready: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self.shipped = 0
        self.errors = 0

    def start(self) -> CloudWatchShipper:
        self._thread.start()
        return self

    def __call__(self, group: str, lines: list[str]) -> None:
        self._queue.put((group, lines, int(time.time() * 1000)))

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def flush(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def _ensure(self, group: str) -> None:
        if group in self._ready:
            return
        for call, kwargs in (
            (self.client.create_log_group, {"logGroupName": group}),
            (self.client.create_log_stream, {"logGroupName": group, "logStreamName": self.stream}),
        ):
            with contextlib.suppress(self.client.exceptions.ResourceAlreadyExistsException):
                call(**kwargs)
        self._ready.add(group)

    def _run(self) -> None:
        # Drain what has queued up and send one call per log group: one call per
        # invocation would make a busy endpoint (moto runs in this process) the bottleneck.
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is None for item in batch)
            by_group: dict[str, list[dict[str, object]]] = {}
            for item in batch:
                if item is not None:
                    group, lines, stamp = item
                    by_group.setdefault(group, []).extend(
                        {"timestamp": stamp, "message": line} for line in lines)
            for group, events in by_group.items():
                try:
                    self._ensure(group)
                    for start in range(0, len(events), 5000):
                        self.client.put_log_events(logGroupName=group, logStreamName=self.stream,
                                                   logEvents=events[start:start + 5000])
                    self.shipped += len(events)
                except Exception:  # losing a log line must never stop the stack
                    self.errors += 1
            for _ in batch:
                self._queue.task_done()
            if stop:
                return
            time.sleep(0.2)  # let the next lines gather

"""What a child process (a queue worker, an HTTP process) sends the runtime: its log
lines, its metric samples, and word that it serves.

A child measures what the runtime would in its place (each invocation's AWS/Lambda
Invocations, Errors and Duration; AWS/ApiGateway from its access lines; EMF from its
functions' log lines) and logs what the runtime would log. `ParentPipe` is both sinks:
every `FLUSH_S` it renders the lines handed to it and writes them, with the samples, as
one JSON line to a pipe. The runtime's `ChildReceiver` writes the lines into the log
stream of that child (its own, as each Lambda instance has one) and the samples into
the MetricStore its alarms read. Without it, an alarm on a consumer's errors never
fired while the consumers ran in worker processes; and shipping through the endpoint's
public API cost the runtime's interpreter 10 % of its time (moto parsing each batch)
in bursts that made the requests it served wait.

Records: `{"logs": [[group, [[stamp_ms, line], ...]], ...], "metrics": [[namespace,
name, dims, [[value, at], ...]], ...]}` and `{"ready": true}` (an HTTP process that
listens).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from pilot_dev.runtime.invoker import Lines

_DimsKey = tuple[tuple[str, str], ...]

# As the runtime's own shipper into its in-process store: short rounds, short work.
FLUSH_S = 0.02


class ParentPipe:
    """A child's log sink (`pipe(group, lines)`) and metric sink (`pipe.put(...)`)."""

    def __init__(self, descriptor: int, clock: Callable[[], float] = time.time) -> None:
        self._descriptor = descriptor
        self._clock = clock
        # appended on the request's thread without a lock (deque appends are atomic)
        self._lines: deque[tuple[str, Lines, int]] = deque()
        self._samples: deque[tuple[str, str, dict[str, str], float, float]] = deque()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parent-pipe", daemon=True)
        self.errors = 0

    def start(self) -> ParentPipe:
        self._thread.start()
        return self

    def __call__(self, group: str, lines: Lines) -> None:
        self._lines.append((group, lines, int(time.time() * 1000)))

    def put(self, namespace: str, name: str, dims: dict[str, str], value: float,
            at: float | None = None) -> None:
        self._samples.append((namespace, name, dims, value,
                              self._clock() if at is None else at))

    def send_ready(self) -> None:
        self._write(b'{"ready": true}\n')

    def flush(self) -> None:
        by_group: dict[str, list[list[Any]]] = {}
        while self._lines:
            group, lines, stamp = self._lines.popleft()
            try:
                rendered = lines() if callable(lines) else lines  # may put() samples
            except Exception:  # one line that does not render loses only itself
                self.errors += 1
                continue
            by_group.setdefault(group, []).extend([stamp, line] for line in rendered)
        series: dict[tuple[str, str, _DimsKey], tuple[dict[str, str], list[list[float]]]] = {}
        while self._samples:  # after the lines: rendering them measures requests
            namespace, name, dims, value, at = self._samples.popleft()
            key = (namespace, name, tuple(dims.items()))
            found = series.get(key)
            if found is None:
                found = series[key] = (dims, [])
            found[1].append([float(value), at])
        if not by_group and not series:
            return
        record = {"logs": list(by_group.items()),
                  "metrics": [[namespace, name, dims, values]
                              for (namespace, name, _), (dims, values) in series.items()]}
        self._write(orjson.dumps(record) + b"\n")

    def _write(self, data: bytes) -> None:
        with self._write_lock, contextlib.suppress(OSError):  # parent gone: we exit soon
            view = memoryview(data)
            while view:
                view = view[os.write(self._descriptor, view):]

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_S):
            self.flush()

    def stop(self) -> None:
        """Send what is pending, then close the pipe (the parent reads it to EOF)."""
        self._stop.set()
        self._thread.join(5)
        self.flush()
        with contextlib.suppress(OSError):
            os.close(self._descriptor)


class ChildReceiver(threading.Thread):
    """The runtime's end of one child's pipe, read until EOF (the child ended)."""

    def __init__(self, descriptor: int, store: Any,
                 write_logs: Callable[[str, list[dict[str, Any]]], None],
                 on_ready: Callable[[], None]) -> None:
        super().__init__(name="child-receiver", daemon=True)
        self._file = os.fdopen(descriptor, "rb")
        self._store = store
        self._write_logs = write_logs
        self._on_ready = on_ready

    def run(self) -> None:
        with self._file:
            for line in self._file:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a torn line from a child killed mid-write
                if isinstance(record, dict):
                    with contextlib.suppress(Exception):  # a bad record loses only itself
                        self._take(record)

    def _take(self, record: dict[str, Any]) -> None:
        if record.get("ready"):
            self._on_ready()
        for group, events in record.get("logs") or []:
            self._write_logs(str(group), [{"timestamp": int(stamp), "message": str(message)}
                                          for stamp, message in events])
        for namespace, name, dims, values in record.get("metrics") or []:
            self._store.put_many(str(namespace), str(name), dict(dims),
                                 [(float(value), float(at)) for value, at in values])

"""Ships each invocation's log lines to its function's CloudWatch log group, in the
background, so that writing logs never adds latency to a request."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from pilot_dev.runtime.invoker import Lines

# (group, stream, events): a direct write into an in-process endpoint's store
DirectWriter = Callable[[str, str, list[dict[str, Any]]], Any]

# Events a local log stream keeps (its newest). CloudWatch keeps a group's events for
# its RetentionInDays; the in-process store keeps them on the heap, where every stored
# event is one more object each full garbage collection walks: 65,000 access lines of
# a load test made those pauses the runtime's p99 (31 ms, then 131 ms four rounds
# later). At 10,000 a stream, the kept events alone made each full collection a 12 ms
# pause of every request; at 2,000, 5 ms. 2,000 lines a function is what `pilot logs`
# shows of this run's recent work.
LOCAL_EVENTS_PER_STREAM = 2_000
STAMPED = -1  # a pending entry's stamp when its lines are events already (put_events)


def moto_log_writer(region: str) -> DirectWriter | None:
    """Writes into the logs store of the moto server running in this process.

    Lambda delivers function logs to CloudWatch internally, not through the public API;
    so does the runtime when the endpoint lives in its own process. Through the API,
    each line would cost ~15 µs of serialization and parsing on the GIL the requests
    need; directly, ~1 µs. None when moto's layout is not the one expected: the API
    is used then.
    """
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.logs.models import logs_backends

        return cast(DirectWriter, logs_backends[DEFAULT_ACCOUNT_ID][region].put_log_events)
    except Exception:
        return None


def moto_log_trimmer(region: str, keep: int = LOCAL_EVENTS_PER_STREAM
                     ) -> Callable[[], int] | None:
    """Drops the oldest events of any stream of the in-process store that holds more
    than `keep` (by a quarter, so trimming is rare); returns how many it dropped. The
    child processes' lines land in the same store: one trimmer covers them too.
    None when moto's layout is not the one expected."""
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.logs.models import logs_backends

        backend = logs_backends[DEFAULT_ACCOUNT_ID][region]
        backend.groups  # noqa: B018 (the layout this relies on)
    except Exception:
        return None

    def trim() -> int:
        dropped = 0
        for group in list(backend.groups.values()):
            for stream in list(group.streams.values()):
                excess = len(stream.events) - keep
                if excess > keep // 4:
                    del stream.events[:excess]
                    dropped += excess
        return dropped

    return trim


class CloudWatchShipper:
    """Every 0.02 s (0.2 s through the API), renders the lines handed to it and writes
    them, one call per log group.

    Handing lines over is a deque append (atomic under the GIL): no lock, no wake-up of
    this thread, nothing a request would wait on.
    """

    # Into the in-process store: short rounds, so that each round's work is short. The
    # lines of 0.2 s of load took 13-26 ms of the interpreter at once, and a request
    # that needed it back during that burst waited 5 ms slices (the switch interval)
    # behind it, a p99 of +20 ms; in 0.02 s rounds the same work comes in ≈ 1.3 ms
    # pieces (measured in process, 3,000 req/s).
    DIRECT_INTERVAL_S = 0.02
    # Through the API (an endpoint of its own, e.g. LocalStack): each round is a
    # request the endpoint serves, so fewer, larger ones.
    API_INTERVAL_S = 0.2

    def __init__(self, logs_client: Any, direct: DirectWriter | None = None,
                 trim: Callable[[], int] | None = None) -> None:
        self.client = logs_client
        self.direct = direct
        self.trim = trim  # the in-process store's bound (LOCAL_EVENTS_PER_STREAM)
        self.stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        # (group, lines or a callable rendering them, stamp) or (group, events, STAMPED)
        self._pending: deque[tuple[str, Lines | list[dict[str, Any]], int]] = deque()
        self._stopping = threading.Event()
        self._ready: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self.shipped = 0
        self.errors = 0

    def start(self) -> CloudWatchShipper:
        self._thread.start()
        return self

    def __call__(self, group: str, lines: Lines) -> None:
        self._pending.append((group, lines, int(time.time() * 1000)))

    def put_events(self, group: str, events: list[dict[str, Any]]) -> None:
        """Lines stamped already: a child process's, relayed by its pipe."""
        self._pending.append((group, events, STAMPED))

    def stop(self, timeout: float = 5.0) -> None:
        """Ship what is pending, then end the thread."""
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            interval = self.DIRECT_INTERVAL_S if self.direct else self.API_INTERVAL_S
            stopping = self._stopping.wait(interval)  # let the next lines gather
            self._ship_pending()
            if self.trim is not None:
                with contextlib.suppress(Exception):  # a full store never stops the stack
                    self.trim()
            if stopping:
                return

    def _ship_pending(self) -> None:
        # One call per log group: one per invocation would make a busy endpoint the
        # bottleneck.
        by_group: dict[str, list[dict[str, object]]] = {}
        while self._pending:
            group, lines, stamp = self._pending.popleft()
            if stamp == STAMPED:
                by_group.setdefault(group, []).extend(cast(list[dict[str, object]], lines))
                continue
            try:
                rendered = lines() if callable(lines) else cast(list[str], lines)
            except Exception:  # one line that does not render loses only itself
                self.errors += 1
                continue
            by_group.setdefault(group, []).extend(
                {"timestamp": stamp, "message": line} for line in rendered)
        for group, events in by_group.items():
            try:
                self._ensure(group)
                self._put(group, events)
                self.shipped += len(events)
            except Exception:  # losing a log line must never stop the stack
                self.errors += 1

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

    def _put(self, group: str, events: list[dict[str, Any]]) -> None:
        if self.direct is not None:
            try:
                self.direct(group, self.stream, events)
                return
            except Exception:  # the store's layout changed: the public API from now on
                self.direct = None
        for start in range(0, len(events), 5000):
            self.client.put_log_events(logGroupName=group, logStreamName=self.stream,
                                       logEvents=events[start:start + 5000])

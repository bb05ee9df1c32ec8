"""Powertools Logger, Metrics and Tracer, made once per function module.

Every log line goes to stdout as JSON (Lambda ships stdout to CloudWatch). The local
runtime additionally collects the lines of each invocation through `capture_logs` so
it can write them to the function's log group on the AWS endpoint, as Lambda would.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from typing import Any, TextIO, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from amazon_pilot.platform.metrics_catalog import NAMESPACE, spec

F = TypeVar("F", bound=Callable[..., Any])


_captured = threading.local()


class _CapturingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to stdout and, when an invocation is being captured, keeps the line too."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record), self.stream)  # formatted once: the costly part
        except Exception:  # a broken record must not break the invocation
            self.handleError(record)


def write_line(line: str, stream: TextIO | None = None) -> None:
    """One line to stdout (what Lambda ships to CloudWatch), kept too while captured."""
    sink: list[str] | None = getattr(_captured, "lines", None)
    if sink is not None:
        sink.append(line)
    out = stream or sys.stdout
    out.write(line + "\n")
    out.flush()


class capture_logs:
    """Collect the JSON lines logged by this thread while the block runs.

    A class, not @contextmanager: it wraps every invocation, and a generator-based
    context manager costs several times more to enter and leave."""

    __slots__ = ("lines", "previous")

    def __enter__(self) -> list[str]:
        self.previous = getattr(_captured, "lines", None)
        self.lines: list[str] = []
        _captured.lines = self.lines
        return self.lines

    def __exit__(self, *exc: object) -> None:
        _captured.lines = self.previous


@cache
def make_logger(service: str) -> Logger:
    """One Logger per service per process. A second Powertools Logger for the same
    service would bring a handler Powertools never formats (it configures a service's
    logger once), and fail on its first append_keys."""
    return Logger(service=service, logger_handler=_CapturingStreamHandler())


def make_metrics(service: str) -> Metrics:
    return Metrics(namespace=NAMESPACE, service=service)


# Powertools keeps one metric set per process (class attributes shared by every Metrics
# instance). What code records goes first to its own invocation's tally (a ContextVar:
# the API's synchronous routes run in worker threads that carry the request's context),
# and lambda_entry moves the tally into the function's metrics and flushes them in one
# step under this lock: the local runtime runs many functions at once in one process,
# and each document must hold its own invocation's metrics, under its own service.
_metrics_lock = threading.Lock()
_tally: ContextVar[dict[str, tuple[str, float]] | None] = ContextVar("metric_tally",
                                                                    default=None)


def record_metric(name: str, value: float = 1) -> None:
    """Add `value` to a catalogued metric (platform/metrics_catalog.py) for this
    invocation; lambda_entry flushes the sums as one EMF document when it ends. A name
    not in the catalog raises KeyError: the dashboard and the alarms know only
    catalogued metrics.

    Outside an invocation (a CLI command or a test calling a service directly) nothing
    is recorded: there is nothing to flush it with."""
    unit = spec(name).unit
    tally = _tally.get()
    if tally is None:
        return
    _, total = tally.get(name, (unit, 0.0))
    tally[name] = (unit, total + float(value))


def make_tracer(service: str) -> Tracer:
    return Tracer(service=service)


def lambda_entry(logger: Logger, metrics: Metrics, tracer: Tracer) -> Callable[[F], F]:
    """The Powertools instrumentation every Lambda entry point wears, in one order.

    Metrics are flushed (EMF) after every invocation that recorded any. Powertools'
    `log_metrics` does the same, but raises a warning on every invocation that recorded
    none, the common case for an API request, and that costs more than the flush.
    The Tracer's decorator is left off when tracing is disabled (`pilot run`, tests):
    it would still open a no-op X-Ray subsegment on every invocation.
    """

    def wear(handler: F) -> F:
        traced: Callable[..., Any] = (
            handler if tracer.disabled
            else tracer.capture_lambda_handler(handler, capture_response=False))

        @functools.wraps(handler)
        def flushing_metrics(event: Any, context: Any) -> Any:
            tally: dict[str, tuple[str, float]] = {}
            token = _tally.set(tally)
            try:
                return traced(event, context)
            finally:
                _tally.reset(token)
                if tally or metrics.metric_set:
                    flush_metrics(metrics, tally)

        return cast(F, logger.inject_lambda_context(flushing_metrics))

    return wear


def flush_metrics(metrics: Metrics, tally: dict[str, tuple[str, float]] | None = None) -> None:
    """What `Metrics.flush_metrics` does (one EMF document on stdout, then a clean set),
    through `write_line`, so the local runtime ships it to the function's log group
    as Lambda would; CloudWatch makes metrics of it."""
    with _metrics_lock:
        for name, (unit, total) in (tally or {}).items():
            metrics.add_metric(name=name, unit=unit, value=total)
        if not metrics.metric_set:
            return  # another invocation flushed the shared set meanwhile
        document = None if is_metrics_disabled() else metrics.serialize_metric_set()
        metrics.clear_metrics()
    if document is not None:
        write_line(json.dumps(document, separators=(",", ":")))

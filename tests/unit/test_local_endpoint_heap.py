"""The embedded AWS endpoint of `pilot run` holds a bounded heap: a log stream keeps its
newest events, and what it drops is freed (moto's dashboard list no longer keeps every
object it made). Without both, a load test's access lines stayed alive and every full
garbage collection walked them, pausing each request (docs/benchmarks.md).

The store is the in-process one the runtime writes to, in a region of this test's own
(mock_aws is not used: leaving it resets every in-process backend, the session stack's).
"""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.logs.models import logs_backends

from pilot_dev.runtime.logs import moto_log_trimmer
from pilot_dev.runtime.moto_heap import install as untracked_models

REGION = "ap-southeast-4"
GROUP, STREAM = "/aws/lambda/heap-test", "2026/12/07/[$LATEST]heap"


def _put(store: Any, count: int, first: int = 0) -> None:
    now_ms = int(time.time() * 1000)  # older than 14 days would be refused
    store.put_log_events(GROUP, STREAM, [
        {"timestamp": now_ms + i, "message": f"line {i}"}
        for i in range(first, first + count)])


def _messages(store: Any) -> list[str]:
    events, _, _ = store.get_log_events(GROUP, None, STREAM, None, None, 10_000, None, True)
    return [e["message"] for e in events]


def test_a_stream_over_its_bound_keeps_its_newest_events_and_frees_the_rest() -> None:
    untracked_models()
    store = logs_backends[DEFAULT_ACCOUNT_ID][REGION]
    store.create_log_group(GROUP, tags={})
    store.create_log_stream(GROUP, STREAM)
    try:
        _put(store, 50)
        trim = moto_log_trimmer(REGION, keep=20)
        assert trim is not None
        oldest = weakref.ref(store.groups[GROUP].streams[STREAM].events[0])
        assert trim() == 30
        gc.collect()
        assert oldest() is None  # dropped from the stream, and from the heap
        assert _messages(store) == [f"line {i}" for i in range(30, 50)]

        _put(store, 4, first=50)  # a few over the bound: left until a quarter over
        assert trim() == 0
        assert len(_messages(store)) == 24
    finally:
        store.delete_log_group(GROUP)

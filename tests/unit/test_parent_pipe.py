"""A child process (a queue worker, an HTTP process) sends the runtime its log lines
and metric samples through a pipe: the lines land in the log stream of that child, the
samples in the store the template's alarms read. Without the samples, an alarm on the
API's 5xx or a consumer's errors stayed OK while the requests ran in another process."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from pilot_dev.runtime.alarms import MeteredHost, MetricsTap, MetricStore
from pilot_dev.runtime.gateway import AccessLog
from pilot_dev.runtime.parent_pipe import ChildReceiver, ParentPipe


class _Handler:
    """A function host whose handler raises when the event asks it to."""

    def load(self, logical_id: str) -> object:
        return object()

    def invoke(self, logical_id: str, event: dict[str, object]) -> object:
        if event.get("fail"):
            raise RuntimeError("the handler raised")
        return {"ok": True}


class _Logs:
    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}

    def put_events(self, group: str, events: list[dict[str, Any]]) -> None:
        self.events.setdefault(group, []).extend(events)


def _connected(store: MetricStore, logs: _Logs
               ) -> tuple[ParentPipe, ChildReceiver, threading.Event]:
    read_end, write_end = os.pipe()
    ready = threading.Event()
    receiver = ChildReceiver(read_end, store, logs.put_events, ready.set)
    receiver.start()
    return ParentPipe(write_end).start(), receiver, ready


def test_a_child_s_lines_and_metrics_reach_the_runtime() -> None:
    store, logs = MetricStore(), _Logs()
    pipe, receiver, ready = _connected(store, logs)
    host = MeteredHost(_Handler(), pipe, {"Api": "stack-api"})
    host.invoke("Api", {})
    with contextlib.suppress(RuntimeError):
        host.invoke("Api", {"fail": True})
    tap = MetricsTap(pipe, pipe, access_group="/api", api_id="a1")
    access = AccessLog('{"status":"$context.status","latency":"$context.responseLatency"}',
                       "/api", tap, measure=tap.access)
    access.write({"status": "503", "responseLatency": "12"})
    access.write({"status": "200", "responseLatency": "3"})
    tap("/aws/lambda/stack-api", ["plain line", '{"not": "emf"}'])
    pipe.send_ready()
    pipe.stop()  # sends what is pending, then closes: the receiver reads to EOF
    receiver.join(5)
    assert not receiver.is_alive()
    assert ready.is_set()
    assert [e["message"] for e in logs.events["/api"]] == [
        '{"status":"503","latency":"12"}', '{"status":"200","latency":"3"}']
    assert [e["message"] for e in logs.events["/aws/lambda/stack-api"]] == [
        "plain line", '{"not": "emf"}']
    assert all(isinstance(e["timestamp"], int) for e in logs.events["/api"])
    now = store.clock()
    fn = {"FunctionName": "stack-api"}
    assert store.samples("AWS/Lambda", "Invocations", fn, now - 60, now + 1) == [1.0, 1.0]
    assert store.samples("AWS/Lambda", "Errors", fn, now - 60, now + 1) == [0.0, 1.0]
    api = {"ApiId": "a1"}
    assert store.samples("AWS/ApiGateway", "5xx", api, now - 60, now + 1) == [1.0, 0.0]
    assert sorted(store.samples("AWS/ApiGateway", "Latency", api, now - 60, now + 1)) == [
        3.0, 12.0]


def test_a_torn_line_from_a_killed_child_loses_only_itself() -> None:
    store, logs = MetricStore(), _Logs()
    read_end, write_end = os.pipe()
    receiver = ChildReceiver(read_end, store, logs.put_events, lambda: None)
    receiver.start()
    stamp = store.clock()
    whole = ('{"logs":[["/g",[[1,"kept"]]]],"metrics":[["AWS/Lambda","Errors",'
             '{"FunctionName":"f"},[[1,' + repr(stamp) + ']]]]}\n')
    os.write(write_end, whole.encode() + b'{"logs":[["/g",[[2,"to')  # killed mid-write
    os.close(write_end)
    receiver.join(5)
    assert not receiver.is_alive()
    assert [e["message"] for e in logs.events["/g"]] == ["kept"]
    assert store.samples("AWS/Lambda", "Errors", {"FunctionName": "f"}, stamp - 1,
                         stamp + 1) == [1.0]

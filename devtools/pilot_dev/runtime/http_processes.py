"""`pilot run --http-processes N`: the API served by N processes, one core's Python each.

One interpreter runs one request's Python at a time, so `pilot run` alone answered at
about a quarter of a bare uvicorn app's rate and its tail grew with its queue (issue
18). API Gateway does not queue behind one Lambda instance either: each concurrent
request runs in an execution environment of its own, and a busy API has several warm
ones. Here, N-1 child processes each load the API functions and listen on the runtime's
port beside the parent (SO_REUSEPORT: the kernel spreads new connections over the
listening sockets), so requests run on every core.

A child is a gateway and its functions, nothing else:
- its access lines and function logs, and its metrics (AWS/ApiGateway, AWS/Lambda,
  EMF), go to the parent through a pipe (runtime/parent_pipe.py), as a worker's do: the
  lines into a log stream of this process's own, the samples to the alarms;
- `/_pilot/...` (the runtime's control surface: status, alarms, schedules) belongs to
  the parent: a child checks the operator token, then forwards the call to a listener
  of the parent's own on 127.0.0.1;
- it dies with the parent (worker_processes.die_with_parent) and, on SIGTERM, stops
  taking connections and finishes the requests in hand, as the parent's server does.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pilot_dev.runtime.gateway import OPERATOR_TOKEN_HEADER, ControlHandler
from pilot_dev.runtime.worker_processes import ChildProcesses, read_spec


@dataclass
class HttpSpec:
    template: str
    names: dict[str, str]
    environments: dict[str, dict[str, str]]  # the API functions'
    hidden: list[str]
    region: str
    host: str
    port: int
    operator_token: str
    control_url: str  # the parent's own listener for /_pilot/...
    access_format: str | None  # the HttpApi's AccessLogSettings, when it has them
    access_group: str | None
    api_id: str
    echo_access_log: bool


class HttpProcesses(ChildProcesses):
    """The parent's side: `python -m pilot_dev.runtime.http_processes INDEX FD`."""

    def __init__(self, spec: HttpSpec, count: int, store: Any,
                 log_shipper: Callable[[], Any]) -> None:
        super().__init__("pilot_dev.runtime.http_processes", spec, count, store, log_shipper,
                         kind="HTTP")


def forward_control(control_url: str, token: str) -> ControlHandler:
    """A child's control handler: the call, made again to the parent's listener."""
    address = urlsplit(control_url)

    def control(method: str, path: str, body: bytes) -> tuple[int, Any]:
        connection = http.client.HTTPConnection(address.hostname or "127.0.0.1",
                                                address.port, timeout=60)
        try:
            connection.request(method, path, body=body or None,
                               headers={OPERATOR_TOKEN_HEADER: token,
                                        "content-type": "application/json"})
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read() or b"null")
        finally:
            connection.close()

    return control


def run_http_process(index: int, pipe_fd: int) -> int:
    raw = read_spec(index, "http")
    if raw is None:
        return 0
    from pilot_dev.runtime.heap import bound_malloc

    bound_malloc()  # before any thread allocates (runtime/heap.py)
    spec = HttpSpec(**raw)

    from pilot_dev.runtime.alarms import MeteredHost, MetricsTap
    from pilot_dev.runtime.gateway import MAX_PAYLOAD, AccessLog, Gateway
    from pilot_dev.runtime.heap import settle
    from pilot_dev.runtime.http_server import HttpServer
    from pilot_dev.runtime.invoker import FunctionHost, release_thread_loop
    from pilot_dev.runtime.parent_pipe import ParentPipe
    from pilot_dev.runtime.routes import RouteTable
    from pilot_dev.runtime.template import load_template

    parent = ParentPipe(pipe_fd).start()  # logs and metrics, to the runtime
    template = load_template(Path(spec.template))
    tap = MetricsTap(parent, parent, access_group=spec.access_group, api_id=spec.api_id)
    functions = FunctionHost(spec.names, spec.environments, template.functions, log_sink=tap,
                             hidden=frozenset(spec.hidden))
    host = MeteredHost(functions, parent, spec.names)
    for function in dict.fromkeys(route.function for route in template.routes):
        try:  # every cold start before the first connection, then the heap frozen
            host.load(function)
        except Exception as exc:  # as the parent's warm: the invocation reports it again
            print(f"pilot http {index}: {function} failed to load: {exc!r}", file=sys.stderr)
    settle()
    access_log = None
    if spec.access_format and spec.access_group:
        access_log = AccessLog(spec.access_format, spec.access_group, tap,
                               echo=sys.stdout if spec.echo_access_log else None,
                               measure=tap.access)
    gateway = Gateway(host, RouteTable(template.routes),
                      control=forward_control(spec.control_url, spec.operator_token),
                      control_token=spec.operator_token, access_log=access_log)
    server = HttpServer(gateway, host=spec.host, port=spec.port, max_body=MAX_PAYLOAD,
                        too_large=gateway.too_large, on_thread_exit=release_thread_loop,
                        reuse_port=True).start()
    parent.send_ready()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C reaches the whole group
    while not stop.wait(0.5):
        pass
    server.stop()
    parent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run_http_process(int(sys.argv[1]), int(sys.argv[2])))

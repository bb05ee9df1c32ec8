"""`pilot run --workers N`: the queue consumers in N processes of their own.

In one interpreter, ingestion (normalizing items, building rows) and the HTTP API take
turns on one GIL: a daily refresh then slows every request, and the refresh itself uses
one core. With workers, the parent keeps the HTTP server, the embedded AWS endpoint, the
stand-ins, the schedule clock and the outbox relay; each worker process long-polls the
template's queues (the event source mappings) and invokes the consumer functions in
process, as the parent would, with each function's own environment and role.

Crash semantics are the single process's:
- a worker never outlives the runtime: it reads a pipe from the parent and exits at EOF
  (the parent's end closes however it dies, kill -9 included), and on Linux it also asks
  the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG);
- a message a worker had received returns to its queue after the visibility timeout,
  and a job it had claimed is freed at the next start (`release_orphaned_claims`), as
  after a crash of the single process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, cast

from pilot_dev.runtime.parent_death import signal_on_parent_death

log = logging.getLogger("pilot.runtime")

STOP_GRACE_S = 60.0  # a worker finishes the batches in hand, as a poller's join does


@dataclass
class WorkerQueue:
    """One event source mapping as a worker process polls it."""

    function: str
    queue: str
    batch_size: int
    max_concurrency: int
    report_failures: bool
    url: str
    arn: str
    threads: int


@dataclass
class WorkerSpec:
    template: str
    names: dict[str, str]
    environments: dict[str, dict[str, str]]
    hidden: list[str]
    region: str
    endpoint_url: str
    wait_s: int
    queues: list[WorkerQueue]


class ChildProcesses:
    """The parent's side of N child processes (queue workers, HTTP processes): starts
    each with its spec on a pipe, writes the log lines and metric samples each sends on
    another pipe (runtime/parent_pipe.py) into a log stream of its own and the parent's
    metric store, notes when it is ready, and stops them."""

    def __init__(self, module: str, spec: Any, count: int, store: Any,
                 log_shipper: Callable[[], Any], kind: str = "worker") -> None:
        self.module = module
        self.spec = spec
        self.count = max(1, count)
        self.store = store
        self.log_shipper = log_shipper  # a started CloudWatchShipper, one per child
        self.kind = kind
        self.processes: list[subprocess.Popen[bytes]] = []
        self.receivers: list[tuple[threading.Thread, Any]] = []  # and its shipper
        self.ready: set[int] = set()  # pids that said they serve
        self._ready_lock = threading.Lock()

    def start(self) -> ChildProcesses:
        from pilot_dev.runtime.invoker import process_environment
        from pilot_dev.runtime.parent_pipe import ChildReceiver

        payload = json.dumps(asdict(self.spec)).encode() + b"\n"
        environment = process_environment()
        for index in range(self.count):
            read_end, write_end = os.pipe()
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", self.module, str(index), str(write_end)],
                    stdin=subprocess.PIPE, env=environment, pass_fds=(write_end,),
                )
            except BaseException:
                os.close(read_end)
                raise
            finally:
                os.close(write_end)  # the child's copy is the only writer: EOF when it ends
            assert process.stdin is not None
            process.stdin.write(payload)
            process.stdin.flush()  # the pipe stays open: its EOF is the parent's death
            self.processes.append(process)
            shipper = self.log_shipper()
            receiver = ChildReceiver(read_end, self.store, shipper.put_events,
                                     partial(self._mark_ready, process.pid))
            receiver.start()
            self.receivers.append((receiver, shipper))
        log.info("%s processes (%d): %s", self.kind, self.count,
                 ", ".join(str(p.pid) for p in self.processes))
        return self

    def _mark_ready(self, pid: int) -> None:
        with self._ready_lock:
            self.ready.add(pid)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self, timeout: float = STOP_GRACE_S) -> None:
        """Ask each child to finish what it has in hand (SIGTERM), then end it."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
        self.processes = []
        for receiver, shipper in self.receivers:  # each read to its child's last line
            receiver.join(5)
            shipper.stop()
        self.receivers = []


class WorkerProcesses(ChildProcesses):
    """The queue workers: `python -m pilot_dev.runtime.worker_processes INDEX FD`."""

    def __init__(self, spec: WorkerSpec, count: int, store: Any,
                 log_shipper: Callable[[], Any]) -> None:
        super().__init__("pilot_dev.runtime.worker_processes", spec, count, store,
                         log_shipper, kind="queue worker")


# ---------------------------------------------------------------- the worker's side


def die_with_parent(pipe: IO[bytes]) -> None:
    """Exit the moment the parent's end of the pipe closes (it died, or stopped).

    PR_SET_PDEATHSIG fires when the *thread* that started this process ends: `pilot run`
    starts its workers on its main thread, which lives as long as the runtime does."""
    signal_on_parent_death(signal.SIGKILL)
    descriptor = pipe.fileno()

    def watch() -> None:
        # the descriptor, not the buffered reader: a read blocked in the reader holds its
        # lock, and the interpreter's shutdown at a normal stop then aborted ("Fatal
        # Python error: _enter_buffered_busy" on every Ctrl-C of `pilot run`)
        with contextlib.suppress(Exception):
            while os.read(descriptor, 4096):
                pass
        os._exit(0)  # no clean-up: the parent is gone, as after kill -9

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def role_client(region: str, endpoint_url: str, env: dict[str, str], service: str) -> Any:
    """A client with the credentials a function's environment holds (its role), else the
    runtime's; made from the process's one boto3 session, which the functions' clients
    share (adapters/aws.py), so botocore's endpoint table and models load once."""
    from amazon_pilot.adapters.aws import session_client

    if "AWS_ACCESS_KEY_ID" in env:  # the function's role, as its event source polls
        creds = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
                 "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
                 "aws_session_token": env.get("AWS_SESSION_TOKEN")}
    else:
        creds = {"aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                 "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")}
    return session_client(service, region_name=region, endpoint_url=endpoint_url, **creds)


def read_spec(index: int, kind: str) -> dict[str, Any] | None:
    """The spec the parent wrote on stdin (None: it went away first); from then on the
    process dies with the parent."""
    logging.basicConfig(level=logging.WARNING, format=f"pilot {kind} {index}: %(message)s")
    line = sys.stdin.buffer.readline()
    if not line:
        return None
    die_with_parent(sys.stdin.buffer)
    # Ctrl-C reaches the whole process group: while the child loads, the parent's SIGTERM
    # (its stop) ends it, not a KeyboardInterrupt traceback from the middle of an import
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return cast(dict[str, Any], json.loads(line))


def run_worker(index: int, pipe_fd: int) -> int:
    raw = read_spec(index, "worker")
    if raw is None:
        return 0
    from pilot_dev.runtime.heap import bound_malloc

    bound_malloc()  # before any thread allocates (runtime/heap.py)
    spec = WorkerSpec(**{**raw, "queues": [WorkerQueue(**q) for q in raw["queues"]]})

    from pilot_dev.runtime.alarms import MeteredHost, MetricsTap
    from pilot_dev.runtime.heap import settle
    from pilot_dev.runtime.invoker import FunctionHost
    from pilot_dev.runtime.parent_pipe import ParentPipe
    from pilot_dev.runtime.template import load_template
    from pilot_dev.runtime.workers import QueuePoller

    parent = ParentPipe(pipe_fd).start()  # logs and metrics, to the runtime
    template = load_template(Path(spec.template))
    functions = FunctionHost(spec.names, spec.environments, template.functions,
                             log_sink=MetricsTap(parent, parent),  # the consumers' EMF
                             hidden=frozenset(spec.hidden))
    host = MeteredHost(functions, parent, spec.names)
    pollers = []
    for queue in spec.queues:
        mapping = next(m for m in template.queue_mappings
                       if m.queue == queue.queue and m.function == queue.function)
        sqs = role_client(spec.region, spec.endpoint_url,
                          spec.environments.get(queue.function, {}), "sqs")
        poller = QueuePoller(sqs, host, mapping, queue.url, queue.arn, spec.region,
                             threads=queue.threads, wait_s=spec.wait_s)
        pollers.append(poller)
    for function in dict.fromkeys(queue.function for queue in spec.queues):
        try:  # the consumers' cold starts now, so that their modules are frozen with the rest
            host.load(function)
        except Exception as exc:  # as the parent's warm: the invocation reports it again
            log.error("%s failed to load: %r", function, exc)
    import amazon_pilot.adapters.apify  # noqa: F401  (make_fetcher's, at a worker's first fetch)
    from amazon_pilot.platform.jobs import load_all

    load_all()  # the jobs' modules too: frozen with the rest, the same in every worker
    settle()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C reaches the whole group
    for poller in pollers:
        poller.start()
    while not stop.wait(0.5):
        pass
    for poller in pollers:
        poller.stop()
    for poller in pollers:
        poller.join(timeout=STOP_GRACE_S)
    parent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run_worker(int(sys.argv[1]), int(sys.argv[2])))

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

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


class WorkerProcesses:
    """The parent's side: starts the workers, stops them, notices when one dies."""

    def __init__(self, spec: WorkerSpec, count: int, log_path: Path | None = None) -> None:
        self.spec = spec
        self.count = max(1, count)
        self.log_path = log_path
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> WorkerProcesses:
        payload = json.dumps(asdict(self.spec)).encode() + b"\n"
        for index in range(self.count):
            process = subprocess.Popen(
                [sys.executable, "-m", "pilot_dev.runtime.worker_processes", str(index)],
                stdin=subprocess.PIPE, env=dict(os.environ),
            )
            assert process.stdin is not None
            process.stdin.write(payload)
            process.stdin.flush()  # the pipe stays open: its EOF is the parent's death
            self.processes.append(process)
        log.info("queue consumers run in %d worker process(es): %s", self.count,
                 ", ".join(str(p.pid) for p in self.processes))
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self, timeout: float = STOP_GRACE_S) -> None:
        """Ask each worker to finish its batches in hand (SIGTERM), then end it."""
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


# ---------------------------------------------------------------- the worker's side


def _die_with_parent(pipe: IO[bytes]) -> None:
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


def _client(spec: WorkerSpec, env: dict[str, str], service: str) -> Any:
    import boto3

    if "AWS_ACCESS_KEY_ID" in env:  # the function's role, as its event source polls
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env.get("AWS_SESSION_TOKEN"))
    else:
        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    return session.client(service, region_name=spec.region, endpoint_url=spec.endpoint_url)


def run_worker(index: int) -> int:
    logging.basicConfig(level=logging.WARNING, format=f"pilot worker {index}: %(message)s")
    line = sys.stdin.buffer.readline()
    if not line:
        return 0  # the parent went away before it said anything
    raw = json.loads(line)
    spec = WorkerSpec(**{**raw, "queues": [WorkerQueue(**q) for q in raw["queues"]]})
    _die_with_parent(sys.stdin.buffer)

    from pilot_dev.runtime.heap import settle
    from pilot_dev.runtime.invoker import FunctionHost
    from pilot_dev.runtime.logs import CloudWatchShipper
    from pilot_dev.runtime.template import load_template
    from pilot_dev.runtime.workers import QueuePoller

    template = load_template(Path(spec.template))
    shipper = CloudWatchShipper(_client(spec, {}, "logs")).start()
    host = FunctionHost(spec.names, spec.environments, template.functions, log_sink=shipper,
                        hidden=frozenset(spec.hidden))
    pollers = []
    for queue in spec.queues:
        mapping = next(m for m in template.queue_mappings
                       if m.queue == queue.queue and m.function == queue.function)
        poller = QueuePoller(_client(spec, spec.environments.get(queue.function, {}), "sqs"),
                             host, mapping, queue.url, queue.arn, spec.region,
                             threads=queue.threads, wait_s=spec.wait_s)
        pollers.append(poller)
    for function in dict.fromkeys(queue.function for queue in spec.queues):
        try:  # the consumers' cold starts now, so that their modules are frozen with the rest
            host.load(function)
        except Exception as exc:  # as the parent's warm: the invocation reports it again
            log.error("%s failed to load: %r", function, exc)
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
    shipper.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run_worker(int(sys.argv[1]) if len(sys.argv) > 1 else 0))

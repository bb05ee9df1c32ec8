"""A `pilot run --workers N` process asked to stop (SIGTERM, as `pilot run` does on
Ctrl-C) ends cleanly: exit status 0 and nothing on stderr. Its parent-watch thread
blocked in a read of stdin used to hold the buffered reader's lock, so the interpreter's
shutdown aborted with "Fatal Python error: _enter_buffered_busy", printed twice on every
Ctrl-C of `pilot run`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from pilot_dev.runtime.worker_processes import WorkerSpec

ROOT = Path(__file__).resolve().parents[2]


def _catches_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_a_worker_process_asked_to_stop_exits_cleanly() -> None:
    spec = WorkerSpec(template=str(ROOT / "template.yaml"), names={}, environments={},
                      hidden=[], region="us-east-1", endpoint_url="http://127.0.0.1:9",
                      wait_s=1, queues=[])
    metrics_read, metrics_write = os.pipe()  # its metric samples' pipe, as pilot run gives
    worker = subprocess.Popen(
        [sys.executable, "-m", "pilot_dev.runtime.worker_processes", "0", str(metrics_write)],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(metrics_write,))
    os.close(metrics_write)
    assert worker.stdin is not None
    try:
        worker.stdin.write(json.dumps(asdict(spec)).encode() + b"\n")
        worker.stdin.flush()  # kept open: its end is the parent's death
        deadline = time.monotonic() + 60
        while not _catches_sigterm(worker.pid):  # ready: its stop handler is installed
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker never became ready"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)  # stdin still open: the parent is alive, as in pilot run
        stderr = worker.stderr.read() if worker.stderr else b""
    finally:
        worker.stdin.close()
        os.close(metrics_read)
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert b"Fatal Python error" not in stderr, stderr.decode(errors="replace")
    assert worker.returncode == 0

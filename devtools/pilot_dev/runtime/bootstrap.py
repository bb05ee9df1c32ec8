"""A small stand-in for Lambda's Python runtime, for `pilot run --from-build`.

The parent (process_invoker.py) starts one of these per function instance:

    python3.13 -I -S bootstrap.py MODULE.ATTR CODE_DIR LAYER_DIR...

-I -S: nothing of this machine's site-packages, PYTHONPATH or current folder is importable;
only the function's built code folder (Lambda's /var/task) and its layers' python/
folders (/opt/python) are. This file imports the standard library only, so it needs
nothing of the project either.

Protocol, one JSON object per line: the parent writes {"event", "context"} to stdin; the
bootstrap answers on its original stdout with {"type": "ready" | "init_error" |
"result" | "error", ...}, each carrying the log lines the function wrote meanwhile.
The function's own stdout and stderr (what Lambda sends to CloudWatch) are collected
into those lines; raw writes to file descriptor 1 go to stderr, never into the protocol.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import threading
import time
import traceback
from typing import Any


class _Lines(io.TextIOBase):
    """sys.stdout and sys.stderr of the function: whole lines, kept per invocation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._partial = ""
        self._lines: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *complete, self._partial = (self._partial + text).split("\n")
            self._lines.extend(complete)
        return len(text)

    def take(self) -> list[str]:
        with self._lock:
            if self._partial:
                self._lines.append(self._partial)
                self._partial = ""
            lines, self._lines = self._lines, []
        return lines


class _Context:
    """The attributes of Lambda's context object that Powertools and Mangum read."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.function_name = fields["function_name"]
        self.function_version = fields.get("function_version", "$LATEST")
        self.invoked_function_arn = fields["invoked_function_arn"]
        self.memory_limit_in_mb = fields["memory_limit_in_mb"]
        self.aws_request_id = fields["aws_request_id"]
        self.log_group_name = fields["log_group_name"]
        self.log_stream_name = fields.get("log_stream_name", "")
        self._deadline_ms = fields["deadline_ms"]  # epoch milliseconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    # the shape of Lambda's error response
    return {"errorType": type(exc).__name__, "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)}


def main() -> int:
    handler_spec, paths = sys.argv[1], sys.argv[2:]
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    output = _Lines()
    sys.stdout = sys.stderr = output

    def send(message: dict[str, Any]) -> None:
        message["logs"] = output.take()
        try:
            text = json.dumps(message)
        except (TypeError, ValueError) as exc:  # Lambda's Runtime.MarshalError
            text = json.dumps({"type": "error", "logs": message["logs"], "error": {
                "errorType": "Runtime.MarshalError", "errorMessage": str(exc)}})
        channel.write(text + "\n")
        channel.flush()

    sys.path[:0] = paths
    module_name, _, attr = handler_spec.rpartition(".")
    started = time.perf_counter()
    try:
        handler = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:
        send({"type": "init_error", "error": _error(exc)})
        return 1
    send({"type": "ready", "init_ms": round((time.perf_counter() - started) * 1000, 1),
          "python": sys.version.split()[0]})
    for line in sys.__stdin__ or ():
        request = json.loads(line)
        try:
            result = handler(request["event"], _Context(request["context"]))
        except Exception as exc:
            send({"type": "error", "error": _error(exc)})
        else:
            send({"type": "result", "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())

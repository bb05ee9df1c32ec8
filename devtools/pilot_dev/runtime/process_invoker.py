"""`pilot run --from-build DIR`: every function runs from what `sam build` made, in
Python processes of its own, as Lambda runs it.

Each instance is `python3.13 -I -S bootstrap.py` with only the function's built code and
its layers' python/ folders on sys.path (nothing of the project tree, nothing of this
machine's site-packages) and only the function's environment: the template's variables
as the stack resolved them plus what Lambda's runtime sets. An instance serves one
invocation at a time; a function gets more instances while all of its are busy (up to
MAX_INSTANCES), like Lambda's concurrency. A timed-out instance is killed, as Lambda
ends a sandbox whose invocation ran over.

The DIR must hold artifacts this host can execute: `make build ARCH=x86_64` on x86_64
(.aws-sam/build-x86_64). Same interface as invoker.FunctionHost.
"""

from __future__ import annotations

import json
import os
import platform
import selectors
import subprocess
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

from pilot_dev.runtime.invoker import LambdaContext, LogSink, _platform_lines
from pilot_dev.runtime.template import ACCOUNT_ID, FunctionSpec, TemplateError, load_template

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
MAX_INSTANCES = 4
# What Lambda's runtime passes on from its own environment besides the function's.
PASSED_ON = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
             "AWS_DEFAULT_REGION")


class FunctionError(RuntimeError):
    """The function raised, failed to initialise, timed out or its process died."""

    def __init__(self, logical_id: str, error: dict[str, Any]) -> None:
        self.error = error
        super().__init__(f"{logical_id}: {error.get('errorType')}: {error.get('errorMessage')}")


def artifact_paths(build_dir: Path) -> dict[str, list[Path]]:
    """Each function's sys.path in the build: its code folder, then its layers' python/
    folders in the template's order (the built template names the built folders)."""
    template = load_template(build_dir / "template.yaml")
    globals_fn = (template.raw.get("Globals") or {}).get("Function") or {}
    layers = {logical_id: build_dir / str(resource["Properties"]["ContentUri"]) / "python"
              for logical_id, resource in template.resources_of_type(
                  "AWS::Serverless::LayerVersion").items()}

    def refs(value: Any) -> list[str]:
        return [str(item["Ref"]) for item in value or [] if isinstance(item, dict)]

    paths = {}
    for logical_id, spec in template.functions.items():
        names = refs(spec.properties.get("Layers")) or refs(globals_fn.get("Layers"))
        paths[logical_id] = [build_dir / spec.code_uri, *(layers[n] for n in names
                                                          if n in layers)]
    return paths


def _check_runnable(build_dir: Path) -> None:
    """Refuse artifacts this machine cannot execute, with the fix, before any import
    fails on a foreign .so."""
    manifest = build_dir / "pilot-build.json"  # written by scripts/build.sh
    if not manifest.is_file():
        return
    built = json.loads(manifest.read_text()).get("architecture")
    here = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    if built != here:
        raise TemplateError(f"{build_dir} holds {built} artifacts, which this {here} machine "
                            f"cannot run: `make build ARCH={here}` builds a variant from the "
                            f"same lock (.aws-sam/build-{here}), then use --from-build with it")


def python313() -> str:
    script = Path(__file__).resolve().parents[3] / "scripts" / "py313.sh"
    found = subprocess.run([str(script)], capture_output=True, text=True)
    if found.returncode != 0:
        raise TemplateError(found.stderr.strip() or "Python 3.13 not found")
    return found.stdout.strip()


@dataclass
class _Instance:
    process: subprocess.Popen[str]
    stdin: IO[str]
    stdout: IO[str]
    started: float = field(default_factory=time.monotonic)
    init_ms: float | None = None  # reported once, on the first invocation's REPORT line

    def read(self, timeout_s: float) -> dict[str, Any] | None:
        """The next protocol line, or None on timeout or a dead process."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                return None
        line = self.stdout.readline()
        return json.loads(line) if line else None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.stdin.close()
        self.stdout.close()


class ProcessFunctionHost:
    def __init__(self, build_dir: Path, names: dict[str, str],
                 environments: dict[str, dict[str, str]], specs: dict[str, FunctionSpec],
                 log_sink: LogSink | None = None, python: str | None = None,
                 max_instances: int = MAX_INSTANCES) -> None:
        self.build_dir = build_dir.resolve()
        if not (self.build_dir / "template.yaml").is_file():
            raise TemplateError(f"{build_dir} holds no built template.yaml: run "
                                f"`make build ARCH=x86_64` first")
        _check_runnable(self.build_dir)
        self.paths = artifact_paths(self.build_dir)
        missing = sorted(set(specs) - set(self.paths))
        if missing:
            raise TemplateError(f"{build_dir} was built from another template: no {missing}")
        self.names = names
        self.environments = environments
        self.specs = specs
        self.log_sink = log_sink
        self.python = python or python313()
        self.max_instances = max_instances
        self._idle: dict[str, list[_Instance]] = {name: [] for name in specs}
        self._count: dict[str, int] = dict.fromkeys(specs, 0)
        self._changed = threading.Condition()
        self._stopped = False

    # ------------------------------------------------------------ instances

    def environment(self, logical_id: str) -> dict[str, str]:
        """The function's variables (the template's, resolved by the stack) and Lambda's."""
        spec = self.specs[logical_id]
        name = self.names[logical_id]
        code = self.paths[logical_id][0]
        env = {key: os.environ[key] for key in PASSED_ON if key in os.environ}
        env.update({
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(code), "_HANDLER": spec.handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "PYTHONDONTWRITEBYTECODE": "1",  # Lambda's code folders are read-only
        })
        env.update(self.environments[logical_id])
        env["AWS_LAMBDA_FUNCTION_NAME"] = name
        return env

    def _start(self, logical_id: str) -> _Instance:
        spec = self.specs[logical_id]
        process = subprocess.Popen(
            [self.python, "-I", "-S", str(BOOTSTRAP), spec.handler,
             *map(str, self.paths[logical_id])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
            env=self.environment(logical_id), cwd=self.paths[logical_id][0],
        )
        assert process.stdin is not None and process.stdout is not None
        instance = _Instance(process, process.stdin, process.stdout)
        # Lambda allows 10 s of init; a loaded machine gets more here
        ready = instance.read(max(30.0, spec.timeout))
        group = f"/aws/lambda/{self.names[logical_id]}"
        if ready is not None and self.log_sink is not None and ready.get("logs"):
            self.log_sink(group, list(ready["logs"]))
        if ready is not None and ready.get("type") == "ready":
            instance.init_ms = float(ready.get("init_ms") or 0)
        else:
            instance.kill()
            error = (ready or {}).get("error") or {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"exited with {process.returncode} before it was ready"}
            raise FunctionError(logical_id, error)
        return instance

    def _acquire(self, logical_id: str) -> _Instance:
        with self._changed:
            while True:
                if self._stopped:
                    raise FunctionError(logical_id, {"errorType": "Runtime.Stopped",
                                                     "errorMessage": "the stack is stopping"})
                if self._idle[logical_id]:
                    return self._idle[logical_id].pop()
                if self._count[logical_id] < self.max_instances:
                    self._count[logical_id] += 1
                    break
                self._changed.wait()
        try:
            return self._start(logical_id)
        except BaseException:
            self._release(logical_id, None)
            raise

    def _release(self, logical_id: str, instance: _Instance | None) -> None:
        with self._changed:
            if instance is None or self._stopped:
                self._count[logical_id] -= 1
                if instance is not None:
                    instance.kill()
            else:
                self._idle[logical_id].append(instance)
            self._changed.notify_all()

    # ------------------------------------------------------------ FunctionHost's interface

    def load(self, logical_id: str) -> None:
        """One warm instance of the function (its cold start), if it has none."""
        self._release(logical_id, self._acquire(logical_id))

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        spec = self.specs[logical_id]
        name = self.names[logical_id]
        instance = self._acquire(logical_id)
        context = LambdaContext(
            function_name=name, memory_limit_in_mb=spec.memory, timeout_s=spec.timeout,
            log_group_name=f"/aws/lambda/{name}",
            invoked_function_arn=f"arn:aws:lambda:local:{ACCOUNT_ID}:function:{name}",
        )
        started = time.perf_counter()
        reply: dict[str, Any] | None = None
        try:
            instance.stdin.write(json.dumps({"event": event, "context": {
                "function_name": context.function_name,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "aws_request_id": context.aws_request_id,
                "invoked_function_arn": context.invoked_function_arn,
                "log_group_name": context.log_group_name,
                "deadline_ms": int((time.time() + spec.timeout) * 1000),
            }}) + "\n")
            instance.stdin.flush()
            reply = instance.read(spec.timeout)
        except (BrokenPipeError, ValueError):
            reply = None
        finally:
            alive = reply is not None and instance.process.poll() is None
            self._release(logical_id, instance if alive else None)
            if not alive:
                instance.kill()
            if self.log_sink is not None:
                lines = list((reply or {}).get("logs") or [])
                if reply is None:
                    lines.append(f"{context.aws_request_id} Task timed out after "
                                 f"{spec.timeout} seconds, or its process ended")
                init_ms, instance.init_ms = instance.init_ms, None
                self.log_sink(context.log_group_name, partial(
                    _report_lines, context, lines, time.perf_counter() - started, init_ms))
        if reply is None:
            raise FunctionError(logical_id, {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"no answer within {spec.timeout} s (or the process ended)"})
        if reply.get("type") != "result":
            raise FunctionError(logical_id, reply.get("error") or {})
        return reply["result"]

    def pids(self, logical_id: str) -> list[int]:
        """Process ids of the function's idle instances (tests look at what they loaded)."""
        with self._changed:
            return [i.process.pid for i in self._idle[logical_id]]

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            idle = [i for instances in self._idle.values() for i in instances]
            for instances in self._idle.values():
                instances.clear()
            self._changed.notify_all()
        for instance in idle:
            instance.kill()


def _report_lines(context: LambdaContext, lines: list[str], seconds: float,
                  init_ms: float | None) -> list[str]:
    """Lambda's lines, with "Init Duration" on a cold start's REPORT line, as Lambda has it."""
    rendered = _platform_lines(context, lines, seconds)
    if init_ms is not None:
        rendered[-1] += f"\tInit Duration: {init_ms:.2f} ms"
    return rendered

"""Loads each function's real handler module and invokes it as Lambda would:
with a context object, its environment, and its log lines captured for CloudWatch."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import sys
import threading
import time
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any, Protocol, cast

from amazon_pilot.platform.observability import capture_logs
from amazon_pilot.platform.settings import environment_view
from pilot_dev.runtime.template import ACCOUNT_ID, FunctionSpec, TemplateError

# A log group's new lines, or what renders them: the shipper's thread renders them, off
# the request's path.
Lines = list[str] | Callable[[], list[str]]
LogSink = Callable[[str, Lines], None]

_env_lock = threading.RLock()
_thread_loops = threading.local()


def _request_id() -> str:
    # a random (version 4) UUID, as Lambda's request ids are; formatted from hex
    # because uuid.uuid4() costs several times more
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


@dataclass
class LambdaContext:
    """The attributes Powertools and Mangum read from Lambda's context object."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: _request_id())
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    invoked_function_arn: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class LoadedFunction:
    spec: FunctionSpec
    name: str  # physical function name
    environment: dict[str, str]
    handler: Callable[[dict[str, Any], Any], Any]
    module: ModuleType
    view: Mapping[str, str]  # what settings() reads while this function runs

    def __post_init__(self) -> None:
        self.log_group = f"/aws/lambda/{self.name}"
        self.arn = f"arn:aws:lambda:local:{ACCOUNT_ID}:function:{self.name}"


# What a function never inherits from the runtime's own process: Lambda gives a
# function its role's credentials and nothing the template does not set. Plaintext
# settings the production configuration reads from secrets stay with the operator.
CREDENTIALS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                         "AWS_PROFILE"})


class _Without(Mapping[str, str]):
    """A live view of a mapping (the process environment) without some keys."""

    def __init__(self, base: Mapping[str, str], hidden: frozenset[str]) -> None:
        self.base = base
        self.hidden = hidden

    def __getitem__(self, key: str) -> str:
        if key in self.hidden:
            raise KeyError(key)
        return self.base[key]

    def __iter__(self) -> Iterator[str]:
        return (k for k in self.base if k not in self.hidden)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def process_environment() -> dict[str, str]:
    """This process's environment for a child process: never taken while a function's
    cold start has its own variables in it (`pilot run` serves, and so loads functions,
    while it starts its worker and HTTP processes)."""
    with _env_lock:
        return dict(os.environ)


@contextmanager
def _patched_env(extra: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _ensure_event_loop() -> None:
    # Mangum asks asyncio for the current loop; worker threads have none by default.
    if getattr(_thread_loops, "loop", None) is None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        _thread_loops.loop = loop


def release_thread_loop() -> None:
    """Close the event loop this thread made for Mangum (a thread that is about to end)."""
    loop = getattr(_thread_loops, "loop", None)
    if loop is not None:
        _thread_loops.loop = None
        asyncio.set_event_loop(None)
        loop.close()


class Invoker(Protocol):
    """What the gateway, the pollers and the schedule clock call: FunctionHost (in this
    process) or process_invoker.ProcessFunctionHost (`pilot run --from-build`)."""

    def load(self, logical_id: str) -> object: ...

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any: ...


class FunctionHost:
    """Holds the loaded functions of one stack; loads each on first use (cold start)."""

    def __init__(self, names: dict[str, str], environments: dict[str, dict[str, str]],
                 specs: dict[str, FunctionSpec], log_sink: LogSink | None = None,
                 hidden: frozenset[str] = frozenset()) -> None:
        self.names = names
        self.hidden = hidden  # process variables no function sees
        self.environments = environments
        self.specs = specs
        self.log_sink = log_sink
        self._loaded: dict[str, LoadedFunction] = {}
        self._load_lock = threading.Lock()

    def load(self, logical_id: str) -> LoadedFunction:
        loaded = self._loaded.get(logical_id)
        if loaded is not None:
            return loaded
        with self._load_lock:
            loaded = self._loaded.get(logical_id)
            if loaded is None:
                loaded = self._import(logical_id)
                self._loaded[logical_id] = loaded
        return loaded

    def _import(self, logical_id: str) -> LoadedFunction:
        spec = self.specs[logical_id]
        path = spec.handler_file
        if not path.is_file():
            raise TemplateError(f"{logical_id}: handler file {path} does not exist")
        module_name = f"pilot_fn_{logical_id}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise TemplateError(f"{logical_id}: cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        env = self.environments[logical_id]
        # As in Lambda, each function sees its own variables over the stack-wide ones:
        # the project's code reads them through settings(), which reads this view
        # whenever the function runs. Third-party libraries that read os.environ at
        # import (Powertools) also see them while the module initialises.
        view = ChainMap(env, cast(dict[str, str], _Without(os.environ, self.hidden)))
        # credentials stay out of the shared process environment even for a moment
        visible = {k: v for k, v in env.items() if k not in CREDENTIALS}
        with _env_lock, _patched_env(visible), environment_view(view):
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
        handler = getattr(module, spec.handler_attr, None)
        if not callable(handler):
            raise TemplateError(f"{logical_id}: {path} has no callable {spec.handler_attr!r}")
        return LoadedFunction(spec, self.names[logical_id], env, handler, module, view)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        function = self.load(logical_id)
        _ensure_event_loop()
        context = LambdaContext(
            function_name=function.name,
            memory_limit_in_mb=function.spec.memory,
            timeout_s=function.spec.timeout,
            log_group_name=function.log_group,
            invoked_function_arn=function.arn,
            _deadline=time.monotonic() + function.spec.timeout,
        )
        started = time.perf_counter()
        with capture_logs() as lines, environment_view(function.view):
            try:
                return function.handler(event, context)
            finally:
                if self.log_sink is not None:
                    self.log_sink(context.log_group_name, partial(
                        _platform_lines, context, lines, time.perf_counter() - started))


def _platform_lines(context: LambdaContext, lines: list[str], seconds: float) -> list[str]:
    """The function's own lines, then the REPORT line Lambda writes after every
    invocation (its START and END lines carry nothing more, so they are left out)."""
    ms = seconds * 1000
    return [
        *lines,
        f"REPORT RequestId: {context.aws_request_id}\tDuration: {ms:.2f} ms"
        f"\tBilled Duration: {math.ceil(ms)} ms\tMemory Size: {context.memory_limit_in_mb} MB",
    ]

"""Keep the embedded SQS endpoint's cost per call flat in the queue's depth.

Measured on moto 5.2 (bench/bench_refresh.py): a SendMessageBatch of 10 took 0.2 s with
300 messages queued and 1.1 s with 1,000, so a daily refresh's planning grew worse
than linearly. Two causes, both in moto's SQS model, neither in what it answers:

- every `send_message` reads `queue.attributes.get("ContentBasedDeduplication")`, and
  `attributes` builds the whole attribute map, including the three
  ApproximateNumberOfMessages* counts, each a scan of every message in the queue;
- each message's `visible` / `delayed` asks `unix_time_millis()`, which goes through
  two naive datetimes (≈35 µs a message on this machine), so every scan is slow.

And one per request, whatever the service: moto's dispatcher asks
`backends.list_of_moto_modules()` for every request's host, which lists moto's package
folder and stats each of its ~150 entries (≈ 5 % of the runtime's CPU during a refresh,
py-spy). The folder does not change while the process runs: `install()` lists it once.

`install()` changes no answer: during a send the attribute map leaves out the
three counts (nothing on that path reads them; GetQueueAttributes still gets them),
and `visible` / `delayed` compare against the same wall clock read with `time.time()`.
Installed once per process by the local runtime before its endpoint starts.
"""

from __future__ import annotations

import threading
import time
from typing import Any

_COUNTS = frozenset({"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                     "ApproximateNumberOfMessagesDelayed"})
_sending = threading.local()
_installed = False


def _now_ms() -> float:
    return time.time() * 1000.0


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.sqs import models

    queue_cls: Any = models.Queue
    message_cls: Any = models.Message
    backend_cls: Any = models.SQSBackend
    base_attributes = tuple(queue_cls.BASE_ATTRIBUTES)
    full_attributes = queue_cls.attributes.fget

    def attributes(self: Any) -> dict[str, Any]:
        if not getattr(_sending, "active", False):
            return dict(full_attributes(self))
        cheap = [a for a in base_attributes if a not in _COUNTS]
        self.BASE_ATTRIBUTES = cheap  # an instance attribute, for this call only
        try:
            return dict(full_attributes(self))
        finally:
            del self.BASE_ATTRIBUTES

    original_send = backend_cls.send_message

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = getattr(_sending, "active", False)
        _sending.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _sending.active = before

    original_validate = backend_cls._validate_message

    def validate_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = getattr(_sending, "active", False)
        _sending.active = True
        try:
            return original_validate(self, *args, **kwargs)
        finally:
            _sending.active = before

    def visible(self: Any) -> bool:
        return bool(_now_ms() > self.visible_at)

    def delayed(self: Any) -> bool:
        return bool(_now_ms() < self.delayed_until)

    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules

    queue_cls.attributes = property(attributes)
    backend_cls.send_message = send_message
    backend_cls._validate_message = validate_message
    message_cls.visible = property(visible)
    message_cls.delayed = property(delayed)
    _installed = True

"""Stop the embedded AWS endpoint from keeping every object it ever made.

moto's `BaseModel.__new__` appends each new model instance (every SQS message, every
log event, every metric datum) to a per-class list, `instances_tracked`, so that its
web dashboard can list them; nothing else reads it, and nothing removes from it. In a
long-running `pilot run` that list held every message of every refresh and every
access-log line: measured, 16,000 health requests left 32,000 log events alive after
their stream no longer held them, the heap grew ≈ 35 MB per 6 s of load, and each full
garbage collection walked all of it, pausing every request (the p99 went from 31 to
131 ms over five rounds of the same load).

`install()` makes new instances untracked; answers are unchanged (the dashboard, which
the runtime does not serve, is the only reader). Installed by the local runtime before
its endpoint starts.
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.core.common_models import BaseModel

    def new_untracked(cls: type, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    BaseModel.__new__ = new_untracked  # type: ignore[method-assign]
    _installed = True

"""Small helpers the chaos cases share: fresh ASINs, waiting on a condition, counting."""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def started(state_file: Path, pid: int) -> bool:
    """Whether `pilot run` (process `pid`) finished starting: it writes its state file
    once every part is up. The API answers earlier, before the worker and HTTP
    processes, the schedules and the alarms start."""
    try:
        return bool(json.loads(state_file.read_text()).get("pid") == pid)
    except (OSError, ValueError):  # not written yet (or being written)
        return False


def fresh_asins(n: int, rng: random.Random | None = None) -> list[str]:
    rng = rng or random.Random()
    alphabet = string.ascii_uppercase + string.digits
    return ["B0" + "".join(rng.choice(alphabet) for _ in range(8)) for _ in range(n)]


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.5) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` and its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not reached in {timeout:.0f} s (last: {last!r})")

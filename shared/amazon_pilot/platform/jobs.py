"""Which code runs each job type. Modules are imported on first use so a consumer's
cold start pays only for the jobs it actually receives."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

JobFunction = Callable[[dict[str, Any], str], dict[str, Any] | None]

# job type -> "module:function". A job function takes (payload, idempotency key) and
# returns a small JSON-able result (stored with the processed key) or None.
JOBS: dict[str, str] = {
    "noop": "amazon_pilot.platform.builtin_jobs:noop",
    "fail": "amazon_pilot.platform.builtin_jobs:fail",
    "record": "amazon_pilot.platform.builtin_jobs:record",
    "maintain_partitions": "amazon_pilot.platform.builtin_jobs:maintain_partitions",
    "deliver_notification": "amazon_pilot.workers.notifications:deliver_notification",
    "send_digest": "amazon_pilot.workers.notifications:send_digest",
    "sweep_notifications": "amazon_pilot.workers.notifications:sweep_notifications",
    "fetch_products": "amazon_pilot.workers.tracking:fetch_products",
    "generate_report": "amazon_pilot.workers.reports:generate_report",
    "generate_suggestions": "amazon_pilot.workers.optimization:generate_suggestions",
}


class UnknownJob(LookupError):
    pass


def resolve(job_type: str) -> JobFunction:
    target = JOBS.get(job_type)
    if target is None:
        raise UnknownJob(f"unknown job type {job_type!r}")
    module_name, _, attr = target.partition(":")
    function: JobFunction = getattr(importlib.import_module(module_name), attr)
    return function

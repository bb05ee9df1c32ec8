"""Which code runs each job type, and what a job is handed.

Modules are imported on first use so a consumer's cold start pays only for the jobs it
actually receives. A job function takes the message's payload (a dict, which the job
parses into its own payload model with `parse_payload`) and the `Delivery` it came in,
and returns a small JSON-able result (stored with the processed key) or None.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from amazon_pilot.platform.job_errors import PermanentJobError


@dataclass(frozen=True)
class Delivery:
    """One delivery of a queued message."""

    key: str  # the job's idempotency key
    receive_count: int  # 1 on the first delivery
    max_receives: int  # the queue's maxReceiveCount (its RedrivePolicy in template.yaml)

    @property
    def is_last(self) -> bool:
        """After this delivery fails, the redrive policy moves the message to the DLQ."""
        return self.receive_count >= self.max_receives


JobFunction = Callable[[dict[str, Any], Delivery], dict[str, Any] | None]

# job type -> "module:function"
JOBS: dict[str, str] = {
    "noop": "amazon_pilot.platform.builtin_jobs:noop",
    "fail": "amazon_pilot.platform.builtin_jobs:fail",
    "record": "amazon_pilot.platform.builtin_jobs:record",
    "maintain_partitions": "amazon_pilot.platform.builtin_jobs:maintain_partitions",
    "deliver_notification": "amazon_pilot.notifications.jobs:deliver_notification",
    "send_digest": "amazon_pilot.notifications.jobs:send_digest",
    "sweep_notifications": "amazon_pilot.notifications.jobs:sweep_notifications",
    "fetch_products": "amazon_pilot.tracking.jobs:fetch_products",
    "generate_report": "amazon_pilot.competitors.jobs:generate_report",
    "generate_suggestions": "amazon_pilot.optimization.jobs:generate_suggestions",
    "record_experiment_verdicts": "amazon_pilot.optimization.jobs:record_experiment_verdicts",
    "fetch_search_pages": "amazon_pilot.market.jobs:fetch_search_pages",
}


# job type -> the queues its senders put it on. A consumer runs only the jobs of its
# own queue, so each worker's role needs only what those jobs call (docs/iam.md,
# tests/unit/test_grants.py); a job found on another queue is dead-lettered.
ANY_QUEUE = ("critical", "default", "low")
QUEUES: dict[str, tuple[str, ...]] = {
    "noop": ANY_QUEUE,
    "fail": ANY_QUEUE,
    "record": ANY_QUEUE,
    "maintain_partitions": ("low",),
    "deliver_notification": ("critical",),
    "send_digest": ("low",),
    "sweep_notifications": ("default",),
    "fetch_products": ("critical", "default"),  # refresh now / the daily batches
    "generate_report": ("low",),
    "generate_suggestions": ("low",),
    "record_experiment_verdicts": ("low",),
    "fetch_search_pages": ("critical", "default"),  # a term just added / the daily plan
}


class UnknownJob(LookupError):
    pass


class WrongQueue(LookupError):
    """A known job on a queue whose consumer does not run it (its role may lack the
    grants the job needs)."""


def check_queue(job_type: str, priority: str) -> None:
    if priority not in QUEUES.get(job_type, ()):
        raise WrongQueue(f"{job_type} is not run from the {priority} queue "
                         f"(it belongs on: {', '.join(QUEUES.get(job_type, ())) or 'none'})")


def resolve(job_type: str) -> JobFunction:
    target = JOBS.get(job_type)
    if target is None:
        raise UnknownJob(f"unknown job type {job_type!r}")
    module_name, _, attr = target.partition(":")
    function: JobFunction = getattr(importlib.import_module(module_name), attr)
    return function


def load_all() -> None:
    """Import every job's module now. Lambda imports a job's module with its first message;
    a long-lived host (the local runtime's worker processes) loads them before freezing
    its start-up heap, so a worker's memory does not depend on which jobs it has run."""
    for job_type in JOBS:
        resolve(job_type)


Payload = TypeVar("Payload", bound=BaseModel)


def parse_payload(model: type[Payload], payload: dict[str, Any]) -> Payload:
    """The payload as the job's model; a payload that does not fit can never succeed,
    so it goes to the DLQ at once with the first problem as its reason."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise PermanentJobError(f"bad payload: {where}: {first['msg']}") from None

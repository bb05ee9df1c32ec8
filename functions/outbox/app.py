"""Lambda entry point of the outbox relay and the reconciler: EventBridge schedules pass
{"job": "relay_outbox"} or {"job": "reconcile"} (platform/outbox.py, platform/reconcile.py)."""

from typing import Any

from amazon_pilot.platform.observability import lambda_entry, make_logger, make_metrics, make_tracer
from amazon_pilot.platform.scheduler import run_scheduled

logger = make_logger("outbox")
metrics = make_metrics("outbox")
tracer = make_tracer("outbox")

JOBS = ("relay_outbox", "reconcile")


@lambda_entry(logger, metrics, tracer)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = str(event.get("job", ""))
    if job not in JOBS:
        raise ValueError(f"the outbox function runs {', '.join(JOBS)}, not {job!r}")
    result = run_scheduled(job, event)
    logger.info("outbox job done", extra=result)
    return result

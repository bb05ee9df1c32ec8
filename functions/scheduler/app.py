"""Lambda entry point of the scheduler: EventBridge schedules pass {"job": ...}."""

from typing import Any

from amazon_pilot.platform.observability import lambda_entry, make_logger, make_metrics, make_tracer
from amazon_pilot.platform.scheduler import run_scheduled

logger = make_logger("scheduler")
metrics = make_metrics("scheduler")
tracer = make_tracer("scheduler")


@lambda_entry(logger, metrics, tracer)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = str(event.get("job", ""))
    result = run_scheduled(job, event)
    logger.info("scheduled job started", extra=result)
    return result

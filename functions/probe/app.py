"""Lambda entry point of the synthetic check: a schedule invokes it every few minutes
(template.yaml ProbeSchedule); it signs in through the public URL as the probe user
and reads a product (platform/probe.py)."""

from typing import Any

from amazon_pilot.platform.observability import lambda_entry, make_logger, make_metrics, make_tracer
from amazon_pilot.platform.probe import run_probe

logger = make_logger("probe")
metrics = make_metrics("probe")
tracer = make_tracer("probe")


@lambda_entry(logger, metrics, tracer)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = run_probe()
    logger.info("probe run", extra={"probe": result})
    return result

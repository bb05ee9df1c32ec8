"""What each EventBridge schedule starts. The schedule's Input names the job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from amazon_pilot.platform import outbox
from amazon_pilot.platform.db import transaction

# schedule job -> (queue priority, job type) for jobs that are simply queued.
QUEUED_JOBS: dict[str, tuple[str, str]] = {
    "maintain_partitions": ("low", "maintain_partitions"),
}
# schedule job -> "module:function" for jobs that plan work themselves.
PLANNERS: dict[str, str] = {
    "daily_digest": "amazon_pilot.notifications.jobs:plan_digests",
    "daily_refresh": "amazon_pilot.tracking.jobs:plan_daily_refresh",
    "experiment_verdicts": "amazon_pilot.optimization.jobs:plan_experiment_verdicts",
    "keyword_ranks": "amazon_pilot.market.jobs:plan_keyword_ranks",
    "reconcile": "amazon_pilot.platform.reconcile:scheduled_reconcile",
    "relay_outbox": "amazon_pilot.platform.outbox:scheduled_relay",
    "weekly_reports": "amazon_pilot.competitors.jobs:plan_weekly_reports",
}


class UnknownScheduledJob(ValueError):
    pass


def run_scheduled(job: str, event: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    if job in QUEUED_JOBS:
        priority, job_type = QUEUED_JOBS[job]
        key = f"{job}:{now:%Y-%m-%d}"
        with transaction() as conn:
            outbox.enqueue(conn, priority, job_type, event.get("payload", {}), key)
        return {"job": job, "queued_on": priority, "key": key}
    if job in PLANNERS:
        import importlib

        module_name, _, attr = PLANNERS[job].partition(":")
        planner = getattr(importlib.import_module(module_name), attr)
        return dict(planner(event, now))
    raise UnknownScheduledJob(f"unknown scheduled job {job!r}")

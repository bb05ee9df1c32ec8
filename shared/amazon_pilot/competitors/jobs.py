"""Queue jobs and schedule planners of competitor groups (docs/competitors.md).

- ``generate_report``: the ``generate_report`` job (low queue), idempotent per report id.
- ``plan_weekly_reports``: the ``weekly_reports`` schedule: one report per active group.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from amazon_pilot.competitors import store as db
from amazon_pilot.competitors.service import WEEKLY_WINDOW_DAYS, report_job, run_report
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.jobs import Delivery


def generate_report(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """The ``generate_report`` job."""
    from amazon_pilot.platform.job_errors import uuid_field

    return run_report(uuid_field(payload, "report_id"))


# ---------------------------------------------------------------- weekly plan


def plan_weekly_reports(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One report per active group per ISO week (a second run of the plan adds nothing)."""
    from amazon_pilot.adapters.queues import enqueue_many

    year, week, _ = now.isocalendar()
    period = str(event.get("period") or f"{year}-W{week:02d}")
    window = int(event.get("window_days") or WEEKLY_WINDOW_DAYS)
    started = time.monotonic()
    with transaction() as conn:
        ids = db.queue_weekly_reports(conn, period, window)
    sent = enqueue_many("low", (report_job(i) for i in ids))
    return {"job": "weekly_reports", "period": period, "reports": sent,
            "ms": int((time.monotonic() - started) * 1000)}

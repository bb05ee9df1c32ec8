"""Queue jobs and schedule planners of competitor groups (docs/competitors.md).

- ``generate_report``: the ``generate_report`` job (low queue), idempotent per report id.
- ``plan_weekly_reports``: the ``weekly_reports`` schedule: one report per active group.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from amazon_pilot.competitors import service
from amazon_pilot.platform.jobs import Delivery, parse_payload
from amazon_pilot.platform.models import Strict


class ReportPayload(Strict):
    report_id: UUID


class WeeklyReportsEvent(Strict):
    """The schedule's input ({"job": "weekly_reports"}); period and window for a rerun."""

    job: str | None = None
    period: str | None = Field(None, min_length=1, description="default: this ISO week")
    window_days: int | None = Field(None, ge=1)


def generate_report(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """The ``generate_report`` job: a report is ``failed`` after the queue's last receive."""
    job = parse_payload(ReportPayload, payload)
    return service.run_report(job.report_id, max_receives=delivery.max_receives)


def plan_weekly_reports(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One report per active group per ISO week (a second run of the plan adds nothing)."""
    plan = parse_payload(WeeklyReportsEvent, event)
    year, week, _ = now.isocalendar()
    period = plan.period or f"{year}-W{week:02d}"
    started = time.monotonic()
    sent = service.queue_weekly_reports(period, plan.window_days or service.WEEKLY_WINDOW_DAYS)
    return {"job": "weekly_reports", "period": period, "reports": sent,
            "ms": int((time.monotonic() - started) * 1000)}

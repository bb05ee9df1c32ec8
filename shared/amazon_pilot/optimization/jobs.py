"""Optimization's queue jobs (each parses its typed payload, then calls the service) and
its schedule planner."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from amazon_pilot.optimization import service
from amazon_pilot.platform.jobs import Delivery, parse_payload
from amazon_pilot.platform.models import Strict


class SuggestionRun(Strict):
    run_id: UUID


def generate_suggestions(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """Generate one suggestion run (low queue, key ``suggest:<run id>``); the run fails for
    good on the queue's last delivery."""
    job = parse_payload(SuggestionRun, payload)
    return service.run_suggestions(job.run_id, max_attempts=delivery.max_receives)


class ExperimentBatch(Strict):
    experiment_ids: list[UUID] = Field(min_length=1, max_length=service.VERDICT_BATCH)


def record_experiment_verdicts(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """Store the current verdict of a batch of running experiments (low queue)."""
    job = parse_payload(ExperimentBatch, payload)
    return service.record_verdicts(job.experiment_ids)


def plan_experiment_verdicts(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The ``experiment_verdicts`` schedule: one job per batch of running experiments."""
    return {"job": "experiment_verdicts", **service.plan_verdicts(now)}

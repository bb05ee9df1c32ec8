"""Optimization's queue jobs: each parses its typed payload, then calls the service."""

from __future__ import annotations

from typing import Any
from uuid import UUID

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

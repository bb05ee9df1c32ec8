"""The fetch job's payload: what production queues, and what the job refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from amazon_pilot.platform.job_errors import PermanentJobError
from amazon_pilot.platform.jobs import Delivery
from amazon_pilot.tracking.jobs import fetch_products
from amazon_pilot.tracking.schemas import FetchPayload
from amazon_pilot.tracking.service import fetch_job

AT = datetime(2026, 10, 1, 6, tzinfo=UTC)


def test_a_queued_fetch_carries_ids_trigger_time_and_attempt_only() -> None:
    job_type, payload, key = fetch_job([3, 1, 2], "schedule", AT)
    assert job_type == "fetch_products"
    assert set(payload) == {"product_ids", "trigger", "captured_at", "attempt"}
    parsed = FetchPayload.model_validate(payload)
    assert parsed.product_ids == [3, 1, 2] and parsed.trigger == "schedule"
    assert parsed.attempt == 1  # a planned fetch; product re-fetches count up
    assert parsed.captured_at == AT
    assert key == fetch_job([1, 2, 3], "schedule", AT)[2]  # the same batch, the same key


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"trigger": "add", "captured_at": AT.isoformat()}, "product_ids: Field required"),
        ({"product_ids": [1], "captured_at": "yesterday"}, "captured_at"),
        ({"product_ids": ["one"], "captured_at": AT.isoformat()}, "product_ids.0"),
        ({"product_ids": [1], "captured_at": AT.isoformat(), "sandbox_date": "2026-01-01"},
         "sandbox_date: Extra inputs are not permitted"),
    ],
)
def test_a_malformed_payload_is_refused_before_any_work(payload: dict[str, Any],
                                                         reason: str) -> None:
    with pytest.raises(PermanentJobError, match="bad payload") as refused:
        fetch_products(payload, Delivery("k", 1, 3))
    assert reason in str(refused.value)

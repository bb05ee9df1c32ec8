"""The product list encodes its items without the models (issue 18): a seller sees the
same latest values the detail's Latest model gives, whatever the stored values hold."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from amazon_pilot.tracking.schemas import Latest, latest_fields

STORED: list[dict[str, Any]] = [
    {},  # fetched, nothing known yet
    {"price": 10, "list_price": 12.5, "bsr_rank": 1500, "rating": 4, "review_count": 7},
    {"price": 19.99, "buy_box_price": None, "availability": "in_stock", "in_stock": True,
     "stock_count": 3, "currency": "USD", "bsr_category": "Kitchen", "subcategory_bsr": 12,
     "subcategory_ranks": [{"rank": 12, "category": "Knives", "url": "/x"},
                           {"rank": 40.0, "category": "Tools"}],
     "image_count": 7, "buy_box_seller": "Acme", "buy_box_seller_id": "A1"},
    {"price": "8.25", "bsr_rank": 3.0, "written_by_a_newer_actor": {"a": 1}},
]


@pytest.mark.parametrize("stored", STORED)
def test_latest_reads_as_the_model_gives_it(stored: dict[str, Any]) -> None:
    model = Latest(**stored)
    assert latest_fields(stored) == model.model_dump()
    # the same bytes on the wire: ints stored for float fields still read 10.0
    assert orjson.dumps(latest_fields(stored)) == model.model_dump_json().encode()

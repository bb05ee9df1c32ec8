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


# jsonb text as Postgres prints it: an integer past 64 bits (orjson would read a float),
# a number past a double's range (orjson refuses it), digits past a double's precision
JSONB_TEXTS = [
    '{"price": 10, "rating": 4.1, "title": "Knife 12345678901234567890"}',
    '{"review_count": 123456789012345678901234567890}',
    '{"price": 1' + "0" * 400 + '}',
    '{"price": 0.1000000000000000055511151231257827}',
    '{"price_drop_pct": 5, "events": ["price", "bsr"], "nested": {"a": [1, 2.5, null]}}',
    '{}',
]


@pytest.mark.parametrize("stored", JSONB_TEXTS)
def test_the_list_reads_stored_json_as_the_driver_does(stored: str) -> None:
    import json

    from amazon_pilot.tracking.store import _json

    read, expected = _json(stored), json.loads(stored)
    assert read == expected
    assert repr(read) == repr(expected)  # the same types too (an int stays an int)

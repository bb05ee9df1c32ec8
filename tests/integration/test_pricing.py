"""Currency truth and pricing from a product's own history, through the running stack:
a group across marketplaces is refused; a product with 40 days of (backfilled) history
gets a pricing assessment without a group; a mixed group made before the rule says it
cannot compare prices in different currencies."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from amazon_pilot.competitors import store as cdb
from amazon_pilot.platform.db import get_engine, transaction
from amazon_pilot.tracking.store import insert_tracked, upsert_product
from pilot_dev.standins.apify_catalog import demo_asins, item_for
from pilot_dev.timetravel import backfill
from tests.integration.sellers import auth, new_seller
from tests.integration.test_optimization import request_run

GROUPS = "/v1/competitor-groups"


def fresh(category: str, n: int, priced_on: date | None = None) -> list[str]:
    """n catalog ASINs the database has not seen; with ``priced_on``, the first one has a
    price on amazon.com that day (the catalog has stock-outs)."""
    with get_engine().connect() as conn:
        known = set(conn.execute(text("SELECT asin FROM products")).scalars())
    out = random.sample([a for a in demo_asins(category, 300) if a not in known], n + 20)
    if priced_on is not None:
        first = next(a for a in out if (item_for(a, "com", priced_on) or {}).get("price"))
        out = [first, *[a for a in out if a != first]]
    return out[:n]


def test_a_group_across_marketplaces_is_refused(api: httpx.Client) -> None:
    seller = new_seller(api)
    a = fresh("kitchen", 6)
    body = {"name": "Pans", "main": a[0],
            "competitors": [a[1], a[2], f"https://www.amazon.de/dp/{a[3]}", a[4]]}
    refused = api.post(GROUPS, json=body, headers=auth(seller))
    assert refused.status_code == 422, refused.text
    err = refused.json()["error"]
    assert err["code"] == "VALIDATION_ERROR"
    detail = err["details"][0]
    assert detail["field"] == "competitors.2"
    for words in (f"competitor {a[3]} is on amazon.de", f"main product {a[0]} is on amazon.com"):
        assert words in detail["message"] and words in err["message"]

    created = api.post(GROUPS, json={**body, "competitors": a[1:4]}, headers=auth(seller))
    assert created.status_code == 201, created.text
    add = api.post(f"{GROUPS}/{created.json()['id']}/competitors",
                   json={"competitor": f"https://www.amazon.co.uk/dp/{a[5]}"},
                   headers=auth(seller))
    assert add.status_code == 422, add.text
    assert add.json()["error"]["details"][0]["field"] == "competitor"
    assert f"{a[5]} is on amazon.co.uk" in add.json()["error"]["message"]


def _assessment(run: dict[str, Any]) -> dict[str, Any]:
    assert run["status"] == "done", run
    pricing: dict[str, Any] = run["inputs"]["pricing"]
    assert pricing["status"] in ("advice", "hold", "no_assessment")
    assert pricing["reason"]
    kinds = {s["type"] for s in run["suggestions"]}
    assert ("pricing" in kinds) == (pricing["status"] == "advice")
    return pricing


def test_40_days_of_history_give_a_pricing_assessment_without_a_group(
    api: httpx.Client,
) -> None:
    seller = new_seller(api)
    # priced on the last backfilled day: a product out of stock today has nothing to price
    (asin,) = fresh("kitchen", 1, priced_on=datetime.now(UTC).date() - timedelta(days=1))
    with transaction() as conn:
        pid, _ = upsert_product(conn, asin, "com")
        tracked = insert_tracked(conn, uuid.UUID(seller["id"]), pid, None, {})
    assert backfill([pid], 40) >= 35  # a fetch may miss a day; the catalog says so
    run = request_run(api, seller, str(tracked))
    pricing = _assessment(run)
    assert run["inputs"]["competitor_group"] is None
    assert pricing["market"] is None and pricing["currency"] == "USD"
    history = pricing["history"]
    assert history["days"] >= 30 and history["status"] in (
        "estimated", "no_response", "implausible", "not_possible")
    assert "no competitor group" in pricing["reason"]
    assert history["reason"] in pricing["reason"]
    for s in run["suggestions"]:
        assert "competitors average" not in s["reason"], s
        if s["type"] == "pricing":
            assert s["evidence"]["currency"] == "USD" and s["evidence"]["market"] is None


def test_a_mixed_group_from_before_the_rule_does_not_mix_currencies(api: httpx.Client) -> None:
    seller = new_seller(api)
    a = fresh("kitchen", 4, priced_on=datetime.now(UTC).date() - timedelta(days=1))
    with transaction() as conn:  # as a group made before the rule was stored
        pids = [upsert_product(conn, a[0], "com")[0],
                *[upsert_product(conn, x, mk)[0]
                  for x, mk in zip(a[1:], ["de", "co.uk", "co.jp"], strict=True)]]
        tracked = insert_tracked(conn, uuid.UUID(seller["id"]), pids[0], None, {})
        cdb.insert_group(conn, uuid.UUID(seller["id"]), "Mixed", pids[0], pids[1:])
    backfill(pids, 31)
    run = request_run(api, seller, str(tracked))
    pricing = _assessment(run)
    assert pricing["currency"] == "USD"
    assert "cannot compare prices in different currencies" in pricing["reason"]
    left = {x["asin"]: x["currency"] for x in pricing["market"]["left_out"]}
    assert left == {a[1]: "EUR", a[2]: "GBP", a[3]: "JPY"}
    assert pricing["market"]["compared"] == []
    score = api.get(f"/v1/products/{tracked}/listing-score", headers=auth(seller)).json()
    rule = {r["rule_id"]: r for r in score["rules"]}["price_position"]
    assert not rule["applicable"]
    assert "cannot compare prices in different currencies" in rule["detail"]
    assert rule["evidence"]["currency"] == "USD"
    for s in run["suggestions"]:
        if s["type"] == "pricing":  # from its own history only, in its own currency
            assert s["evidence"]["market"]["compared"] == []
            assert "$" in s["change"] and "€" not in s["change"] and "¥" not in s["change"]

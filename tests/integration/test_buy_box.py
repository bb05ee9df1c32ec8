"""Who holds the Buy Box, through the running stack: a seller says who they are (their
seller ids and brands, PATCH /v1/auth/me), recorded actor exports are replayed as the
product's daily observations, and each seller gets the Buy Box alerts their identity
makes true, with the Buy Box share in the product's detail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from amazon_pilot.platform.db import transaction
from amazon_pilot.tracking.service import fetch_job, run_fetch
from amazon_pilot.tracking.store import upsert_product
from pilot_dev.runtime.stack import Stack
from tests.integration.replay import FIXTURES, replaying
from tests.integration.sellers import auth, new_seller

ASIN = "B0D31C567W"
ANKER = "A294P4X9EWVXLJ"  # AnkerDirect's seller id, as the real axesso item reports it
HELD_BY_ANKER = FIXTURES / "buybox" / "held-by-anker.json"
HELD_BY_ANOTHER = FIXTURES / "buybox" / "held-by-another-seller.json"


def me(api: httpx.Client, seller: dict[str, str]) -> dict[str, Any]:
    response = api.get("/v1/auth/me", headers=auth(seller))
    assert response.status_code == 200, response.text
    return dict(response.json())


# ------------------------------------------------------------------ seller identity


def test_a_seller_says_who_they_are_and_bad_input_changes_nothing(api: httpx.Client) -> None:
    seller = new_seller(api)
    fresh = me(api, seller)
    assert fresh["seller_ids"] == [] and fresh["brands"] == []
    saved = api.patch("/v1/auth/me", headers=auth(seller), json={
        "company_name": "Anker Innovations",
        "seller_ids": [f" {ANKER.lower()} ", "ATVPDKIKX0DER", ANKER],
        "brands": [" Soundcore ", "soundcore", "Anker   Nebula"]})
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["seller_ids"] == [ANKER, "ATVPDKIKX0DER"]
    assert body["brands"] == ["Soundcore", "Anker Nebula"]
    assert me(api, seller)["seller_ids"] == [ANKER, "ATVPDKIKX0DER"]

    refused = {
        "a store name": ({"seller_ids": [ANKER, "AnkerDirect"]}, "seller_ids[1]"),
        "a short id": ({"seller_ids": ["A29P4X"]}, "seller_ids[0]"),
        "punctuation": ({"seller_ids": ["A294-P4X9-EWVXLJ"]}, "seller_ids[0]"),
        "21 ids": ({"seller_ids": [f"A{i:013d}" for i in range(21)]}, "seller_ids"),
        "an empty brand": ({"brands": ["Soundcore", "  "]}, "brands[1]"),
        "21 brands": ({"brands": [f"Brand {i}" for i in range(21)]}, "brands"),
    }
    for case, (patch, field) in refused.items():
        # a bad item refuses the whole request, the other fields included
        response = api.patch("/v1/auth/me", headers=auth(seller),
                             json={**patch, "company_name": "Changed"})
        assert response.status_code == 422, (case, response.text)
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert error["details"][0]["field"] == field, (case, error)
    not_strings = api.patch("/v1/auth/me", headers=auth(seller), json={"seller_ids": [12]})
    assert not_strings.status_code == 422
    after = me(api, seller)
    assert after["seller_ids"] == [ANKER, "ATVPDKIKX0DER"]
    assert after["brands"] == ["Soundcore", "Anker Nebula"]
    assert after["company_name"] == "Anker Innovations"
    # the other fields are left alone; [] and null clear a list
    kept = api.patch("/v1/auth/me", headers=auth(seller), json={"company_name": "Anker"})
    assert kept.json()["seller_ids"] == [ANKER, "ATVPDKIKX0DER"]
    cleared = api.patch("/v1/auth/me", headers=auth(seller),
                        json={"seller_ids": [], "brands": None})
    assert cleared.json()["seller_ids"] == [] and cleared.json()["brands"] == []


# ------------------------------------------------------------------ the Buy Box


def observe(stack: Stack, product_id: int, captured_at: datetime, export: Path) -> None:
    """One observation of the product, answered by the stand-in from a recorded export."""
    with replaying(stack, export):
        _, _, key = fetch_job([product_id], "schedule", captured_at)
        result = run_fetch([product_id], "schedule", captured_at, key)
    assert result["stored"] == 1, result


def alerts_of(api: httpx.Client, seller: dict[str, str], tracked_id: str) -> list[dict[str, Any]]:
    response = api.get("/v1/alerts", params={"product_id": tracked_id,
                                             "limit": 100}, headers=auth(seller))
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda a: (a["snapshot_captured_at"], a["type"]))


@pytest.fixture(scope="module")
def product_id() -> int:
    with transaction() as conn:
        return upsert_product(conn, ASIN, "com")[0]


def test_buy_box_lost_to_whom_then_regained_and_the_share(
    api: httpx.Client, stack: Stack, product_id: int
) -> None:
    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    day = [today - timedelta(days=n) for n in (3, 2, 1)]
    observe(stack, product_id, day[0], HELD_BY_ANKER)  # the baseline, before anyone tracks it

    anker, unknown = new_seller(api), new_seller(api)
    identity = api.patch("/v1/auth/me", headers=auth(anker),
                         json={"seller_ids": [ANKER], "brands": ["Soundcore"]})
    assert identity.status_code == 200, identity.text
    tracked = {}
    for seller in (anker, unknown):
        response = api.post("/v1/products", json={"asin": ASIN}, headers=auth(seller))
        assert response.status_code == 202, response.text
        tracked[seller["id"]] = response.json()["id"]

    observe(stack, product_id, day[1], HELD_BY_ANOTHER)
    observe(stack, product_id, day[2], HELD_BY_ANKER)

    mine = alerts_of(api, anker, tracked[anker["id"]])
    by_type = {a["type"]: a for a in mine}
    lost = by_type["buy_box_lost"]
    assert lost["severity"] == "critical"
    assert lost["message"].startswith(
        "You lost the Buy Box to ShadyCo Deals (seller id A1HJK2CK3R4Q5Z)")
    assert (lost["old_value"], lost["new_value"]) == ("AnkerDirect", "ShadyCo Deals")
    assert lost["snapshot_captured_at"].startswith(day[1].date().isoformat())
    regained = by_type["buy_box_regained"]
    assert regained["message"] == (
        "You won the Buy Box back from ShadyCo Deals (seller id A1HJK2CK3R4Q5Z)")
    assert regained["snapshot_captured_at"].startswith(day[2].date().isoformat())
    # a seller never seen on a listing of the seller's own brand
    assert "Soundcore listing" in by_type["new_seller_on_listing"]["message"]
    assert "buy_box_seller_change" not in by_type

    theirs = alerts_of(api, unknown, tracked[unknown["id"]])
    holders = {"buy_box_lost", "buy_box_regained", "buy_box_seller_change",
               "new_seller_on_listing"}
    changes = [a for a in theirs if a["type"] in holders]
    assert [a["type"] for a in changes] == ["buy_box_seller_change"] * 2
    for change in changes:
        assert "ownership unknown: you have not told us your Amazon seller ids" in change[
            "message"]
    assert changes[0]["message"].startswith(
        f"Buy Box seller changed: AnkerDirect (seller id {ANKER}) → ShadyCo Deals")

    detail = api.get(f"/v1/products/{tracked[anker['id']]}", headers=auth(anker)).json()
    assert detail["latest"]["buy_box_seller_id"] == ANKER
    buy_box = detail["buy_box"]
    assert buy_box["ownership"] == "known" and buy_box["held_by_you"] is True
    assert buy_box["seller"] == "AnkerDirect" and buy_box["note"] is None
    week = buy_box["share"]["7d"]
    assert (week["days"], week["held_days"], week["share"]) == (3, 2, 0.6667)
    other = api.get(f"/v1/products/{tracked[unknown['id']]}", headers=auth(unknown)).json()
    assert other["buy_box"]["ownership"] == "unknown"
    assert other["buy_box"]["held_by_you"] is None
    assert other["buy_box"]["share"]["7d"]["held_days"] is None
    assert other["buy_box"]["share"]["7d"]["days"] == 3
    assert "you have not told us your Amazon seller ids" in other["buy_box"]["note"]


def test_numbers_the_actor_formats_keep_in_details_have_history(
    api: httpx.Client, stack: Stack, product_id: int
) -> None:
    """offer_count, seller_count and bought_past_month are stored in a snapshot's details
    by the actor formats that report them; their history reads them there, and a value
    that is not a number is unknown (null), never an error."""
    from sqlalchemy import text

    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    times = [today - timedelta(days=n) for n in (12, 11, 10)]  # out of the other test's week
    for at in times:
        observe(stack, product_id, at, HELD_BY_ANKER)
    seller = new_seller(api)
    tracked = api.post("/v1/products", json={"asin": ASIN}, headers=auth(seller)).json()
    with transaction() as conn:
        for at, extra in zip(times, (
                {"offer_count": 2, "seller_count": 2, "bought_past_month": 10000},
                {"offer_count": 5, "seller_count": 4, "bought_past_month": 20000},
                {"offer_count": "many", "bought_past_month": None}), strict=True):
            conn.execute(text("UPDATE snapshots SET details = details || CAST(:x AS jsonb)"
                              " WHERE product_id = :p AND captured_at = :at"),
                         {"x": json.dumps(extra), "p": product_id, "at": at})
    window = {"interval": "raw", "from": (times[0] - timedelta(minutes=1)).isoformat(),
              "to": (times[-1] + timedelta(minutes=1)).isoformat()}
    series = {}
    for metric in ("offer_count", "seller_count", "bought_past_month"):
        response = api.get(f"/v1/products/{tracked['id']}/history", headers=auth(seller),
                           params={"metric": metric, **window})
        assert response.status_code == 200, response.text
        series[metric] = [p["v"] for p in response.json()["points"]]
    assert series == {"offer_count": [2.0, 5.0, None], "seller_count": [2.0, 4.0, None],
                      "bought_past_month": [10000.0, 20000.0, None]}

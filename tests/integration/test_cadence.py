"""Refresh cadence per tracked product and the per-seller fetch budget (issue 18), through
the running stack: the API sets them, the daily plan's own query decides what is due."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from amazon_pilot.tracking import store
from pilot_dev.standins.apify_catalog import demo_asins, item_for
from pilot_dev.timetravel import observe
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import wait_for


def execute(sql: str, **params: Any) -> None:
    with get_engine().begin() as conn:
        conn.execute(text(sql), params)


def product_id(asin: str) -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(text("SELECT id FROM products WHERE asin = :a"),
                                {"a": asin}).scalar_one())


def due(ids: list[int], now: datetime | None = None) -> set[int]:
    """Which of these products the daily plan at `now` fetches."""
    with get_engine().connect() as conn:
        return set(store.due_products(conn, now or datetime.now(UTC))) & set(ids)


def observed_ago(ids: list[int], hours: float) -> None:
    execute("UPDATE products SET latest_captured_at = now() - make_interval(hours => :h)"
            " WHERE id = ANY(:ids)", ids=ids, h=hours)


def track(api: httpx.Client, seller: dict[str, str], asin: str, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/products", json={"asin": asin, **body}, headers=auth(seller))
    assert response.status_code == 202, response.text
    return dict(response.json())


def wait_fetched(ids: list[int]) -> None:
    def fetched() -> bool:
        with get_engine().connect() as conn:
            return bool(conn.execute(text(
                "SELECT bool_and(last_fetch_status IS NOT NULL) FROM products"
                " WHERE id = ANY(:ids)"), {"ids": ids}).scalar())
    wait_for(fetched, 60, "the first fetches")


def test_each_cadence_decides_when_its_product_is_due(api: httpx.Client) -> None:
    seller = new_seller(api)
    asins = demo_asins("toys", 4)
    modes = ["12h", "1d", "3d", "7d"]
    tracked = [track(api, seller, a) for a in asins]
    assert all(t["refresh_every"] == "1d" for t in tracked)  # the default
    ids = [product_id(a) for a in asins]
    wait_fetched(ids)
    for t, mode in zip(tracked, modes, strict=True):
        response = api.patch(f"/v1/products/{t['id']}", json={"refresh_every": mode},
                             headers=auth(seller))
        assert response.status_code == 200, response.text
        assert response.json()["refresh_every"] == mode
    by_mode = dict(zip(modes, ids, strict=True))
    observed_ago(ids, 10)  # 10 h ago: only the 12-hour one is due (4 h slack)
    assert due(ids) == {by_mode["12h"]}
    observed_ago(ids, 21)
    assert due(ids) == {by_mode["12h"], by_mode["1d"]}
    observed_ago(ids, 3 * 24 - 3)
    assert due(ids) == {by_mode["12h"], by_mode["1d"], by_mode["3d"]}
    observed_ago(ids, 7 * 24)
    assert due(ids) == set(ids)
    # the product shows its cadence and the next time the plan fetches it
    observed_ago(ids, 24)
    weekly = api.get(f"/v1/products/{tracked[3]['id']}", headers=auth(seller)).json()
    as_of = datetime.fromisoformat(weekly["as_of"])
    assert weekly["refresh_cadence"] == "7d"
    assert datetime.fromisoformat(weekly["next_refresh_at"]) == \
        as_of + timedelta(days=7) - timedelta(hours=4)
    listed = api.get("/v1/products", headers=auth(seller)).json()["items"]
    assert {p["refresh_every"] for p in listed} == set(modes)


def test_a_shared_product_is_due_when_any_tracker_wants_it(api: httpx.Client) -> None:
    weekly, twice_daily = new_seller(api), new_seller(api)
    asin = demo_asins("toys", 6)[5]
    slow = track(api, weekly, asin)
    api.patch(f"/v1/products/{slow['id']}", json={"refresh_every": "7d"}, headers=auth(weekly))
    fast = track(api, twice_daily, asin)
    url = f"/v1/products/{fast['id']}"
    assert api.patch(url, json={"refresh_every": "12h"},
                     headers=auth(twice_daily)).status_code == 200
    pid = product_id(asin)
    wait_fetched([pid])
    observed_ago([pid], 10)
    assert due([pid]) == {pid}  # the 12-hour tracker wants it
    api.patch(url, json={"is_paused": True}, headers=auth(twice_daily))
    assert due([pid]) == set()  # a paused tracker wants nothing; the other waits a week
    api.patch(url, json={"is_paused": False, "refresh_every": "3d"}, headers=auth(twice_daily))
    observed_ago([pid], 3 * 24)
    assert due([pid]) == {pid}


def _asin_with_price_move(category: str) -> tuple[str, date]:
    """A catalog product whose price moves 3-9 % from one day to the next."""
    day = date(2026, 9, 1)
    for asin in demo_asins(category, 40):
        for offset in range(60):
            d0 = day + timedelta(days=offset)
            a, b = item_for(asin, "com", d0), item_for(asin, "com", d0 + timedelta(days=1))
            if a and b and a["price"] and b["price"] and \
                    3 < abs(b["price"] - a["price"]) / a["price"] * 100 < 9:
                return asin, d0
    raise AssertionError("no suitable catalog product")


def test_auto_goes_every_three_days_when_stable_and_daily_again_on_a_move(
        api: httpx.Client) -> None:
    seller = new_seller(api)
    asin, day = _asin_with_price_move("tools")
    tracked = track(api, seller, asin, thresholds={"price_change_pct": 1})
    url = f"/v1/products/{tracked['id']}"
    pid = product_id(asin)
    wait_fetched([pid])
    assert api.patch(url, json={"refresh_every": "auto"},
                     headers=auth(seller)).json()["refresh_cadence"] == "1d"  # new: daily
    # tracked for 10 days without a price, Buy Box or BSR alert: stable
    execute("UPDATE tracked_products SET created_at = now() - interval '10 days',"
            " moved_at = NULL WHERE id = :id", id=tracked["id"])
    assert api.get(url, headers=auth(seller)).json()["refresh_cadence"] == "3d"
    observed_ago([pid], 2 * 24)
    assert due([pid]) == set()
    # the price moves past the seller's 1 % threshold: an alert, and daily again
    for d in (day, day + timedelta(days=1)):
        observe([pid], datetime(d.year, d.month, d.day, 6, tzinfo=UTC) + timedelta(days=500), d)
    alerts = api.get("/v1/alerts", params={"type": "price_change"}, headers=auth(seller)).json()
    assert alerts["total"] >= 1
    assert api.get(url, headers=auth(seller)).json()["refresh_cadence"] == "1d"
    observed_ago([pid], 2 * 24)
    assert due([pid]) == {pid}


def test_an_over_budget_seller_gets_stable_products_stretched_and_told_why(
        api: httpx.Client, operator: httpx.Client) -> None:
    frugal, generous = new_seller(api), new_seller(api)
    asins = demo_asins("apparel", 3)
    mine = [track(api, frugal, a) for a in asins]
    shared = track(api, generous, asins[0])  # no budget: still fetched daily
    ids = [product_id(a) for a in asins]
    wait_fetched(ids)
    execute("UPDATE tracked_products SET created_at = now() - interval '10 days'"
            " WHERE id = :id", id=mine[2]["id"])  # one stable product
    me = api.patch("/v1/auth/me", json={"monthly_fetch_budget_usd": 0.01}, headers=auth(frugal))
    assert me.status_code == 200 and me.json()["monthly_fetch_budget_usd"] == 0.01
    plan = operator.post("/_pilot/schedules/DailyRefresh/fire")
    assert plan.status_code == 200, plan.text
    budgets = plan.json()["result"]["budgets"]
    theirs = [s for s in budgets["sellers_stretched"] if s["user_id"] == me.json()["id"]]
    assert theirs and theirs[0]["stretched_products"] == 3 and theirs[0]["stretched_stable"] == 1
    answer = api.get("/v1/auth/me", headers=auth(frugal)).json()["fetch_budget"]
    assert answer["stretched_products"] == 3 and answer["projected_usd"] > 0.01
    assert "fetched weekly" in answer["reason"] and "nothing is dropped" in answer["reason"]
    products = api.get("/v1/products", headers=auth(frugal)).json()["items"]
    assert all(p["budget_stretched"] and p["refresh_cadence"] == "7d" for p in products)
    observed_ago(ids, 2 * 24)
    assert due(ids) == {ids[0]}  # the product the other seller tracks without a budget
    assert api.get(f"/v1/products/{shared['id']}",
                   headers=auth(generous)).json()["budget_stretched"] is False
    # no budget any more: the next plan stretches nothing
    api.patch("/v1/auth/me", json={"monthly_fetch_budget_usd": None}, headers=auth(frugal))
    operator.post("/_pilot/schedules/DailyRefresh/fire")
    products = api.get("/v1/products", headers=auth(frugal)).json()["items"]
    assert not any(p["budget_stretched"] for p in products)
    assert api.get("/v1/auth/me", headers=auth(frugal)).json()["fetch_budget"] is None


@pytest.mark.parametrize("body", [{"refresh_every": "2d"}, {"refresh_every": None},
                                  {"refresh_every": 12}])
def test_patch_rejects_an_unknown_cadence(api: httpx.Client, body: dict[str, Any]) -> None:
    seller = new_seller(api)
    tracked = track(api, seller, demo_asins("toys", 8)[7])
    response = api.patch(f"/v1/products/{tracked['id']}", json=body, headers=auth(seller))
    assert response.status_code == 422
    error = response.json()["error"]
    assert "12h" in error["message"] + str(error["details"]), error


def test_budget_must_be_a_positive_amount(api: httpx.Client) -> None:
    seller = new_seller(api)
    for bad in (-1, "lots"):
        response = api.patch("/v1/auth/me", json={"monthly_fetch_budget_usd": bad},
                             headers=auth(seller))
        assert response.status_code == 422
        assert "monthly_fetch_budget_usd" in str(response.json()["error"])


def test_cadence_of_other_sellers_products_is_a_404_and_bulk_sets_it(
        api: httpx.Client) -> None:
    owner, other = new_seller(api), new_seller(api)
    asins = demo_asins("toys", 10)[8:]
    tracked = [track(api, owner, a) for a in asins]
    response = api.patch(f"/v1/products/{tracked[0]['id']}", json={"refresh_every": "7d"},
                         headers=auth(other))
    assert response.status_code == 404
    bulk = api.post("/v1/products/bulk-actions", json={
        "action": "refresh_every", "refresh_every": "3d", "ids": [t["id"] for t in tracked]},
        headers=auth(owner))
    assert bulk.status_code == 200, bulk.text
    assert [r["product"]["refresh_every"] for r in bulk.json()["results"]] == ["3d", "3d"]
    theirs = api.post("/v1/products/bulk-actions", json={
        "action": "refresh_every", "refresh_every": "7d", "ids": [tracked[0]["id"]]},
        headers=auth(other))
    assert [r["status"] for r in theirs.json()["results"]] == [404]
    missing = api.post("/v1/products/bulk-actions", json={
        "action": "refresh_every", "ids": [tracked[0]["id"]]}, headers=auth(owner))
    assert missing.status_code == 422


def test_the_due_products_page_runs_no_subquery_per_product(api: httpx.Client) -> None:
    seller = new_seller(api)
    track(api, seller, demo_asins("toys", 11)[10])
    with get_engine().connect() as conn:
        plan = json.dumps(conn.execute(text(
            "EXPLAIN (FORMAT JSON) " + store.due_products_sql()),
            {**store.cadence_params(datetime.now(UTC)), "after": 0, "limit": 1000}
        ).scalar_one())
    assert "SubPlan" not in plan and '"Semi"' in plan

"""Keyword rank tracking and sales estimates through the API, the local stack and the
Apify stand-in's search actor (docs/keywords.md, docs/sales-estimates.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from pilot_dev.runtime.stack import Stack
from pilot_dev.standins.apify_catalog import demo_asins
from pilot_dev.standins.apify_search_catalog import search_page
from pilot_dev.timetravel import backfill, observe_search
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import wait_for


def scalar(sql: str, **params: Any) -> Any:
    with get_engine().connect() as conn:
        return conn.execute(text(sql), params).scalar()


def track(api: httpx.Client, seller: dict[str, str], asin: str) -> dict[str, Any]:
    response = api.post("/v1/products", json={"url": f"https://www.amazon.com/dp/{asin}"},
                        headers=auth(seller))
    assert response.status_code == 202, response.text
    return dict(response.json())


def keywords(pid: str) -> str:
    return f"/v1/products/{pid}/keywords"


def search_runs(stack: Stack, term: str) -> list[dict[str, Any]]:
    return [r for r in stack.standins["apify"].runs() if term in r["urls"]]


def test_terms_are_kept_per_product_within_the_plan(api: httpx.Client) -> None:
    seller = new_seller(api, plan="free")
    product = track(api, seller, demo_asins("headphones", 30)[20])
    url = keywords(product["id"])
    for term in ("over ear headphones", "Studio   Headphones", "headphones wired"):
        response = api.post(url, json={"term": term}, headers=auth(seller))
        assert response.status_code == 201, response.text
    assert response.json()["term"] == "headphones wired"
    listed = api.get(url, headers=auth(seller)).json()
    assert [k["term"] for k in listed["items"]] == [
        "over ear headphones", "studio headphones", "headphones wired"]
    assert listed["limit"] == 3 and listed["marketplace"] == "com"

    fourth = api.post(url, json={"term": "gaming headset"}, headers=auth(seller))
    assert fourth.status_code == 403, fourth.text
    assert fourth.json()["error"]["code"] == "PLAN_LIMIT_REACHED"
    assert "3 search terms" in fourth.json()["error"]["message"]

    again = api.post(url, json={"term": "  OVER ear headphones "}, headers=auth(seller))
    assert again.status_code == 409, again.text
    short = api.post(url, json={"term": " x "}, headers=auth(seller))
    assert short.status_code == 422, short.text

    other = new_seller(api, plan="free")
    assert api.get(url, headers=auth(other)).status_code == 404
    assert api.post(url, json={"term": "anything"}, headers=auth(other)).status_code == 404
    first = listed["items"][0]["id"]
    assert api.delete(f"{url}/{first}", headers=auth(other)).status_code == 404
    assert api.delete(f"{url}/{first}", headers=auth(seller)).status_code == 204
    assert api.delete(f"{url}/{first}", headers=auth(seller)).status_code == 404
    assert api.post(url, json={"term": "gaming headset"}, headers=auth(seller)).status_code == 201


def test_a_term_two_sellers_follow_is_searched_once_a_day(
        api: httpx.Client, operator: httpx.Client, stack: Stack) -> None:
    term = "wireless earbuds shared"
    asins = demo_asins("wireless earbuds", 60)
    first, second = new_seller(api), new_seller(api)
    mine = track(api, first, asins[3])
    theirs = track(api, second, asins[5])

    added = api.post(keywords(mine["id"]), json={"term": term}, headers=auth(first))
    assert added.status_code == 201, added.text

    def searched() -> dict[str, Any] | None:
        body = api.get(keywords(mine["id"]), headers=auth(first)).json()["items"][0]
        return body if body["last_checked"] else None

    body = wait_for(searched, 60, "the term's first search")
    assert body["page_size"] == 48
    expected = search_page(term, "com", datetime.now(UTC).date())
    organic = [c["asin"] for c in expected if not c["isSponsored"]]
    place = organic.index(asins[3]) + 1 if asins[3] in organic else None
    assert body["position"]["organic"] == place

    added = api.post(keywords(theirs["id"]), json={"term": term}, headers=auth(second))
    assert added.status_code == 201, added.text
    assert added.json()["last_checked"] == body["last_checked"]  # read from the shared page
    fired = operator.post("/_pilot/schedules/KeywordRanks/fire")
    assert fired.status_code == 200, fired.text
    assert term not in str(fired.json())
    assert len(search_runs(stack, term)) == 1
    assert scalar("SELECT count(*) FROM search_pages WHERE term = :t", t=term) == 1

    ranks = api.get(f"{keywords(theirs['id'])}/{added.json()['id']}/ranks",
                    headers=auth(second)).json()
    assert ranks["data_source"] == "sandbox" and ranks["series"][0]["asin"] == asins[5]
    assert len(ranks["series"][0]["points"]) == 1


def _dropping_pair(term_base: str) -> tuple[str, str, int, int | None]:
    """A term and one of its products that lost 5+ organic places from one day to the
    next in the stand-in's pages (found, not assumed)."""
    today = datetime.now(UTC).date()
    d1, d2 = today - timedelta(days=2), today - timedelta(days=1)
    for i in range(20):
        term = f"{term_base} {i}"
        before = [c["asin"] for c in search_page(term, "com", d1) if not c["isSponsored"]]
        after = [c["asin"] for c in search_page(term, "com", d2) if not c["isSponsored"]]
        for place, asin in enumerate(before, 1):
            now = after.index(asin) + 1 if asin in after else None
            if now is None or now - place >= 5:
                return term, asin, place, now
    raise AssertionError("no rank drop in the stand-in's pages")


def test_a_rank_drop_raises_an_alert_for_each_follower(api: httpx.Client) -> None:
    term, asin, old, new = _dropping_pair("bluetooth earbuds")
    seller = new_seller(api)
    product = track(api, seller, asin)
    added = api.post(keywords(product["id"]), json={"term": term}, headers=auth(seller))
    assert added.status_code == 201, added.text
    today = datetime.now(UTC).date()
    observe_search("com", [term], today - timedelta(days=2))
    result = observe_search("com", [term], today - timedelta(days=1))
    assert result["fetched"] == 1 and result["alerts"] >= 1

    alerts = api.get("/v1/alerts", params={"type": "keyword_rank_drop",
                                           "product_id": product["id"]},
                     headers=auth(seller)).json()["items"]
    assert len(alerts) >= 1
    moved = f"#{old} → #{new}" if new else f"off the first page (was #{old})"
    assert any(f'"{term}": {moved}' in a["message"] for a in alerts), alerts
    assert observe_search("com", [term], today - timedelta(days=1))["replayed"] is True

    history = api.get(f"{keywords(product['id'])}/{added.json()['id']}/ranks",
                      params={"days": 7}, headers=auth(seller)).json()
    points = {p["day"]: p for p in history["series"][0]["points"]}
    assert points[(today - timedelta(days=2)).isoformat()]["organic"] == old
    assert points[(today - timedelta(days=1)).isoformat()]["organic"] == new


def test_group_share_of_the_first_page(api: httpx.Client) -> None:
    asins = demo_asins("wireless earbuds", 60)
    seller = new_seller(api)
    main = track(api, seller, asins[1])
    term = "wireless earbuds share"
    assert api.post(keywords(main["id"]), json={"term": term},
                    headers=auth(seller)).status_code == 201
    group = api.post("/v1/competitor-groups", headers=auth(seller), json={
        "name": "share", "main": asins[1], "competitors": asins[2:5]})
    assert group.status_code == 201, group.text
    gid = group.json()["id"]
    day = datetime.now(UTC).date() - timedelta(days=3)
    observe_search("com", [term], day)

    def shared() -> dict[str, Any] | None:
        body = api.get(f"/v1/competitor-groups/{gid}/keyword-share",
                       headers=auth(seller)).json()
        return body if body["terms"] and body["terms"][0]["page_size"] else None

    share = wait_for(shared, 60, "the share")["terms"][0]
    page = search_page(term, "com", datetime.fromisoformat(share["day"]).date())
    group_asins = set(asins[1:5])
    held = sum(c["asin"] in group_asins for c in page)
    assert share["group_results"] == held and share["page_size"] == 48
    assert share["share"] == round(held / 48, 4)
    other = new_seller(api)
    assert api.get(f"/v1/competitor-groups/{gid}/keyword-share",
                   headers=auth(other)).status_code == 404


@pytest.mark.parametrize("category", ["wireless earbuds", "books"])
def test_sales_estimates_follow_the_rank_with_the_badge_beside(
        api: httpx.Client, category: str) -> None:
    seller = new_seller(api)
    asin = demo_asins(category, 40)[31]
    product = track(api, seller, asin)
    pid = scalar("SELECT id FROM products WHERE asin = :a", a=asin)
    backfill([pid], 5)
    body = api.get(f"/v1/products/{product['id']}/sales-estimates", params={"days": 10},
                   headers=auth(seller)).json()
    ranked = [p for p in body["series"] if p["rank"]]
    assert len(ranked) >= 5
    assert body["method"]["curve"] == ("books" if category == "books" else "electronics")
    assert "Brynjolfsson" in body["method"]["source"]
    # a better rank never estimates fewer units (same category curve)
    by_rank = sorted((p for p in ranked if p["rank_kind"] == "category"),
                     key=lambda p: p["rank"])
    assert all(a["units"] >= b["units"] for a, b in pairwise(by_rank))
    assert all(p["units_low"] <= p["units"] <= p["units_high"] for p in ranked)
    for p in ranked:
        if p["bought_past_month"]:
            assert p["check"] == ("consistent" if p["units"] >= p["bought_past_month"]
                                  else "below_badge")
        else:
            assert p["check"] is None
    other = new_seller(api)
    assert api.get(f"/v1/products/{product['id']}/sales-estimates",
                   headers=auth(other)).status_code == 404


def test_the_demo_step_gives_the_main_product_a_month_of_ranks(api: httpx.Client) -> None:
    from pilot_dev.demo_extras import STEPS, keyword_ranks

    assert keyword_ranks in STEPS
    seller = new_seller(api)
    product = track(api, seller, demo_asins("wireless earbuds", 60)[7])
    lines = keyword_ranks(seller["id"], [scalar("SELECT id FROM products WHERE asin = :a",
                                                a=product["asin"])])
    assert lines == ["  keywords: 2 search terms on the main product, 31 days of ranks"]
    listed = api.get(keywords(product["id"]), headers=auth(seller)).json()["items"]
    assert sorted(k["term"] for k in listed) == ["bluetooth earbuds", "wireless earbuds"]
    history = api.get(f"{keywords(product['id'])}/{listed[0]['id']}/ranks",
                      params={"days": 31}, headers=auth(seller)).json()
    assert len(history["series"][0]["points"]) == 31

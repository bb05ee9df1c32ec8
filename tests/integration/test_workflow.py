"""The seller's everyday workflow through the API: CSV exports (parsed back), tags and
notes, bulk actions on a selection, short links, and the list agreeing with the detail
page on changes. Through the running local stack, as a seller's browser or script would."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from amazon_pilot.tracking.schemas import ProductPage
from pilot_dev.standins.apify_catalog import demo_asins
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import wait_for


@pytest.fixture(scope="module")
def asins() -> list[str]:
    return demo_asins("headphones", 24)[12:]  # not the ones test_tracking uses


def track(api: httpx.Client, seller: dict[str, str], asin: str, **extra: Any) -> dict[str, Any]:
    response = api.post("/v1/products", json={"asin": asin, **extra}, headers=auth(seller))
    assert response.status_code == 202, response.text
    return dict(response.json())


def fetched(api: httpx.Client, seller: dict[str, str], tracked_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = api.get(f"/v1/products/{tracked_id}", headers=auth(seller)).json()
        return body if body["fetch_status"] == "ok" else None

    return dict(wait_for(done, 30, "the first fetch"))


def parse_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text)))


def product_row_id(tracked_id: str) -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(text("SELECT product_id FROM tracked_products WHERE id = :t"),
                                {"t": tracked_id}).scalar_one())


# ---------------------------------------------------------------- exports


def test_products_and_alerts_export_as_csv_by_format_or_accept(
        api: httpx.Client, asins: list[str]) -> None:
    seller = new_seller(api)
    first = track(api, seller, asins[0], alias="=HYPERLINK(\"http://x\")")
    second = track(api, seller, asins[1])
    fetched(api, seller, first["id"])
    fetched(api, seller, second["id"])  # both exports then read the same rows
    api.patch(f"/v1/products/{first['id']}", json={"tags": ["Q4 Launch", "audio"],
                                                   "notes": "reprice after Prime Day"},
              headers=auth(seller))
    by_param = parse_csv(api.get("/v1/products", params={"format": "csv"}, headers=auth(seller)))
    by_accept = parse_csv(api.get("/v1/products", headers={**auth(seller), "Accept": "text/csv"}))
    assert by_param == by_accept and len(by_param) == 2
    row = next(r for r in by_param if r["id"] == first["id"])
    assert row["asin"] == asins[0] and row["tags"] == "audio; q4 launch"
    assert row["notes"] == "reprice after Prime Day"
    assert row["alias"].startswith("'=")  # a spreadsheet must not run it as a formula
    assert row["availability"] in ("In stock", "Low stock", "Out of stock", "Unknown",
                                   "No featured offer")
    assert row["price"] == "" or float(row["price"]) > 0
    # JSON stays the default, and a filter applies to the export as to the list
    assert api.get("/v1/products", headers=auth(seller)).headers["content-type"].startswith(
        "application/json")
    tagged = parse_csv(api.get("/v1/products", params={"format": "csv", "tag": "audio"},
                               headers=auth(seller)))
    assert [r["id"] for r in tagged] == [first["id"]]
    alerts = api.get("/v1/alerts", params={"format": "csv"}, headers=auth(seller))
    assert alerts.status_code == 200
    assert alerts.text.splitlines()[0].startswith("id,created_at,asin,")


def test_history_export_streams_every_row_in_order_and_hides_others(
        api: httpx.Client, asins: list[str]) -> None:
    seller, other = new_seller(api), new_seller(api)
    tracked = track(api, seller, asins[2])
    fetched(api, seller, tracked["id"])
    pid = product_row_id(tracked["id"])
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=120)
    count = 2600  # more than two export batches (1000 rows each)
    with get_engine().begin() as conn:
        conn.execute(text(
            "INSERT INTO snapshots (product_id, captured_at, found, price, availability,"
            " rating, review_count, bsr_rank)"
            " SELECT :p, CAST(:s AS timestamptz) + make_interval(hours => i), true,"
            "  CASE WHEN i % 10 = 0 THEN NULL ELSE 10 + (i % 7) END,"
            "  CASE WHEN i % 10 = 0 THEN 'out_of_stock' ELSE 'in_stock' END,"
            "  4.5, 100 + i, 5000 - i"
            " FROM generate_series(0, :n - 1) AS i ON CONFLICT DO NOTHING"),
            {"p": pid, "s": start, "n": count})
    url = f"/v1/products/{tracked['id']}/history"
    params = {"format": "csv", "interval": "raw", "from": start.isoformat(),
              "to": (start + timedelta(hours=count - 1)).isoformat()}
    with api.stream("GET", url, params=params, headers=auth(seller)) as response:
        assert response.status_code == 200
        body = response.read().decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == count
    times = [r["captured_at"] for r in rows]
    assert times == sorted(times) and len(set(times)) == count
    assert rows[0]["availability"] == "Out of stock" and rows[0]["price"] == ""
    assert rows[1]["price"] == "11" and rows[1]["review_count"] == "101"
    assert set(rows[0]) >= {"bsr_rank", "rating", "offer_count", "bought_past_month"}
    daily = parse_csv(api.get(url, params={**params, "interval": "day"}, headers=auth(seller)))
    assert 100 <= len(daily) <= 110  # one row a day, the day's last observation
    assert api.get(url, params=params, headers=auth(other)).status_code == 404
    missing = api.get("/v1/products/00000000-0000-4000-8000-000000000000/history",
                      params=params, headers=auth(seller))
    assert missing.status_code == 404 and missing.json()["error"]["code"]


def test_group_comparison_exports_one_row_per_product(api: httpx.Client,
                                                      asins: list[str]) -> None:
    seller, other = new_seller(api), new_seller(api)
    created = api.post("/v1/competitor-groups", headers=auth(seller), json={
        "name": "export me", "main": asins[3], "competitors": asins[4:7]})
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["max_competitors"] == 5 and group["min_competitors"] == 3
    url = f"/v1/competitor-groups/{group['id']}/comparison"
    rows = parse_csv(api.get(url, params={"format": "csv"}, headers=auth(seller)))
    assert [r["role"] for r in rows] == ["main", "competitor", "competitor", "competitor"]
    assert [r["asin"] for r in rows] == asins[3:7]
    assert rows[0]["price_gap"] == ""  # gaps are main minus a competitor
    assert api.get(url, params={"format": "csv"}, headers=auth(other)).status_code == 404
    page = api.get("/v1/competitor-groups", headers=auth(seller)).json()
    assert page["plan_groups"] == 1000  # the enterprise plan's limit, shown before it bites


# ---------------------------------------------------------------- tags, notes, bulk actions


def test_tags_notes_filter_sort_and_bulk_actions(api: httpx.Client, asins: list[str]) -> None:
    seller, other = new_seller(api), new_seller(api)
    ids = [track(api, seller, a)["id"] for a in asins[7:11]]
    theirs = track(api, other, asins[7])["id"]
    bad = api.patch(f"/v1/products/{ids[0]}", json={"tags": ["no/slashes"]},
                    headers=auth(seller))
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "tags"
    noted = api.patch(f"/v1/products/{ids[0]}", json={"tags": [" Zebra ", "zebra", "alpha"],
                                                      "notes": "  watch the coupon "},
                      headers=auth(seller))
    assert noted.json()["tags"] == ["alpha", "zebra"]
    assert noted.json()["notes"] == "watch the coupon"

    tagged = api.post("/v1/products/bulk-actions", headers=auth(seller), json={
        "action": "tag", "ids": [ids[1], ids[2], theirs], "tags": ["Launch"]})
    assert tagged.status_code == 200, tagged.text
    results = {r["id"]: r for r in tagged.json()["results"]}
    assert results[theirs]["status"] == 404  # another seller's product: not found, untouched
    assert results[ids[1]]["product"]["tags"] == ["launch"]
    assert tagged.json()["succeeded"] == 2 and tagged.json()["failed"] == 1
    other_view = api.get(f"/v1/products/{theirs}", headers=auth(other)).json()
    assert other_view["tags"] == []

    listed = api.get("/v1/products", params={"tag": "launch"}, headers=auth(seller)).json()
    assert sorted(p["id"] for p in listed["items"]) == sorted(ids[1:3])
    assert listed["total"] == 2 and listed["tracked"] == 4
    by_tag = api.get("/v1/products", params={"sort": "tag"}, headers=auth(seller)).json()
    order = [p["id"] for p in by_tag["items"]]  # "alpha", then "launch", untagged last
    assert order[0] == ids[0] and set(order[1:3]) == set(ids[1:3]) and order[3] == ids[3]
    tags = api.get("/v1/products/tags", headers=auth(seller)).json()["items"]
    assert tags == [{"tag": "alpha", "products": 1}, {"tag": "launch", "products": 2},
                    {"tag": "zebra", "products": 1}]

    paused = api.post("/v1/products/bulk-actions", headers=auth(seller),
                      json={"action": "pause", "ids": ids[:2]}).json()
    assert all(r["product"]["is_paused"] for r in paused["results"])
    untag = api.post("/v1/products/bulk-actions", headers=auth(seller),
                     json={"action": "untag", "ids": ids[1:3], "tags": ["launch"]}).json()
    assert all(r["product"]["tags"] == [] for r in untag["results"])
    missing_tags = api.post("/v1/products/bulk-actions", headers=auth(seller),
                            json={"action": "tag", "ids": ids[:1]})
    assert missing_tags.status_code == 422
    deleted = api.post("/v1/products/bulk-actions", headers=auth(seller),
                       json={"action": "delete", "ids": [ids[3], theirs]}).json()
    assert [r["status"] for r in deleted["results"]] == [204, 404]
    assert api.get(f"/v1/products/{ids[3]}", headers=auth(seller)).status_code == 404
    assert api.get(f"/v1/products/{theirs}", headers=auth(other)).status_code == 200


# ---------------------------------------------------------------- list and detail agree


def test_list_and_detail_agree_that_a_stock_out_is_no_price(api: httpx.Client,
                                                             asins: list[str]) -> None:
    seller = new_seller(api)
    tracked = track(api, seller, asins[11])
    detail = fetched(api, seller, tracked["id"])
    pid = product_row_id(tracked["id"])
    now = datetime.now(UTC)
    with get_engine().begin() as conn:  # in stock at 9.99 a week ago, out of stock since
        conn.execute(text(
            "INSERT INTO snapshots (product_id, captured_at, found, price, availability)"
            " VALUES (:p, :a, true, 9.99, 'in_stock'), (:p, :b, true, NULL, 'out_of_stock')"),
            {"p": pid, "a": now - timedelta(days=8), "b": now - timedelta(days=2)})
    detail = api.get(f"/v1/products/{tracked['id']}", headers=auth(seller)).json()
    answer = api.get("/v1/products", headers=auth(seller))
    listed = answer.json()["items"][0]
    # the page is encoded without the model: byte for byte what the model would send
    assert ProductPage.model_validate_json(answer.content).model_dump_json().encode() \
        == answer.content
    for window in ("1d", "7d"):
        assert listed["changes"][window] == detail["changes"][window]
    # the list builds its items from its rows: every field it shares with the detail reads
    # the same, values and types alike (9.99, never "9.99" or 9.990)
    assert {k: v for k, v in listed.items() if k != "changes"} == {
        k: detail[k] for k in listed if k != "changes"}
    one_day = listed["changes"]["1d"]["price"]
    assert one_day["old"] is None and one_day["change"] is None  # "no price", not a change
    assert listed["changes"]["7d"]["price"]["old"] == 9.99


# ---------------------------------------------------------------- short links


def test_short_links_resolve_through_a_bounded_amazon_only_redirect_chain(
        api: httpx.Client, asins: list[str], shortener: dict[str, str]) -> None:
    seller = new_seller(api)
    asin = asins[0]
    shortener.update({
        "a.co/d/7xYz": "https://amzn.to/3abc",
        "amzn.to/3abc": f"https://www.amazon.co.uk/Some-Thing/dp/{asin}/ref=cm_sw_r?th=1",
        "a.co/d/loop": "https://amzn.to/loop", "amzn.to/loop": "https://a.co/d/loop",
        "a.co/d/evil": "http://169.254.169.254/latest/meta-data/",
    })
    added = api.post("/v1/products", json={"url": "https://a.co/d/7xYz"}, headers=auth(seller))
    assert added.status_code == 202, added.text
    assert added.json()["asin"] == asin and added.json()["marketplace"] == "co.uk"
    for path, words in (("loop", "more than 5"), ("evil", "outside Amazon"),
                        ("gone", "did not redirect")):
        refused = api.post("/v1/products", json={"url": f"a.co/d/{path}"}, headers=auth(seller))
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]["message"]
        assert words in message and "paste the full product URL" in message
    bulk = api.post("/v1/products/bulk", headers=auth(seller), json={"items": [
        {"url": "https://a.co/d/evil"}, {"asin": asins[1]}]}).json()
    assert [r["status"] for r in bulk["results"]] == [422, 202]


def test_short_links_are_refused_offline_with_what_to_do(
        api: httpx.Client, stack_env: Callable[[str, str], None]) -> None:
    stack_env("SHORT_LINKS", "off")
    seller = new_seller(api)
    refused = api.post("/v1/products", json={"url": "https://amzn.to/3abc"},
                       headers=auth(seller))
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert "offline" in message and "paste the full product URL" in message

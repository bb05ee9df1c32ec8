"""Product tracking end to end through the running local stack and the Apify stand-in."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from amazon_pilot.tracking.service import FETCH_JOB, fetch_job, run_fetch
from pilot_dev.runtime.stack import Stack
from pilot_dev.standins.apify_catalog import demo_asins, item_for
from pilot_dev.timetravel import observe
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import _dlq_messages, wait_for


def scalar(sql: str, **params: Any) -> Any:
    with get_engine().connect() as conn:
        return conn.execute(text(sql), params).scalar()


def wait_queues_idle(stack: Stack) -> None:
    """Faults armed on the shared stand-in must hit this test's run, not a leftover one."""
    sqs = stack.client("sqs")

    def idle() -> bool:
        # a fetch retry waits out its back-off in the outbox before it reaches a queue
        if scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND job_type = :job",
                  job=FETCH_JOB):
            return False
        for name in ("CriticalQueue", "DefaultQueue"):
            attrs = sqs.get_queue_attributes(
                QueueUrl=stack.queue_urls[name],
                # delayed too: a fetch retried with a delay is still work in hand
                AttributeNames=["ApproximateNumberOfMessages",
                                "ApproximateNumberOfMessagesNotVisible",
                                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            if any(int(v) for v in attrs.values()):
                return False
        return True

    wait_for(idle, 60, "the queues to drain")


def product_row_id(asin: str) -> int:
    return int(scalar("SELECT id FROM products WHERE asin = :a", a=asin))


@pytest.fixture(scope="module")
def asins() -> list[str]:
    return demo_asins("headphones", 12)


@pytest.mark.smoke  # also runs against pilot run --from-build
def test_add_by_url_queues_a_first_fetch_that_stores_a_snapshot(
    api: httpx.Client, asins: list[str]
) -> None:
    seller = new_seller(api)
    url = f"https://www.amazon.com/Some-Slug-Here/dp/{asins[0]}/ref=sr_1_3?keywords=x&th=1"
    response = api.post("/v1/products", json={"url": url, "alias": "mine"}, headers=auth(seller))
    assert response.status_code == 202, response.text
    tracked = response.json()
    assert tracked["asin"] == asins[0] and tracked["fetch_status"] == "pending"

    def fetched() -> dict[str, Any] | None:
        body = api.get(f"/v1/products/{tracked['id']}", headers=auth(seller)).json()
        return body if body["fetch_status"] == "ok" else None

    product = wait_for(fetched, 30, "the first fetch")
    assert product["data_source"] == "sandbox"
    assert product["latest"]["price"] is None or product["latest"]["price"] > 0
    assert product["title"] and product["as_of"] and product["stale"] is False
    assert scalar("SELECT count(*) FROM snapshots WHERE product_id = :p",
                  p=product_row_id(asins[0])) == 1
    trigger = scalar("SELECT trigger FROM scrape_runs WHERE product_count = 1 ORDER BY"
                     " started_at DESC LIMIT 1")
    assert trigger == "add"


def test_bad_references_duplicates_and_other_sellers(api: httpx.Client, asins: list[str]) -> None:
    seller, other = new_seller(api), new_seller(api)
    for bad in ("https://www.amazon.evil.com/dp/B0C33XXS56", "not an asin",
                "https://www.amazon.com/s?k=earbuds"):
        key = "url" if bad.startswith("http") else "asin"
        response = api.post("/v1/products", json={key: bad}, headers=auth(seller))
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    both = api.post("/v1/products", json={"asin": asins[1], "url": "https://amazon.com/dp/"
                                          + asins[1]}, headers=auth(seller))
    assert both.status_code == 422
    first = api.post("/v1/products", json={"asin": asins[1]}, headers=auth(seller))
    assert first.status_code == 202
    again = api.post("/v1/products", json={"asin": asins[1].lower()}, headers=auth(seller))
    assert again.status_code == 409
    # the same product for another seller reuses the shared row
    shared = api.post("/v1/products", json={"asin": asins[1]}, headers=auth(other))
    assert shared.status_code == 202
    assert scalar("SELECT count(*) FROM products WHERE asin = :a", a=asins[1]) == 1
    tracked_id = first.json()["id"]
    for method in ("GET", "PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"alias": "x"}} if method == "PATCH" else {}
        response = api.request(method, f"/v1/products/{tracked_id}", headers=auth(other),
                               **kwargs)
        assert response.status_code == 404, (method, response.text)
    assert api.get("/v1/products", headers={}).status_code == 401


def test_bulk_add_gives_one_result_per_item(api: httpx.Client, asins: list[str]) -> None:
    seller = new_seller(api)
    items = [{"asin": asins[2]}, {"asin": "bad"}, {"asin": asins[3]}, {"asin": asins[2]}]
    response = api.post("/v1/products/bulk", json={"items": items}, headers=auth(seller))
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == [202, 422, 202, 409]
    listing = api.get("/v1/products", params={"sort": "-created_at"}, headers=auth(seller))
    assert listing.json()["total"] == 2
    too_many = api.post("/v1/products/bulk", json={"items": [{"asin": asins[0]}] * 101},
                        headers=auth(seller))
    assert too_many.status_code == 422


def test_daily_schedule_fetches_each_shared_product_once(
    api: httpx.Client, stack: Stack, asins: list[str], operator: httpx.Client
) -> None:
    sellers = [new_seller(api) for _ in range(3)]
    tracked = asins[4:7]
    for seller in sellers:
        for asin in tracked:
            assert api.post("/v1/products", json={"asin": asin},
                            headers=auth(seller)).status_code in (202, 409)
    standin = stack.standins["apify"]
    wait_for(lambda: all(scalar("SELECT latest_captured_at IS NOT NULL FROM products WHERE"
                                " asin = :a", a=a) for a in tracked), 30, "first fetches")
    # make two due again (the third stays fresh), then let the schedule plan the day
    shared, fresh = tracked[:2], tracked[2]
    with get_engine().begin() as conn:
        conn.execute(text("UPDATE products SET latest_captured_at = now() - interval '2 days'"
                          " WHERE asin = ANY(:a)"), {"a": shared})
    wait_queues_idle(stack)  # a second seller's add may have queued another first fetch
    before = len(standin.runs())
    response = operator.post("/_pilot/schedules/DailyRefresh/fire")
    assert response.status_code == 200, response.text
    plan = response.json()["result"]
    assert plan["products"] >= len(shared)
    # the answer says what it left out and why (`pilot fire DailyRefresh` prints it)
    assert plan["skipped_fresh"] >= 1 and plan["fresh_for_hours"] == 20
    from pilot_dev.cli import refresh_summary

    assert f"{plan['skipped_fresh']} skipped as fresh (observed in the last 20 h" in \
        refresh_summary(plan)

    def planned_runs() -> list[dict[str, Any]] | None:
        runs = standin.runs()[before:]
        done = [r for r in runs if r["status"] == "SUCCEEDED"]
        urls = [u for r in done for u in r["urls"]]
        return done if all(any(a in u for u in urls) for a in shared) else None

    runs = wait_for(planned_runs, 90, "the daily batches")
    urls = [u for r in runs for u in r["urls"]]
    for asin in shared:
        assert sum(asin in u for u in urls) == 1, asin  # once, though three sellers track it
    assert not any(fresh in u for u in urls)  # observed today: not fetched again


def test_failed_runs_are_retried_then_dead_lettered_with_nothing_else_lost(
    api: httpx.Client, stack: Stack, asins: list[str]
) -> None:
    standin = stack.standins["apify"]
    seller = new_seller(api)
    ok = api.post("/v1/products", json={"asin": asins[7]}, headers=auth(seller)).json()
    wait_for(lambda: scalar("SELECT last_fetch_status FROM products WHERE asin = :a",
                            a=asins[7]) == "ok", 30, "a healthy fetch")
    wait_queues_idle(stack)
    standin.inject("run_failed", count=3)
    try:
        failing = api.post("/v1/products", json={"asin": asins[8]}, headers=auth(seller))
        assert failing.status_code == 202
        _wait_dead_lettered(stack, asins)
    finally:
        standin.clear_faults()
    attempts = scalar("SELECT attempts FROM scrape_runs WHERE status = 'failed'"
                      " AND trigger = 'add' ORDER BY started_at DESC LIMIT 1")
    assert attempts == 3  # the queue's maxReceiveCount
    # the product fetched before is intact, and the failing one is marked as never fetched
    detail = api.get(f"/v1/products/{ok['id']}", headers=auth(seller)).json()
    assert detail["fetch_status"] == "ok" and detail["latest"] is not None
    assert scalar("SELECT count(*) FROM snapshots WHERE product_id = :p",
                  p=product_row_id(asins[8])) == 0


def _wait_dead_lettered(stack: Stack, asins: list[str]) -> None:
    sqs = stack.client("sqs")

    def dead() -> list[dict[str, Any]]:
        batch = sqs.receive_message(QueueUrl=stack.queue_urls["CriticalDLQ"],
                                    MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    VisibilityTimeout=2).get("Messages", [])
        wanted = product_row_id(asins[8])
        return [m for m in batch
                if wanted in json.loads(m["Body"]).get("payload", {}).get("product_ids", [])]

    wait_for(dead, 60, "the failed fetch in the critical DLQ")


def test_replaying_a_batch_writes_nothing_twice(stack: Stack, asins: list[str]) -> None:
    stack.standins["apify"].clear_faults()
    from amazon_pilot.platform.db import transaction
    from amazon_pilot.tracking.store import upsert_product

    with transaction() as conn:
        ids = [upsert_product(conn, a, "com")[0] for a in asins[9:12]]
    at = datetime(2026, 10, 1, 6, tzinfo=UTC)
    _, _, key = fetch_job(ids, "schedule", at)
    first = run_fetch(ids, "schedule", at, key)
    assert first["stored"] == 3
    replay = run_fetch(ids, "schedule", at, key)
    assert replay.get("replayed") is True
    # even a new run for the same observation time stores no duplicate rows
    again = run_fetch(ids, "schedule", at, key + ":other")
    assert again["stored"] == 0 and again["replayed_rows"] == 3
    assert scalar("SELECT count(*) FROM snapshots WHERE product_id = ANY(:p) AND captured_at"
                  " = :at", p=ids, at=at) == 3


def _asin_with_price_move(low: float, high: float) -> tuple[str, date]:
    day = date(2026, 9, 1)
    for asin in demo_asins("phone chargers", 40):
        for offset in range(60):
            d0 = day + timedelta(days=offset)
            a, b = item_for(asin, "com", d0), item_for(asin, "com", d0 + timedelta(days=1))
            if not a or not b or not a["price"] or not b["price"]:
                continue
            move = abs(b["price"] - a["price"]) / a["price"] * 100
            if low < move < high:
                return asin, d0
    raise AssertionError("no suitable catalog product")


def test_thresholds_are_per_seller(api: httpx.Client) -> None:
    asin, day = _asin_with_price_move(3.0, 9.0)
    sensitive, relaxed = new_seller(api), new_seller(api)
    a = api.post("/v1/products", json={"asin": asin, "thresholds": {"price_change_pct": 1}},
                 headers=auth(sensitive))
    b = api.post("/v1/products", json={"asin": asin}, headers=auth(relaxed))
    assert a.status_code == 202 and b.status_code == 202
    pid = product_row_id(asin)
    # The first fetch that adding queued lands first; its observation (today) and the
    # move from it to `day` may alert on their own, so only the day -> day+1 move counts.
    wait_for(lambda: scalar("SELECT last_fetch_status FROM products WHERE id = :p", p=pid),
             60, "the first fetch")

    def price_alerts(seller: dict[str, str]) -> dict[str, Any]:
        return dict(api.get("/v1/alerts", params={"type": "price_change"},
                            headers=auth(seller)).json())

    totals = {}
    for d in (day, day + timedelta(days=1)):
        totals = {"mine": price_alerts(sensitive)["total"],
                  "theirs": price_alerts(relaxed)["total"]}
        at = datetime(d.year, d.month, d.day, 6, tzinfo=UTC) + timedelta(days=400)
        observe([pid], at, d)
    mine, theirs = price_alerts(sensitive), price_alerts(relaxed)
    assert mine["total"] - totals["mine"] == 1 and theirs["total"] == totals["theirs"]
    alert = mine["items"][0]
    assert alert["threshold"] == 1.0 and abs(alert["change_pct"]) > 1
    ack = api.post(f"/v1/alerts/{alert['id']}/ack", headers=auth(sensitive))
    assert ack.status_code == 200
    assert api.post(f"/v1/alerts/{alert['id']}/ack", headers=auth(relaxed)).status_code == 404


def test_history_and_refresh_cooldown(api: httpx.Client, asins: list[str]) -> None:
    seller = new_seller(api)
    tracked = api.post("/v1/products", json={"asin": asins[0]}, headers=auth(seller)).json()
    first = api.get(f"/v1/products/{tracked['id']}/history", params={"metric": "price"},
                    headers=auth(seller))
    assert first.status_code == 200, first.text
    assert first.headers["x-cache"] == "miss"
    assert first.json()["metric"] == "price" and first.json()["count"] >= 1
    second = api.get(f"/v1/products/{tracked['id']}/history", params={"metric": "price"},
                     headers=auth(seller))
    assert second.headers["x-cache"] == "hit" and second.json() == first.json()
    bad = api.get(f"/v1/products/{tracked['id']}/history", params={"metric": "colour"},
                  headers=auth(seller))
    assert bad.status_code == 422
    refresh = api.post(f"/v1/products/{tracked['id']}/refresh", headers=auth(seller))
    assert refresh.status_code == 202
    again = api.post(f"/v1/products/{tracked['id']}/refresh", headers=auth(seller))
    assert again.status_code == 429 and int(again.headers["retry-after"]) > 0


def test_patch_rejects_null_pause_and_resets_thresholds(api: httpx.Client,
                                                        asins: list[str]) -> None:
    seller = new_seller(api)
    tracked = api.post("/v1/products", json={"asin": asins[5], "thresholds":
                                             {"price_change_pct": 3}}, headers=auth(seller))
    assert tracked.json()["thresholds"]["price_change_pct"] == 3
    url = f"/v1/products/{tracked.json()['id']}"
    assert api.patch(url, json={"is_paused": None}, headers=auth(seller)).status_code == 422
    paused = api.patch(url, json={"is_paused": True, "alias": "paused one"}, headers=auth(seller))
    assert paused.status_code == 200 and paused.json()["is_paused"] is True
    reset = api.patch(url, json={"thresholds": None}, headers=auth(seller))
    assert reset.json()["thresholds"]["price_change_pct"] == 10.0
    assert api.patch(url, json={"colour": "red"}, headers=auth(seller)).status_code == 422


def test_one_unusable_product_does_not_sink_its_batch(stack: Stack, asins: list[str]) -> None:
    from amazon_pilot.platform.db import transaction
    from amazon_pilot.tracking.store import upsert_product

    with transaction() as conn:
        good = [upsert_product(conn, a, "com")[0] for a in asins[2:4]]
        odd = upsert_product(conn, "ZZ00000000", "com")[0]  # fits the column, not an ASIN
    at = datetime(2026, 10, 2, 6, tzinfo=UTC)
    _, _, key = fetch_job([*good, odd], "schedule", at)
    result = run_fetch([*good, odd], "schedule", at, key)
    assert result["stored"] == 2 and result["not_found"] == 1
    assert scalar("SELECT last_fetch_status FROM products WHERE id = :p", p=odd) == "not_found"


def test_malformed_fetch_jobs_go_to_the_dlq_with_their_reason(stack: Stack) -> None:
    """A fetch payload that does not fit FetchPayload can never succeed: the DLQ at once.
    That includes a test-only time-travel day, which production payloads never carry."""
    stamp = time.time_ns()
    captured_at = datetime.now(UTC).isoformat()
    bad = {
        f"bad-ids-{stamp}": ({"product_ids": ["one"], "captured_at": captured_at},
                             "fetch_products: bad payload: product_ids.0"),
        f"time-travel-{stamp}": ({"product_ids": [1], "captured_at": captured_at,
                                  "sandbox_date": "2026-01-01"},
                                 "fetch_products: bad payload: sandbox_date"),
    }
    sqs = stack.client("sqs")
    for key, (payload, _) in bad.items():
        body = json.dumps({"type": "fetch_products", "key": key, "payload": payload})
        sqs.send_message(QueueUrl=stack.queue_urls["DefaultQueue"], MessageBody=body)

    def dead() -> dict[str, str] | None:
        found = {json.loads(m["Body"])["key"]: m["MessageAttributes"]["failure_reason"]
                 ["StringValue"] for m in _dlq_messages(stack, "DefaultDLQ")
                 if json.loads(m["Body"]).get("key") in bad}
        return found if len(found) == len(bad) else None

    reasons = wait_for(dead, 60, "both malformed fetch jobs in the default DLQ")
    for key, (_, reason) in bad.items():
        assert reasons[key].startswith(reason), reasons[key]
    assert scalar("SELECT count(*) FROM scrape_runs WHERE idempotency_key = ANY(:k)",
                  k=list(bad)) == 0  # refused before any work

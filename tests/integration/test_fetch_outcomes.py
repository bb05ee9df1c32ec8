"""What a fetch makes of items that are not simply one good page per product (issue 14,
items 4, 5 and 7), through the running stack, the Apify stand-in and apify-client:

- two items for one product in one run: one is chosen by the documented rule
  (docs/actor-formats.md), and history, `latest` and the alerts all come from it;
- a robot check or a malformed item is a failed fetch of that product, retried with
  back-off a bounded number of times and recorded on each run, never "not found";
- a fetch job whose every attempt failed reaches the DLQ with its reason, and the
  product says so instead of staying `pending`.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine, transaction
from amazon_pilot.tracking.service import fetch_job, run_fetch
from amazon_pilot.tracking.store import insert_tracked, upsert_product
from pilot_dev.runtime.stack import Stack
from pilot_dev.standins.apify_catalog import demo_asins
from tests.integration.replay import FIXTURES, replaying
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import _dlq_messages, wait_for
from tests.integration.test_tracking import wait_queues_idle

RECORDED = json.loads((FIXTURES / "replay" / "recorded-run.json").read_text())


def _rows(sql: str, **params: Any) -> list[dict[str, Any]]:
    with get_engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def _track(seller: dict[str, str], asin: str) -> tuple[int, str]:
    with transaction() as conn:
        product_id, _ = upsert_product(conn, asin, "com")
        tracked = insert_tracked(conn, seller["id"], product_id, None, {})  # type: ignore[arg-type]
    return product_id, str(tracked)


def _export(tmp_path: Path, name: str, items: list[Any]) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(items))
    return path


def test_two_items_for_one_product_give_one_observation_everywhere(
        api: httpx.Client, stack: Stack, tmp_path: Path) -> None:
    asin = "B0DUPLITM1"
    url = f"https://www.amazon.com/dp/{asin}"
    full = dict(RECORDED[0], url=url, asin=asin, price=44.99)  # a real axesso page
    # the copy an actor also emitted: the same page, nearly empty, a nonsense price
    partial = {"statusCode": 200, "statusMessage": "FOUND", "url": url, "asin": asin,
               "title": full["title"], "price": 0.01}
    seller = new_seller(api)
    product_id, tracked = _track(seller, asin)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    seen = []
    for hour, items in enumerate(([full], [partial, full], [dict(full, price=45.99), partial])):
        at = start + timedelta(hours=hour)
        with replaying(stack, _export(tmp_path, f"run{hour}", items)):
            result = run_fetch([product_id], "schedule", at, fetch_job([product_id],
                                                                       "schedule", at)[2])
        seen.append(result)
    assert [r["duplicates"] for r in seen] == [0, 1, 1]
    history = [float(r["price"]) for r in _rows(
        "SELECT price FROM snapshots WHERE product_id = :p ORDER BY captured_at", p=product_id)]
    print(f"two items per run: history {history}")
    assert history == [44.99, 44.99, 45.99]  # the complete item, wherever it stood
    detail = api.get(f"/v1/products/{tracked}", headers=auth(seller)).json()
    assert detail["latest"]["price"] == 45.99  # the same item as history
    alerts = api.get("/v1/alerts", params={"product_id": tracked, "type": "price_change"},
                     headers=auth(seller)).json()["items"]
    assert all(a["new_value"] != "0.01" and (a["change_pct"] or 0) > -50 for a in alerts), alerts
    run = _rows("SELECT problems FROM scrape_runs WHERE id = :r",
                r=seen[1]["scrape_run_id"])[0]["problems"]
    (duplicate,) = [p for p in run if p["kind"] == "duplicate"]
    assert duplicate["index"] == 0  # the nearly empty copy is the one left out
    assert "most complete" in duplicate["reason"]


def _send_fetch(stack: Stack, product_ids: list[int], trigger: str) -> str:
    at = datetime.now(UTC).replace(microsecond=0)
    job_type, payload, key = fetch_job(product_ids, trigger, at)
    stack.client("sqs").send_message(
        QueueUrl=stack.queue_urls["DefaultQueue"],
        MessageBody=json.dumps({"type": job_type, "key": key, "payload": payload}))
    return key


def _attempts(key: str) -> list[dict[str, Any]]:
    return _rows(
        "SELECT r.idempotency_key AS key, r.status, rp.product_id, rp.outcome, rp.attempt,"
        " rp.retry_at, rp.reason FROM scrape_runs r JOIN scrape_run_products rp"
        " ON rp.scrape_run_id = r.id WHERE r.idempotency_key LIKE :k || '%'"
        " ORDER BY rp.attempt, rp.product_id", k=key)


def test_a_robot_check_is_a_failed_fetch_retried_then_recorded_never_not_found(
        api: httpx.Client, stack: Stack, tmp_path: Path) -> None:
    known, fresh = "B0ROBOTCK1", "B0ROBOTCK2"
    seller = new_seller(api)
    ids = {a: _track(seller, a) for a in (known, fresh)}
    good = dict(RECORDED[0], url=f"https://www.amazon.com/dp/{known}", asin=known)
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    with replaying(stack, _export(tmp_path, "good", [good])):
        run_fetch([ids[known][0]], "schedule", first, fetch_job([ids[known][0]], "schedule",
                                                                first)[2])
    before = api.get(f"/v1/products/{ids[known][1]}", headers=auth(seller)).json()
    assert before["fetch_status"] == "ok"

    robot = [{"statusCode": 200, "url": f"https://www.amazon.com/dp/{a}", "asin": a,
              "title": "Robot Check"} for a in (known, fresh)]
    with replaying(stack, _export(tmp_path, "robot", robot)):
        key = _send_fetch(stack, [ids[known][0], ids[fresh][0]], "schedule")

        def settled() -> list[dict[str, Any]] | None:
            rows = _attempts(key)
            return rows if len(rows) == 6 and all(r["status"] == "succeeded"
                                                   for r in rows) else None

        rows = wait_for(settled, 60, "three attempts at both products")
    print("robot check attempts:", [(r["attempt"], r["outcome"], r["retry_at"] is not None)
                                    for r in rows])
    assert [(r["attempt"], r["outcome"]) for r in rows] == [
        (1, "unusable"), (1, "unusable"), (2, "unusable"), (2, "unusable"),
        (3, "unusable"), (3, "unusable")]
    assert [r["retry_at"] is not None for r in rows] == [True, True, True, True, False, False]
    after = api.get(f"/v1/products/{ids[known][1]}", headers=auth(seller)).json()
    assert after["fetch_status"] == "ok"  # never not_found: its data stands
    assert after["latest"] == before["latest"] and after["as_of"] == before["as_of"]
    assert "Robot Check" in after["fetch_error"] and "3 attempt" in after["fetch_error"]
    never = api.get(f"/v1/products/{ids[fresh][1]}", headers=auth(seller)).json()
    assert never["fetch_status"] == "failed" and "Robot Check" in never["fetch_error"]
    run = api.get("/v1/scrape-runs", headers=auth(seller)).json()["items"]
    assert run[0]["status"] == "succeeded"


def test_a_retry_that_gets_the_page_stores_it_and_clears_nothing_else(
        api: httpx.Client, stack: Stack) -> None:
    asin = demo_asins("headphones", 30)[-3]
    seller = new_seller(api)
    product_id, tracked = _track(seller, asin)
    wait_queues_idle(stack)
    standin = stack.standins["apify"]
    # item 0 of the next run becomes a bare robot-check HTML page: no item for the product
    standin.inject("malformed_items", count=1)
    key = _send_fetch(stack, [product_id], "refresh")

    def stored() -> list[dict[str, Any]] | None:
        rows = _attempts(key)
        return rows if any(r["outcome"] == "stored" for r in rows) else None

    rows = wait_for(stored, 60, "the retry to store the page")
    assert [(r["attempt"], r["outcome"]) for r in rows] == [(1, "no_item"), (2, "stored")]
    detail = api.get(f"/v1/products/{tracked}", headers=auth(seller)).json()
    assert detail["fetch_status"] == "ok" and detail["fetch_error"] is None
    assert detail["latest"]["price"] is not None


def test_a_fetch_whose_every_attempt_failed_says_why_on_the_product_and_in_the_dlq(
        api: httpx.Client, stack: Stack) -> None:
    # an ASIN no other test tracks: products are shared, and one fetched before is `ok`
    # with the error beside it, not `failed` (every run below fails, so any ASIN will do)
    asin = "B0" + uuid.uuid4().hex[:8].upper()
    seller = new_seller(api)
    product_id, tracked = _track(seller, asin)
    wait_queues_idle(stack)
    stack.standins["apify"].inject("run_failed", count=3)  # all three receives
    key = _send_fetch(stack, [product_id], "add")

    def dead() -> list[dict[str, Any]]:
        return list({m["MessageId"]: m for m in _dlq_messages(stack, "DefaultDLQ")
                     if key in m["Body"]}.values())

    started = time.monotonic()
    (message,) = wait_for(dead, 90, "the fetch in the default DLQ")
    reason = message["MessageAttributes"]["failure_reason"]["StringValue"]
    print(f"dead-lettered after {time.monotonic() - started:.1f} s: {reason}")
    assert reason.startswith("fetch_products: RetryableJobError: Apify run")
    assert "FAILED" in reason and reason.endswith("(after 3 attempts)")
    detail = api.get(f"/v1/products/{tracked}", headers=auth(seller)).json()
    assert detail["fetch_status"] == "failed"  # not `pending` forever
    assert "ended FAILED" in detail["fetch_error"]
    runs = _rows("SELECT status, error, attempts FROM scrape_runs WHERE idempotency_key = :k",
                 k=key)
    assert runs[0]["status"] == "failed" and runs[0]["attempts"] == 3 and runs[0]["error"]


def test_ingest_stores_and_judges_one_observation_per_product(
        api: httpx.Client, stack: Stack) -> None:
    """Whoever calls ingest with two observations of one product (the import tool, a
    future adapter): the first is stored, and `latest` and the alerts come from it too."""
    from amazon_pilot.domain.snapshot import Snapshot
    from amazon_pilot.tracking.service import ingest

    asin = "B0DUPLITM2"
    seller = new_seller(api)
    product_id, tracked = _track(seller, asin)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with transaction() as conn:
        ingest(conn, at - timedelta(hours=1), None,
               [(product_id, Snapshot(asin=asin, title="Kettle", price=44.99))])
        ingest(conn, at, None, [(product_id, Snapshot(asin=asin, title="Kettle", price=44.99)),
                                (product_id, Snapshot(asin=asin, title="Kettle", price=0.01))])
    history = [float(r["price"]) for r in _rows(
        "SELECT price FROM snapshots WHERE product_id = :p ORDER BY captured_at", p=product_id)]
    detail = api.get(f"/v1/products/{tracked}", headers=auth(seller)).json()
    alerts = api.get("/v1/alerts", params={"product_id": tracked},
                     headers=auth(seller)).json()["items"]
    assert history == [44.99, 44.99] and detail["latest"]["price"] == 44.99
    assert not [a for a in alerts if a["type"] == "price_change"], alerts


def test_a_replayed_batch_writes_and_judges_only_what_it_did_not_store_before(
        api: httpx.Client, stack: Stack) -> None:
    """A retried batch carrying one product stored by the first try and one the first try
    lacked: the stored one gets no second row and no second alert; the other goes in."""
    from amazon_pilot.domain.snapshot import Snapshot
    from amazon_pilot.tracking.service import ingest

    seller = new_seller(api)
    kettle, tracked = _track(seller, "B0REPLAYA1")
    mug, _ = _track(seller, "B0REPLAYB2")
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with transaction() as conn:
        ingest(conn, at - timedelta(hours=1), None,
               [(kettle, Snapshot(asin="B0REPLAYA1", title="Kettle", price=44.99))])
        ingest(conn, at, None, [(kettle, Snapshot(asin="B0REPLAYA1", title="Kettle", price=20.0))])
    with transaction() as conn:
        again = ingest(conn, at, None, [
            (kettle, Snapshot(asin="B0REPLAYA1", title="Kettle", price=20.0)),
            (mug, Snapshot(asin="B0REPLAYB2", title="Mug", price=9.99))])
    stored = _rows("SELECT product_id, price FROM snapshots WHERE product_id IN (:k, :m)"
                   " ORDER BY product_id, captured_at", k=kettle, m=mug)
    alerts = api.get("/v1/alerts", params={"product_id": tracked},
                     headers=auth(seller)).json()["items"]
    assert (again.inserted, again.skipped) == (1, 1)
    assert [(r["product_id"], float(r["price"])) for r in stored] == [
        (kettle, 44.99), (kettle, 20.0), (mug, 9.99)]
    assert len([a for a in alerts if a["type"] == "price_change"]) == 1, alerts


def test_title_and_brand_move_with_a_found_observation_and_stay_when_missing(
        api: httpx.Client, stack: Stack) -> None:
    """A found product's title and brand (read by the list from its `latest`) replace the
    shown ones, a found page without them keeps the old ones, and a product reported
    missing keeps both with its `latest`."""
    from amazon_pilot.domain.snapshot import Snapshot
    from amazon_pilot.tracking.service import ingest

    asin = "B0TITLEMV1"
    seller = new_seller(api)
    product_id, tracked = _track(seller, asin)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)

    def shown() -> tuple[Any, ...]:
        detail = api.get(f"/v1/products/{tracked}", headers=auth(seller)).json()
        listed = next(p for p in api.get("/v1/products", headers=auth(seller)).json()["items"]
                      if p["id"] == tracked)
        assert (listed["title"], listed["brand"]) == (detail["title"], detail["brand"])
        return (detail["title"], detail["brand"], detail["fetch_status"],
                detail["latest"]["price"] if detail["latest"] else None)

    observations = [
        Snapshot(asin=asin, title="Kettle 1.7 L", brand="Acme", price=20.0),
        Snapshot(asin=asin, title="Kettle 1.7 L, steel", brand="Acme Home", price=21.0),
        Snapshot(asin=asin, title=None, brand=None, price=22.0),  # a page without them
        Snapshot(asin=asin, found=False),  # reported missing
    ]
    seen = []
    for hour, snap in enumerate(observations):
        with transaction() as conn:
            ingest(conn, at + timedelta(hours=hour), None, [(product_id, snap)])
        seen.append(shown())
    assert seen == [("Kettle 1.7 L", "Acme", "ok", 20.0),
                    ("Kettle 1.7 L, steel", "Acme Home", "ok", 21.0),
                    ("Kettle 1.7 L, steel", "Acme Home", "ok", 22.0),
                    ("Kettle 1.7 L, steel", "Acme Home", "not_found", 22.0)]


def test_an_alert_belongs_to_its_tracking_and_goes_with_it(
        api: httpx.Client, stack: Stack) -> None:
    """One key ties an alert to its tracking, its seller and its product (migration 0022):
    an alert naming another seller's or another product's tracking is refused, stopping a
    tracking drops its alerts, deleting a seller drops theirs, and a tracked product
    cannot be deleted from under them."""
    import psycopg.errors
    import sqlalchemy.exc

    from amazon_pilot.domain.snapshot import Snapshot
    from amazon_pilot.tracking.service import ingest

    mine, other = new_seller(api), new_seller(api)
    kettle, tracked = _track(mine, "B0ALERTKY1")
    mug, others = _track(other, "B0ALERTKY2")
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    for hour, price in enumerate((40.0, 20.0)):  # a price drop: one alert for each seller
        with transaction() as conn:
            ingest(conn, at + timedelta(hours=hour), None, [
                (kettle, Snapshot(asin="B0ALERTKY1", price=price)),
                (mug, Snapshot(asin="B0ALERTKY2", price=price))])

    def alerts(seller: dict[str, str], tracking: str) -> list[str]:
        return [a["type"] for a in api.get("/v1/alerts", params={"product_id": tracking},
                                           headers=auth(seller)).json()["items"]]

    assert alerts(mine, tracked) == ["price_change"] and alerts(other, others) == ["price_change"]
    wrong = [  # (user, tracking, product) that do not belong together
        (other["id"], tracked, kettle), (mine["id"], tracked, mug)]
    for user, tracking, product in wrong:
        try:
            with transaction() as conn:
                conn.execute(text(
                    "INSERT INTO alerts (user_id, tracked_product_id, product_id, type,"
                    " severity, message, snapshot_captured_at)"
                    " VALUES (:u, :t, :p, 'price_change', 'info', 'x', now())"),
                    {"u": user, "t": tracking, "p": product})
        except sqlalchemy.exc.IntegrityError as error:
            assert isinstance(error.orig, psycopg.errors.ForeignKeyViolation)
        else:
            raise AssertionError(f"an alert of {tracking} was stored for {user}, {product}")
    try:  # a tracked product stays while it is tracked, its history and alerts with it
        with transaction() as conn:
            conn.execute(text("DELETE FROM products WHERE id = :p"), {"p": kettle})
    except sqlalchemy.exc.IntegrityError:
        pass
    else:
        raise AssertionError("a tracked product was deleted")
    assert alerts(mine, tracked) == ["price_change"]

    assert api.delete(f"/v1/products/{tracked}", headers=auth(mine)).status_code == 204
    assert _rows("SELECT id FROM alerts WHERE tracked_product_id = :t", t=tracked) == []
    with transaction() as conn:
        conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": other["id"]})
    assert _rows("SELECT id FROM alerts WHERE user_id = :u OR product_id = :p",
                 u=other["id"], p=mug) == []

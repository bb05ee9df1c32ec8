"""Scrape runs through the running stack: recorded exports replayed by the Apify stand-in
(APIFY_REPLAY), fetch jobs on the real queues, and what sellers and administrators see of
each run in GET /v1/scrape-runs.

tests/fixtures/runs/README.md lists what each recorded item exercises."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from amazon_pilot.tracking.service import fetch_job
from pilot_dev.runtime.stack import Stack
from tests.integration.replay import FIXTURES, replaying
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import wait_for
from tests.integration.test_tracking import scalar

FIRST = FIXTURES / "runs" / "first-run.json"
SECOND = FIXTURES / "runs" / "second-run.json"
MINE = ["B0RUNOK001", "B0RUNVAR02", "B0RUNGONE3", "B0RUNDUP04", "B0RUNBOT05"]
THEIRS = ["B0RUNOK001", "B0RUNOTH07"]  # the other seller shares B0RUNOK001


def _tracked(api: httpx.Client, seller: dict[str, str]) -> dict[str, dict[str, Any]]:
    page = api.get("/v1/products", params={"limit": 500}, headers=auth(seller)).json()
    return {p["asin"]: p for p in page["items"]}


def _wait_fetched(api: httpx.Client, seller: dict[str, str], asins: list[str]) -> None:
    def done() -> bool:
        products = _tracked(api, seller)
        return all(products[a]["fetch_status"] != "pending" for a in asins)

    wait_for(done, 60, f"the first fetch of {asins}")


def _product_ids(asins: list[str]) -> list[int]:
    return [int(scalar("SELECT id FROM products WHERE asin = :a AND marketplace = 'com'",
                       a=a)) for a in asins]


def _run_on_the_queue(stack: Stack, product_ids: list[int], captured_at: datetime) -> str:
    """A scheduled fetch job through SQS and a worker, as the daily planner sends it;
    returns its scrape run's id once it has finished."""
    job, payload, key = fetch_job(product_ids, "schedule", captured_at)
    body = json.dumps({"type": job, "key": key, "payload": payload})
    stack.client("sqs").send_message(QueueUrl=stack.queue_urls["DefaultQueue"],
                                     MessageBody=body)

    def finished() -> str | None:
        status = scalar("SELECT status FROM scrape_runs WHERE idempotency_key = :k", k=key)
        return status if status in ("succeeded", "failed", "timed_out") else None

    assert wait_for(finished, 60, f"the run of {key}") == "succeeded"
    return str(scalar("SELECT id FROM scrape_runs WHERE idempotency_key = :k", k=key))


def _alerts(api: httpx.Client, seller: dict[str, str], kind: str) -> list[dict[str, Any]]:
    page = api.get("/v1/alerts", params={"type": kind, "limit": 500},
                   headers=auth(seller)).json()
    return list(page["items"])


@pytest.fixture(scope="module")
def world(api: httpx.Client, stack: Stack) -> dict[str, Any]:
    """Two sellers' products fetched by a normal recorded run, then the harsh one."""
    me, other = new_seller(api), new_seller(api)
    admin = new_seller(api, role="admin")
    with replaying(stack, FIRST):
        added = api.post("/v1/products/bulk", json={"items": [{"asin": a} for a in MINE]},
                         headers=auth(me))
        assert added.status_code == 200 and added.json()["created"] == len(MINE), added.text
        _wait_fetched(api, me, MINE)
        for asin in THEIRS:
            assert api.post("/v1/products", json={"asin": asin},
                            headers=auth(other)).status_code == 202
        _wait_fetched(api, other, THEIRS)
    before = _tracked(api, me)
    ids = _product_ids(sorted(set(MINE) | set(THEIRS)))
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    with replaying(stack, SECOND):
        run_id = _run_on_the_queue(stack, ids, at)
    return {"me": me, "other": other, "admin": admin, "before": before, "ids": ids,
            "at": at, "run_id": run_id, "after": _tracked(api, me)}


def test_every_returned_page_lands_on_the_product_that_was_asked_for(
    world: dict[str, Any],
) -> None:
    before, after = world["before"], world["after"]
    assert all(p["fetch_status"] == "ok" for p in before.values())
    assert after["B0RUNOK001"]["latest"]["price"] == 22.49  # never the url-less 99.99 item
    assert after["B0RUNDUP04"]["latest"]["price"] == 12.99  # the first of two items
    # the variation Amazon served is stored on the product that was asked for
    variation = after["B0RUNVAR02"]
    assert variation["fetch_status"] == "ok" and variation["latest"]["price"] == 29.99
    assert variation["as_of"] != before["B0RUNVAR02"]["as_of"]
    details = scalar("SELECT s.details FROM snapshots s JOIN products p ON p.id = s.product_id"
                     " WHERE p.asin = 'B0RUNVAR02' AND s.captured_at = :at", at=world["at"])
    assert details["served_asin"] == "B0RUNVAR2X"
    assert any("B0RUNVAR2X" in w for w in details["parse_warnings"])
    assert scalar("SELECT count(*) FROM products WHERE asin = 'B0RUNVAR2X'") == 0


def test_only_the_404_page_is_not_found_and_a_robot_check_changes_nothing(
    world: dict[str, Any],
) -> None:
    before, after = world["before"], world["after"]
    assert {a for a, p in after.items() if p["fetch_status"] == "not_found"} == {"B0RUNGONE3"}
    robot_checked = after["B0RUNBOT05"]
    assert robot_checked["fetch_status"] == "ok"
    assert robot_checked["latest"] == before["B0RUNBOT05"]["latest"]
    assert robot_checked["as_of"] == before["B0RUNBOT05"]["as_of"]
    assert robot_checked["title"] == "Trailhead Glass Bottle 20 oz"
    assert scalar("SELECT count(*) FROM snapshots s JOIN products p ON p.id = s.product_id"
                  " WHERE p.asin = 'B0RUNBOT05'") == 1


def test_the_redirect_alert_fires_once_per_product(api: httpx.Client, stack: Stack,
                                                   world: dict[str, Any]) -> None:
    me, other = world["me"], world["other"]
    [alert] = _alerts(api, me, "listing_redirected")
    assert alert["asin"] == "B0RUNVAR02" and alert["new_value"] == "B0RUNVAR2X"
    assert alert["severity"] == "warning" and "B0RUNVAR2X" in alert["message"]
    assert _alerts(api, other, "listing_redirected") == []  # not their product
    # the next run still gets the variation: stored again, no second alert
    with replaying(stack, SECOND):
        _run_on_the_queue(stack, world["ids"], world["at"] + timedelta(hours=1))
    assert len(_alerts(api, me, "listing_redirected")) == 1
    assert scalar("SELECT count(*) FROM snapshots s JOIN products p ON p.id = s.product_id"
                  " WHERE p.asin = 'B0RUNVAR02' AND s.details->>'served_asin' = 'B0RUNVAR2X'"
                  ) == 2


def test_an_administrator_sees_the_whole_run_and_every_problem(api: httpx.Client,
                                                               world: dict[str, Any]) -> None:
    admin = auth(world["admin"])
    listed = api.get("/v1/scrape-runs", params={"limit": 200}, headers=admin)
    assert listed.status_code == 200, listed.text
    run = next(r for r in listed.json()["items"] if r["id"] == world["run_id"])
    assert run["scope"] == "all" and run["trigger"] == "schedule"
    assert run["status"] == "succeeded" and run["data_source"] == "sandbox"
    counts = {k: run[k] for k in ("requested", "returned", "attributed", "not_found",
                                  "no_data", "unattributed", "duplicates", "malformed",
                                  "problem_count")}
    assert counts == {"requested": 6, "returned": 11, "attributed": 5, "not_found": 1,
                      "no_data": 1, "unattributed": 4, "duplicates": 1, "malformed": 1,
                      "problem_count": 8}
    assert run["duration_s"] is not None and run["cost_usd"] == pytest.approx(11 * 0.0005)
    detail = api.get(f"/v1/scrape-runs/{world['run_id']}", headers=admin).json()
    problems = detail["problems"]
    assert sorted(p["kind"] for p in problems) == [
        "duplicate", "no_item", "redirected", "unattributed", "unattributed", "unattributed",
        "unattributed", "unusable"]
    # each item's problem names its place in the dataset (the replay orders items by the
    # requested URLs, then the ones that name none)
    assert all(0 <= p["index"] < 11 for p in problems if p["kind"] != "no_item")
    unattributed = {p["reason"] for p in problems if p["kind"] == "unattributed"}
    assert any("unknown format" in r and "product_url" in r for r in unattributed)
    assert any("HTML page" in r for r in unattributed)
    assert "an empty item: no field at all" in unattributed
    assert any("B0RUNOK001" in r and "no product URL" in r for r in unattributed)
    by_asin = {p["asin"]: p for p in problems if p["kind"] in ("redirected", "unusable")}
    assert by_asin["B0RUNVAR02"]["item_asin"] == "B0RUNVAR2X"
    assert "HTML page" in by_asin["B0RUNBOT05"]["reason"]
    outcomes = {p["asin"]: (p["outcome"], p["served_asin"], p["duplicates"])
                for p in detail["products"]}
    assert outcomes == {
        "B0RUNOK001": ("stored", None, 0), "B0RUNVAR02": ("stored", "B0RUNVAR2X", 0),
        "B0RUNGONE3": ("not_found", None, 0), "B0RUNDUP04": ("stored", None, 1),
        "B0RUNBOT05": ("unusable", None, 0), "B0RUNOTH07": ("stored", None, 0)}
    assert detail["cost_per_product_usd"] == pytest.approx(11 * 0.0005 / 6, abs=1e-6)


def test_a_seller_sees_only_their_products_in_runs(api: httpx.Client,
                                                    world: dict[str, Any]) -> None:
    me, other = auth(world["me"]), auth(world["other"])
    mine = api.get("/v1/scrape-runs", headers=me).json()
    assert {r["scope"] for r in mine["items"]} == {"yours"}
    assert {r["trigger"] for r in mine["items"]} >= {"add", "schedule"}
    run = next(r for r in mine["items"] if r["id"] == world["run_id"])
    assert {k: run[k] for k in ("requested", "returned", "attributed", "not_found", "no_data",
                                "unattributed", "duplicates", "malformed")} == {
        "requested": 5, "returned": 6, "attributed": 4, "not_found": 1, "no_data": 1,
        "unattributed": None, "duplicates": 1, "malformed": 1}
    assert run["cost_usd"] == pytest.approx(11 * 0.0005 * 5 / 6, abs=1e-6)  # their share
    detail = api.get(f"/v1/scrape-runs/{world['run_id']}", headers=me)
    text = detail.text
    assert "B0RUNOTH07" not in text and "Summit" not in text  # the other seller's product
    body = detail.json()
    assert sorted(p["asin"] for p in body["products"]) == sorted(MINE)
    tracked = _tracked(api, world["me"])
    assert {p["asin"]: p["product_id"] for p in body["products"]} == {
        a: tracked[a]["id"] for a in MINE}
    assert sorted(p["kind"] for p in body["problems"]) == ["duplicate", "no_item", "redirected"]
    # the other seller: their two products of the same run, none of mine
    theirs = api.get(f"/v1/scrape-runs/{world['run_id']}", headers=other)
    assert theirs.status_code == 200
    assert sorted(p["asin"] for p in theirs.json()["products"]) == THEIRS
    assert theirs.json()["requested"] == 2 and theirs.json()["problems"] == []
    for asin in set(MINE) - set(THEIRS):
        assert asin not in theirs.text
    # my first fetch requested B0RUNOK001 too: they see it, with only that product
    listed = api.get("/v1/scrape-runs", params={"limit": 200}, headers=other).json()
    adds = [r for r in listed["items"] if r["trigger"] == "add"]
    assert sorted(r["requested"] for r in adds) == [1, 1]
    for run in listed["items"]:
        one = api.get(f"/v1/scrape-runs/{run['id']}", headers=other)
        for asin in set(MINE) - set(THEIRS):
            assert asin not in one.text


def test_runs_of_other_sellers_and_unknown_ids_are_404(api: httpx.Client,
                                                        world: dict[str, Any]) -> None:
    stranger = auth(new_seller(api))
    assert api.get("/v1/scrape-runs", headers=stranger).json() == {
        "items": [], "total": 0, "limit": 50, "offset": 0}
    missing = api.get(f"/v1/scrape-runs/{world['run_id']}", headers=stranger)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    nonsense = api.get("/v1/scrape-runs/not-a-uuid", headers=stranger)
    assert nonsense.status_code == 422
    assert api.get("/v1/scrape-runs").status_code == 401
    assert api.get("/v1/scrape-runs", params={"limit": 0}, headers=stranger).status_code == 422


def test_a_dataset_of_ten_thousand_items(api: httpx.Client, stack: Stack,
                                         tmp_path: Path) -> None:
    """The run finishes, the good item lands, the product whose item is garbage keeps
    what is stored, and every problem is counted on the run (the list is bounded)."""
    seller = new_seller(api)
    good, kept = "B0RUNBIG01", "B0RUNBIG02"
    first = json.loads(FIRST.read_text())[0]
    small = tmp_path / "small.json"
    small.write_text(json.dumps([
        dict(first, asin=asin, url=f"https://www.amazon.com/dp/{asin}", price=price)
        for asin, price in ((good, 9.99), (kept, 14.99))]))
    with replaying(stack, small):
        for asin in (good, kept):
            api.post("/v1/products", json={"asin": asin}, headers=auth(seller))
        _wait_fetched(api, seller, [good, kept])
    before = _tracked(api, seller)
    page = dict(first, asin=good, url=f"https://www.amazon.com/dp/{good}", price=10.49)
    items: list[Any] = [page] + [dict(page, price=11.0)] * 4999
    items += [{"url": f"https://www.amazon.com/dp/{kept}", "error": "page_blocked"}]
    items += ["<html><title>Robot Check</title></html>", {}] * 2500
    big = tmp_path / "big.json"
    big.write_text(json.dumps(items))
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=5)
    started = time.monotonic()
    with replaying(stack, big):
        run_id = _run_on_the_queue(stack, _product_ids([good, kept]), at)
    assert time.monotonic() - started < 60
    after = _tracked(api, seller)
    assert after[good]["latest"]["price"] == 10.49
    assert after[kept]["latest"] == before[kept]["latest"]
    assert after[kept]["fetch_status"] == "ok" and after[kept]["as_of"] == before[kept]["as_of"]
    admin = auth(new_seller(api, role="admin"))
    run = api.get(f"/v1/scrape-runs/{run_id}", headers=admin).json()
    assert (run["returned"], run["attributed"], run["duplicates"], run["malformed"],
            run["unattributed"], run["no_data"]) == (10_001, 1, 4999, 1, 5000, 1)
    assert run["problem_count"] == 10_001 and len(run["problems"]) == 100


def test_pilot_runs_reads_the_runs_from_the_database(world: dict[str, Any],
                                                      database_url: str) -> None:
    def pilot(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pilot_dev.cli", "runs", *args,
                               "--database-url", database_url],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listing = pilot("--limit", "200")
    [line] = [row for row in listing.splitlines() if world["run_id"] in row]
    # started (date, time), trigger, status, requested, returned, attributed, 404, no data,
    # unattributed, duplicates, malformed, duration, cost, source, id
    fields = line.split()
    assert fields[2:12] == ["schedule", "succeeded", "6", "11", "5", "1", "1", "4", "1", "1"]
    assert fields[13] == "$0.0055" and fields[14] == "sandbox"
    detail = pilot(world["run_id"])
    assert "B0RUNVAR02 amazon.com     stored     served B0RUNVAR2X" in detail
    assert "problems (8):" in detail and "unknown format" in detail
    as_json = json.loads(pilot(world["run_id"], "--json"))
    assert as_json["unattributed"] == 4 and len(as_json["problems"]) == 8

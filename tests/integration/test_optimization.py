"""Listing score, suggestions and experiments through the running local stack and the
OpenAI stand-in, on hand-built history (60 daily snapshots per product) stored with
tracking.service.ingest."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from amazon_pilot.competitors import store as cdb
from amazon_pilot.domain.listing_score import WEIGHTS
from amazon_pilot.domain.snapshot import Availability, Snapshot, SubcategoryRank
from amazon_pilot.platform.db import transaction
from amazon_pilot.tracking.service import ingest
from amazon_pilot.tracking.store import insert_tracked, upsert_product
from pilot_dev.runtime.stack import Stack
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import wait_for

DAYS = 60
CHANGE_DAY = 30
TYPES = {"title", "pricing", "description", "images"}


def fresh_asin(r: random.Random) -> str:
    return "B0" + "".join(r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))


def snapshot(asin: str, brand: str, title: str, bsr: float, price: float, reviews: int,
             bullets: list[str], description: str | None, images: int, video: int = 0
             ) -> Snapshot:
    return Snapshot(
        asin=asin, brand=brand, title=title, price=price, currency="USD",
        buy_box_price=price, buy_box_seller=brand, availability=Availability.IN_STOCK,
        rating=4.4, review_count=reviews, bsr_rank=max(1, round(bsr)),
        bsr_category="Kitchen & Dining",
        subcategory_ranks=[SubcategoryRank(max(1, round(bsr / 20)), "Water Bottles")],
        bullet_points=bullets, description=description,
        image_urls=[f"https://m.media-amazon.com/images/I/{asin}-{i}.jpg" for i in range(images)],
        image_count=images, video_count=video, data_source="sandbox",
    )


COMPETITOR_BULLETS = [
    "LEAK PROOF STRAW LID: the locking straw lid keeps bags dry, and the wide mouth takes "
    "ice cubes and cleans easily by hand or in the dishwasher.",
    "DOUBLE WALL VACUUM INSULATION: stainless steel keeps drinks cold for 24 hours and hot "
    "for 12 hours without sweating on the outside.",
    "BPA FREE MATERIALS: food-grade 18/8 stainless steel with a powder coat finish that "
    "grips well and resists scratches on hikes and at the gym.",
    "CARRY HANDLE: the flexible handle fits two fingers and clips to a backpack for travel.",
]


def competitor(asin: str, j: int, bsr: float, day: int) -> Snapshot:
    brands = ["IronFlask", "ThermoMax", "AquaCore", "PeakSip"]
    title = (f"{brands[j]} Insulated Water Bottle with Straw Lid, Stainless Steel Vacuum "
             f"Double Wall, Leak Proof, BPA Free, {24 + 8 * j} oz")
    return snapshot(asin, brands[j], title, bsr, 24.99 + 3 * j, 4000 + 900 * j + 6 * day,
                    COMPETITOR_BULLETS, "A bottle for every day. " * 30, 7, video=1)


def noise(rng: np.random.Generator, sd: float = 0.05) -> np.ndarray:
    """Pure noise whose before and after windows have exactly the same mean."""
    x = rng.normal(0, sd, DAYS)
    x[:CHANGE_DAY] -= x[:CHANGE_DAY].mean()
    x[CHANGE_DAY + 1:] -= x[CHANGE_DAY + 1:].mean()
    return x


@pytest.fixture(scope="module")
def world(api: httpx.Client) -> dict[str, Any]:
    """A seller tracking three products: `main` (BSR -40% after day 30, price cut that
    day), `flat` (pure noise) — both main products of groups with the same three flat
    competitors — and `plain` (in no group, a weak listing)."""
    r = random.Random(20260601)
    rng = np.random.default_rng(7)
    seller = new_seller(api)
    uid = uuid.UUID(seller["id"])
    names = ["main", "flat", "plain", "c0", "c1", "c2"]
    asins = {n: fresh_asin(r) for n in names}
    with transaction() as conn:
        pids = {n: upsert_product(conn, a, "com")[0] for n, a in asins.items()}
        tracked = {n: insert_tracked(conn, uid, pids[n], None, {})
                   for n in ("main", "flat", "plain")}
        comps = [pids["c0"], pids["c1"], pids["c2"]]
        cdb.insert_group(conn, uid, "Bottles vs rivals", pids["main"], comps)
        cdb.insert_group(conn, uid, "Flat vs rivals", pids["flat"], comps)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(days=DAYS)  # day 59 is yesterday
    series = {"main": noise(rng), "flat": noise(rng), "plain": noise(rng),
              **{f"c{j}": noise(rng) for j in range(3)}}
    main_bullets = [
        "Keeps water cold all day in a double wall body with a sweat-free grip.",
        "Straw lid with a carry loop.",
        "Fits most cup holders in cars and on bikes, a good size for daily commutes.",
    ]
    with transaction() as conn:
        for d in range(DAYS):
            at = start + timedelta(days=d, minutes=30)
            after = d >= CHANGE_DAY
            obs = [
                (pids["main"], snapshot(
                    asins["main"], "HydroPeak", "HydroPeak Water Bottle 32 oz - Blue",
                    5000 * (0.6 if after else 1.0) * math.exp(series["main"][d]),
                    24.99 if after else 29.99, 800 + 5 * d, main_bullets,
                    "An insulated bottle.", 4)),
                (pids["flat"], snapshot(
                    asins["flat"], "FlatWave", "FlatWave Sports Bottle 24 oz with Handle",
                    8000 * math.exp(series["flat"][d]), 19.99, 300 + 2 * d, main_bullets[:2],
                    "A sports bottle.", 5)),
                (pids["plain"], snapshot(
                    asins["plain"], "PlainCo", "PlainCo Bottle", 12000 * math.exp(
                        series["plain"][d]), 15.99, 90 + d, [], None, 2)),
                *[(pids[f"c{j}"], competitor(asins[f"c{j}"], j, 2000 * (j + 1) * math.exp(
                    series[f"c{j}"][d]), d)) for j in range(3)],
            ]
            ingest(conn, at, None, obs)
    return {"seller": seller, "asins": asins, "tracked": {k: str(v) for k, v in tracked.items()},
            "start": start}


def day_at(world: dict[str, Any], d: int) -> str:
    return (world["start"] + timedelta(days=d)).isoformat()


def wait_run(api: httpx.Client, seller: dict[str, str], run_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = api.get(f"/v1/optimizations/{run_id}", headers=auth(seller)).json()
        return body if body["status"] in ("done", "failed") else None

    result: dict[str, Any] = wait_for(done, 60, "the suggestion run")
    return result


def request_run(api: httpx.Client, seller: dict[str, str], tracked_id: str) -> dict[str, Any]:
    response = api.post(f"/v1/products/{tracked_id}/optimizations", headers=auth(seller))
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("queued", "running")
    return wait_run(api, seller, response.json()["id"])


# ---------------------------------------------------------------- listing score


@pytest.mark.smoke  # also runs against pilot run --from-build
def test_listing_score_shows_every_rule_against_the_group(
    api: httpx.Client, world: dict[str, Any]
) -> None:
    seller, tracked = world["seller"], world["tracked"]
    response = api.get(f"/v1/products/{tracked['main']}/listing-score", headers=auth(seller))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["asin"] == world["asins"]["main"] and 0 <= body["total"] <= 100
    assert body["grade"] in ("A", "B", "C", "D")
    assert {r["rule_id"] for r in body["rules"]} == set(WEIGHTS)
    for rule in body["rules"]:
        assert rule["weight"] == WEIGHTS[rule["rule_id"]]
        assert isinstance(rule["detail"], str) and isinstance(rule["advice"], str)
        assert rule["passed"] or not rule["applicable"] or rule["advice"], rule
    assert body["competitor_group"]["name"] == "Bottles vs rivals"
    assert [c["asin"] for c in body["competitors"]] == [world["asins"][f"c{j}"] for j in range(3)]
    assert body["data_source"] == "sandbox" and body["notes"] == []
    # the rebuilt snapshot carries what only the details document holds
    by_id = {r["rule_id"]: r for r in body["rules"]}
    assert by_id["keyword_coverage"]["applicable"] and body["missing_keywords"]
    assert by_id["image_count"]["evidence"]["count"] == 4
    assert by_id["description"]["evidence"]["length"] == len("An insulated bottle.")

    plain = api.get(f"/v1/products/{tracked['plain']}/listing-score", headers=auth(seller))
    assert plain.status_code == 200
    assert plain.json()["competitor_group"] is None and plain.json()["competitors"] == []
    assert "no competitors were used" in plain.json()["notes"][0]
    # a rule that cannot be judged has no evidence: its optional keys stay absent, not null
    plain_rules = {r["rule_id"]: r for r in plain.json()["rules"]}
    assert plain_rules["keyword_coverage"]["evidence"] == {}
    assert plain_rules["price_position"]["evidence"] == {}

    other = new_seller(api)
    for path in (f"/v1/products/{tracked['main']}/listing-score",
                 f"/v1/products/{uuid.uuid4()}/listing-score"):
        assert api.get(path, headers=auth(other)).status_code == 404


# ---------------------------------------------------------------- suggestions


@pytest.mark.smoke  # also runs against pilot run --from-build
def test_suggestions_are_worded_by_the_model_then_served_from_the_cache(
    api: httpx.Client, stack: Stack, world: dict[str, Any]
) -> None:
    seller, main = world["seller"], world["tracked"]["main"]
    openai = stack.standins["openai"]
    openai.clear_faults()
    calls = openai.request_count
    run = request_run(api, seller, main)
    assert run["status"] == "done", run
    assert run["generated_by"] == "llm" and run["cache"] == "miss"
    assert run["sandbox"] is True and "sandbox" in run["notice"]
    assert run["usage"]["prompt_tokens"] > 0 and run["usage"]["cost_usd"] is not None
    assert openai.request_count == calls + 1
    suggestions = run["suggestions"]
    assert suggestions and {s["type"] for s in suggestions} <= TYPES
    assert [s["priority"] for s in suggestions] == list(range(1, len(suggestions) + 1))
    for s in suggestions:
        for key in ("change", "reason", "impact", "effort", "impact_score", "effort_score",
                    "evidence", "source"):
            assert s[key] is not None, (key, s)
    kinds = {s["type"]: s for s in suggestions}
    assert "pricing" not in kinds or "median" in kinds["pricing"]["reason"]
    title = kinds["title"]
    assert title["source"] == "llm" and '"HydroPeak ' in title["change"]
    assert run["inputs"]["competitor_group"]["name"] == "Bottles vs rivals"
    assert run["score"]["rules"]

    again = request_run(api, seller, main)
    assert again["status"] == "done" and again["cache"] == "hit"
    assert again["generated_by"] == "llm" and again["usage"]["total_tokens"] == 0
    assert openai.request_count == calls + 1  # the same listing and group: no second call
    assert [(s["type"], s["change"]) for s in again["suggestions"]] == \
        [(s["type"], s["change"]) for s in suggestions]

    page = api.get(f"/v1/products/{main}/optimizations", headers=auth(seller)).json()
    assert page["total"] >= 2 and page["items"][0]["id"] == again["id"]
    other = new_seller(api)
    assert api.get(f"/v1/optimizations/{run['id']}", headers=auth(other)).status_code == 404
    assert api.post(f"/v1/products/{main}/optimizations",
                    headers=auth(other)).status_code == 404
    assert api.get(f"/v1/products/{main}/optimizations", headers=auth(other)).status_code == 404


@pytest.mark.parametrize(("product", "mode", "code"), [
    ("flat", "http_500", "server_error"),
    ("plain", "invalid_json", "invalid_json"),
])
def test_model_failure_still_answers_with_rules_suggestions(
    api: httpx.Client, stack: Stack, world: dict[str, Any], product: str, mode: str, code: str
) -> None:
    seller = world["seller"]
    openai = stack.standins["openai"]
    openai.inject(mode, 5)  # outlasts the client's own retry
    try:
        run = request_run(api, seller, world["tracked"][product])
    finally:
        openai.clear_faults()
    assert run["status"] == "done", run
    assert run["generated_by"] == "rules" and code in run["fallback_reason"]
    assert run["suggestions"] and all(s["source"] == "rules" for s in run["suggestions"])
    if product == "plain":
        assert run["inputs"]["competitor_group"] is None
        assert "no competitors were used" in run["inputs"]["notes"][0]


# ---------------------------------------------------------------- experiments


def test_experiments_reach_the_right_verdicts(api: httpx.Client, world: dict[str, Any]) -> None:
    seller, tracked = world["seller"], world["tracked"]
    h = auth(seller)
    candidates = api.get("/v1/experiments/candidates", params={"product_id": tracked["main"]},
                         headers=h)
    assert candidates.status_code == 200, candidates.text
    price_moves = [c for c in candidates.json()["items"] if c["kind"] == "price"]
    assert [(c["old"], c["new"]) for c in price_moves] == [(29.99, 24.99)]
    moved_at = datetime.fromisoformat(price_moves[0]["changed_at"].replace("Z", "+00:00"))
    assert moved_at == world["start"] + timedelta(days=CHANGE_DAY)

    improved = api.post("/v1/experiments", headers=h, json={
        "product_id": tracked["main"], "change": price_moves[0]["change"],
        "changed_at": price_moves[0]["changed_at"]})
    assert improved.status_code == 201, improved.text
    exp = improved.json()
    analysis = exp["analysis"]
    assert exp["verdict"] == analysis["verdict"] == "improved", analysis
    assert analysis["primary_metric"] == "bsr"
    assert analysis["metrics"]["bsr"]["effect_pct"] == pytest.approx(-0.4, abs=0.05)
    assert analysis["metrics"]["bsr"]["n_controls"] == 3
    # the chart's control line: the competitors' daily mean, one point a day with data
    control = analysis["control_series"]["bsr"]
    assert len(control) >= CHANGE_DAY and all(p["value"] > 0 for p in control)
    assert [p["date"] for p in control] == sorted(p["date"] for p in control)
    assert analysis["metrics"]["price"]["informational"] is True
    assert analysis["other_changes"] == []  # the price cut is the change itself

    flat = api.post("/v1/experiments", headers=h, json={
        "product_id": tracked["flat"], "change": "New main image",
        "changed_at": day_at(world, CHANGE_DAY)}).json()
    assert flat["analysis"]["verdict"] == "no_detectable_effect", flat["analysis"]

    recent = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    early = api.post("/v1/experiments", headers=h, json={
        "product_id": tracked["main"], "change": "Rewrote the title", "changed_at": recent})
    assert early.status_code == 201 and early.json()["analysis"]["verdict"] == "too_early"

    plain = api.post("/v1/experiments", headers=h, json={
        "product_id": tracked["plain"], "change": "Added bullets",
        "changed_at": day_at(world, CHANGE_DAY)}).json()
    assert any("no competitors were used" in w for w in plain["analysis"]["warnings"])
    assert any("no control series" in w for w in plain["analysis"]["warnings"])
    assert plain["analysis"]["control_series"] == {}

    # a fresh analysis on read, the same answer (seeded per experiment)
    again = api.get(f"/v1/experiments/{exp['id']}", headers=h).json()
    assert again["analysis"]["metrics"]["bsr"] == analysis["metrics"]["bsr"]
    stopped = api.post(f"/v1/experiments/{exp['id']}/stop", headers=h)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    frozen = api.get(f"/v1/experiments/{exp['id']}", headers=h).json()
    assert frozen["analysis"] == stopped.json()["analysis"]
    assert frozen["verdict"] == "improved" and frozen["stopped_at"]

    listing = api.get("/v1/experiments", headers=h).json()
    assert listing["total"] == 4
    assert {e["verdict"] for e in listing["items"]} >= {"improved", "too_early",
                                                        "no_detectable_effect"}
    running = api.get("/v1/experiments", params={"status": "running",
                                                 "product_id": tracked["main"]}, headers=h)
    assert [e["id"] for e in running.json()["items"]] == [early.json()["id"]]


def test_experiment_validation_and_ownership(api: httpx.Client, world: dict[str, Any]) -> None:
    seller, tracked = world["seller"], world["tracked"]
    h = auth(seller)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"product_id": tracked["main"], "change": "x", "changed_at": future}, "changed_at"),
        ({"product_id": tracked["main"], "change": "x", "suggestion_id": str(uuid.uuid4())},
         "suggestion_id"),
        ({"product_id": tracked["main"], "change": "x", "colour": "red"}, "colour"),
        ({"product_id": tracked["main"], "change": ""}, "change"),
        ({"product_id": tracked["main"], "change": "   "}, "change"),
    ]
    for body, field in cases:
        response = api.post("/v1/experiments", headers=h, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["details"][0]["field"] == field
    other = new_seller(api)
    theirs = api.post("/v1/experiments", headers=auth(other),
                      json={"product_id": tracked["main"], "change": "x"})
    assert theirs.status_code == 404
    mine = api.post("/v1/experiments", headers=h,
                    json={"product_id": tracked["main"], "change": "Bullets rewritten"})
    assert mine.status_code == 201 and mine.json()["analysis"]["verdict"] == "too_early"
    exp_id = mine.json()["id"]
    for method, path in (("GET", f"/v1/experiments/{exp_id}"),
                         ("POST", f"/v1/experiments/{exp_id}/stop"),
                         ("GET", f"/v1/experiments/candidates?product_id={tracked['main']}"),
                         ("GET", f"/v1/products/{tracked['main']}/optimizations/summary")):
        assert api.request(method, path, headers=auth(other)).status_code == 404, path
    assert api.get("/v1/experiments", headers=auth(other)).json()["total"] == 0
    assert api.post(f"/v1/experiments/{exp_id}/stop", headers=h).status_code == 200


def test_experiment_on_a_suggestion_and_the_summary(
    api: httpx.Client, world: dict[str, Any]
) -> None:
    seller, main = world["seller"], world["tracked"]["main"]
    h = auth(seller)
    run = request_run(api, seller, main)
    first = run["suggestions"][0]
    created = api.post("/v1/experiments", headers=h, json={
        "product_id": main, "suggestion_id": first["id"], "change": first["change"][:2000],
        "changed_at": day_at(world, CHANGE_DAY)})
    assert created.status_code == 201, created.text
    assert created.json()["suggestion_id"] == first["id"]
    # a suggestion of another product is not one of this product's
    wrong = api.post("/v1/experiments", headers=h, json={
        "product_id": world["tracked"]["flat"], "suggestion_id": first["id"], "change": "x"})
    assert wrong.status_code == 422

    summary = api.get(f"/v1/products/{main}/optimizations/summary", headers=h)
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["score"]["grade"] in ("A", "B", "C", "D")
    assert all(not r["passed"] for r in body["score"]["failing_rules"])
    assert body["latest_run"]["id"] == run["id"]
    assert first["id"] not in {s["id"] for s in body["open_suggestions"]}
    assert len(body["open_suggestions"]) == len(run["suggestions"]) - 1
    verdicts = {e["id"]: e["verdict"] for e in body["experiments"]}
    assert verdicts[created.json()["id"]] == "improved"
    assert body["competitor_group"]["name"] == "Bottles vs rivals"


def test_the_demo_step_generates_one_run_synchronously(
    api: httpx.Client, world: dict[str, Any]
) -> None:
    from pilot_dev.demo_extras import STEPS, suggestion_run

    assert suggestion_run in STEPS
    seller, main = world["seller"], world["tracked"]["main"]
    with transaction() as conn:
        pid = upsert_product(conn, world["asins"]["main"], "com")[0]
    lines = suggestion_run(seller["id"], [pid])
    assert len(lines) == 1 and "suggestions:" in lines[0] and "for the main product" in lines[0]
    page = api.get(f"/v1/products/{main}/optimizations", headers=auth(seller)).json()
    assert page["items"][0]["trigger"] == "demo" and page["items"][0]["status"] == "done"


# ---------------------------------------------------------------- reads write nothing


def optimization_rows(seller_id: str) -> dict[str, list[Any]]:
    """Every optimization row of the seller with its xmin: a write, even of the same
    values, gives the row a new xmin."""
    tables = {
        "experiments": "user_id = :u",
        "suggestion_runs": "user_id = :u",
        "suggestions": "run_id IN (SELECT id FROM suggestion_runs WHERE user_id = :u)",
    }
    with transaction() as conn:
        return {name: [tuple(r) for r in conn.execute(text(
            f"SELECT xmin::text, * FROM {name} WHERE {where} ORDER BY id"),
            {"u": uuid.UUID(seller_id)})] for name, where in tables.items()}


def test_reads_leave_the_database_unchanged(api: httpx.Client, world: dict[str, Any]) -> None:
    seller, tracked = world["seller"], world["tracked"]
    h = auth(seller)
    run = request_run(api, seller, tracked["plain"])
    for change in ("Reads: stays running", "Reads: stopped"):
        created = api.post("/v1/experiments", headers=h, json={
            "product_id": tracked["main"], "change": change,
            "changed_at": day_at(world, CHANGE_DAY)})
        assert created.status_code == 201, created.text
    api.post(f"/v1/experiments/{created.json()['id']}/stop", headers=h)
    experiments = api.get("/v1/experiments", params={"limit": 200}, headers=h).json()["items"]
    assert {e["status"] for e in experiments} == {"running", "stopped"}
    before = optimization_rows(seller["id"])
    assert before["experiments"] and before["suggestions"]
    paths = [f"/v1/experiments/{e['id']}" for e in experiments]
    paths += ["/v1/experiments", "/v1/experiments?status=running",
              f"/v1/optimizations/{run['id']}"]
    for product in tracked.values():
        paths += [f"/v1/products/{product}/listing-score",
                  f"/v1/products/{product}/optimizations",
                  f"/v1/products/{product}/optimizations/summary",
                  f"/v1/experiments/candidates?product_id={product}"]
    for path in paths:
        response = api.get(path, headers=h)
        assert response.status_code == 200, (path, response.text)
    running = next(e for e in experiments if e["status"] == "running")
    fresh = api.get(f"/v1/experiments/{running['id']}", headers=h).json()
    assert fresh["analysis"]["verdict"] == fresh["verdict"]  # computed, just not stored
    assert optimization_rows(seller["id"]) == before


def test_the_daily_schedule_stores_running_experiments_verdicts(
    api: httpx.Client, world: dict[str, Any], operator: httpx.Client
) -> None:
    seller, tracked = world["seller"], world["tracked"]
    h = auth(seller)
    exp = api.post("/v1/experiments", headers=h, json={
        "product_id": tracked["main"], "change": "Price cut, measured again",
        "changed_at": day_at(world, CHANGE_DAY)}).json()
    assert exp["verdict"] == "improved"  # stored on creation
    stopped = api.post("/v1/experiments", headers=h, json={
        "product_id": tracked["flat"], "change": "Stopped before the schedule"}).json()
    assert api.post(f"/v1/experiments/{stopped['id']}/stop", headers=h).status_code == 200
    with transaction() as conn:  # as if it had never been analysed
        conn.execute(text("UPDATE experiments SET verdict = NULL, analyzed_at = NULL"
                          " WHERE id = :e"), {"e": uuid.UUID(exp["id"])})
    frozen = optimization_rows(seller["id"])["experiments"]

    fired = operator.post("/_pilot/schedules/ExperimentVerdicts/fire")
    assert fired.status_code == 200, fired.text
    assert fired.json()["result"]["experiments"] >= 1

    def stored() -> dict[str, Any] | None:
        page = api.get("/v1/experiments", params={"limit": 200}, headers=h).json()["items"]
        mine = next(e for e in page if e["id"] == exp["id"])
        return mine if mine["verdict"] is not None else None

    again = wait_for(stored, 60, "the verdict job on the low queue")
    assert again["verdict"] == "improved" and again["analyzed_at"]
    after = {row[1]: row for row in optimization_rows(seller["id"])["experiments"]}
    untouched = next(row for row in frozen if str(row[1]) == stopped["id"])
    assert after[untouched[1]] == untouched  # a stopped experiment keeps its frozen verdict

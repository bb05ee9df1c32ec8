"""Issue 18: the product list pages by key, bulk add keeps the plan limit while counting
once, and history reads only the months it asks for (partition pruning, by EXPLAIN)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from amazon_pilot.tracking.store import history_sql
from pilot_dev.runtime.stack import Stack
from tests.integration.sellers import auth, new_seller


def _track(seller_id: str, count: int) -> None:
    """`count` tracked products for the seller, created a second apart (and two at the
    same moment, so the key's tie-breaker matters)."""
    prefix = "B0" + uuid.uuid4().hex[:3].upper()
    with get_engine().begin() as conn:
        # the products made here, and only those: another test's ASIN may share the prefix
        conn.execute(text(
            "WITH made AS (INSERT INTO products (asin, marketplace, title)"
            " SELECT :pre || lpad(i::text, 5, '0'), 'com', 'Item ' || i"
            " FROM generate_series(1, :n) i RETURNING id)"
            " INSERT INTO tracked_products (user_id, product_id, created_at)"
            " SELECT :u, id, timestamptz '2026-01-01' + (id || ' minutes')::interval FROM made"),
            {"pre": prefix, "n": count, "u": seller_id})
        # two rows at the same moment
        conn.execute(text(
            "UPDATE tracked_products SET created_at = timestamptz '2026-01-01'"
            " WHERE id IN (SELECT id FROM tracked_products WHERE user_id = :u"
            " ORDER BY created_at LIMIT 2)"), {"u": seller_id})


def _walk(api: httpx.Client, seller: dict[str, str], sort: str, limit: int
          ) -> tuple[list[str], list[int]]:
    ids: list[str] = []
    totals: list[int] = []
    params: dict[str, Any] = {"sort": sort, "limit": limit}
    for _ in range(50):
        page = api.get("/v1/products", params=params, headers=auth(seller))
        assert page.status_code == 200, page.text
        body = page.json()
        ids += [item["id"] for item in body["items"]]
        totals.append(body["total"])
        if body["next_cursor"] is None:
            return ids, totals
        params["cursor"] = body["next_cursor"]
    raise AssertionError("the cursor never ended")


def test_cursor_pages_walk_every_product_once_in_the_offset_order(api: httpx.Client) -> None:
    seller = new_seller(api)
    _track(seller["id"], 23)
    for sort in ("created_at", "-created_at"):
        by_offset = api.get("/v1/products", params={"sort": sort, "limit": 100},
                            headers=auth(seller)).json()
        expected = [item["id"] for item in by_offset["items"]]
        assert len(expected) == 23
        ids, totals = _walk(api, seller, sort, limit=5)
        assert ids == expected
        assert set(totals) == {23}
    # offset paging still works beside the cursor
    second = api.get("/v1/products", params={"limit": 5, "offset": 5}, headers=auth(seller))
    assert [i["id"] for i in second.json()["items"]] == _walk(api, seller, "created_at", 5)[0][5:10]
    # an exact last page ends the walk without a dangling cursor
    ids, _ = _walk(api, seller, "created_at", limit=23)
    assert len(ids) == 23


def test_a_page_past_the_end_still_says_how_many_match(api: httpx.Client) -> None:
    seller = new_seller(api)
    _track(seller["id"], 7)
    for params in ({"offset": 7}, {"offset": 50, "sort": "asin"}, {"offset": 3, "q": "zz"}):
        page = api.get("/v1/products", params=params, headers=auth(seller)).json()
        assert page["items"] == []
        assert page["total"] == (0 if "q" in params else 7)
        assert page["tracked"] == 7


def test_a_cursor_another_order_or_garbage_is_a_validation_error(api: httpx.Client) -> None:
    seller = new_seller(api)
    _track(seller["id"], 3)
    first = api.get("/v1/products", params={"limit": 2}, headers=auth(seller)).json()
    assert first["next_cursor"]
    priced = api.get("/v1/products", params={"sort": "price", "cursor": first["next_cursor"]},
                     headers=auth(seller))
    assert priced.status_code == 422
    assert priced.json()["error"]["code"] == "VALIDATION_ERROR"
    assert api.get("/v1/products", params={"sort": "price"},
                   headers=auth(seller)).json()["next_cursor"] is None
    for garbage in ("nope", "bm9waXBl", "MjAyNi0wMS0wMXx4"):
        answer = api.get("/v1/products", params={"cursor": garbage}, headers=auth(seller))
        assert answer.status_code == 422, garbage
        assert answer.json()["error"]["details"][0]["field"] == "cursor"


def test_another_seller_s_cursor_shows_only_your_own_products(api: httpx.Client) -> None:
    alice, bob = new_seller(api), new_seller(api)
    _track(alice["id"], 4)
    _track(bob["id"], 4)
    cursor = api.get("/v1/products", params={"limit": 1},
                     headers=auth(alice)).json()["next_cursor"]
    mine = {i["id"] for i in api.get("/v1/products", headers=auth(bob)).json()["items"]}
    seen = api.get("/v1/products", params={"cursor": cursor}, headers=auth(bob)).json()
    assert {i["id"] for i in seen["items"]} <= mine


def test_bulk_add_stops_at_the_plan_limit_counting_its_own_items(
        api: httpx.Client, stack: Stack) -> None:
    seller = new_seller(api, plan="free")  # 20 products
    _track(seller["id"], 17)
    prefix = "B0" + uuid.uuid4().hex[:3].upper()
    items = [{"asin": f"{prefix}{i:05d}"} for i in range(5)]
    answer = api.post("/v1/products/bulk", json={"items": items}, headers=auth(seller))
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == [202, 202, 202, 403, 403]
    assert api.get("/v1/products", headers=auth(seller)).json()["total"] == 20


def _plan(sql: str, params: dict[str, Any]) -> str:
    with get_engine().connect() as conn:
        rows = conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"), params).scalar_one()
    return json.dumps(rows)


def _partitions(plan: str) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            name = node.get("Relation Name")
            if isinstance(name, str) and name.startswith("snapshots_"):
                found.add(name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(plan))
    return found


def test_history_reads_only_the_months_of_its_range(stack: Stack) -> None:
    with get_engine().connect() as conn:
        every = conn.execute(text(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'snapshots'::regclass"
        )).scalar_one()
    end = datetime.now(UTC)
    year = {"p": 1, "s": end - timedelta(days=365), "e": end}
    month = {"p": 1, "s": end - timedelta(days=20), "e": end}
    read_year = _partitions(_plan(history_sql("price", "day"), year))
    read_month = _partitions(_plan(history_sql("price", "raw"), month))
    assert every > 13
    assert 12 <= len(read_year) <= 13
    assert 1 <= len(read_month) <= 2
    # a generic plan (a prepared statement's sixth run) prunes at executor start
    sql = history_sql("price", "day").replace(":p", "$1").replace(":s", "$2").replace(":e", "$3")
    with get_engine().connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        cur = driver.cursor()
        cur.execute("SET plan_cache_mode = force_generic_plan")
        cur.execute(f"PREPARE h(bigint, timestamptz, timestamptz) AS {sql}")
        cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE h(1,"
                    f" '{month['s'].isoformat()}', '{month['e'].isoformat()}')")
        row = cur.fetchone()
        assert row is not None
        analysed = json.dumps(row[0])
        cur.execute("DEALLOCATE h")
        cur.execute("RESET plan_cache_mode")
    removed = sum(int(m) for m in _numbers(analysed, '"Subplans Removed": '))
    assert removed >= every - 2


def test_a_years_history_is_read_from_the_key_alone(stack: Stack) -> None:
    """The charted metrics ride in the primary key (migration 0020), so a year of one
    product's values can be an index-only scan: its cost does not grow with the rows of
    other products between them. Proven with every other scan switched off, so the plan
    is an index-only scan only if the key covers the query (whatever the visibility map
    says while other tests write)."""
    end = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    with get_engine().begin() as conn:
        product = conn.execute(text(
            "INSERT INTO products (asin, marketplace) VALUES ('B0COVERKEY', 'com')"
            " RETURNING id")).scalar_one()
        conn.execute(text(
            "INSERT INTO snapshots (product_id, captured_at, price, bsr_rank)"
            " SELECT :p, :e - d * interval '1 day', 10 + d, 1000 + d"
            " FROM generate_series(0, 364) d"), {"p": product, "e": end})
    for metric in ("price", "list_price", "buy_box_price", "bsr", "subcategory_bsr",
                   "rating", "review_count"):
        plan = json.loads(_analysed(history_sql(metric, "day"), {
            "p": product, "s": end - timedelta(days=365), "e": end}))
        scans = _scans(plan)
        assert scans and all(kind == "Index Only Scan" for kind, _ in scans), (metric, scans)
        assert plan[0]["Plan"]["Actual Rows"] == 365, metric


def _analysed(sql: str, params: dict[str, Any]) -> str:
    with get_engine().connect() as conn:
        for scan in ("seqscan", "bitmapscan", "indexscan"):  # what is left: index-only
            conn.exec_driver_sql(f"SET enable_{scan} = off")
        rows = conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"), params).scalar_one()
    return json.dumps(rows)


def _scans(plan: Any) -> list[tuple[str, int]]:
    """(node type, heap fetches) of every scan of a snapshots partition in the plan."""
    found: list[tuple[str, int]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            name = node.get("Relation Name")
            if isinstance(name, str) and name.startswith("snapshots_"):
                found.append((node["Node Type"], int(node.get("Heap Fetches", 0))))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return found


def _numbers(plan: str, key: str) -> list[str]:
    out = []
    at = plan.find(key)
    while at >= 0:
        start = at + len(key)
        end = start
        while end < len(plan) and plan[end].isdigit():
            end += 1
        out.append(plan[start:end])
        at = plan.find(key, end)
    return out


def test_the_default_product_list_is_read_in_index_order(api: httpx.Client) -> None:
    seller = new_seller(api)
    _track(seller["id"], 30)
    from amazon_pilot.tracking.store import list_page_statement

    # A test database is too small for the planner to prefer any index over a scan:
    # with scans priced out, what is left shows the index serves the order unsorted.
    # The statement is the list's own: its page, total and 1d/7d values in one.
    now = datetime.now(UTC)
    moments = {"1d": now - timedelta(days=1), "7d": now - timedelta(days=7)}
    with get_engine().connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        conn.execute(text("SET enable_bitmapscan = off"))
        for sort in ("created_at", "-created_at"):
            sql, params, _ = list_page_statement(
                uuid.UUID(seller["id"]), q=None, paused=None, sort=sort, limit=50, offset=0,
                tag=None, after=None, moments=moments)
            plan = json.dumps(conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"),
                                           params).scalar_one())
            assert "tracked_products_user_created_idx" in plan
            assert '"Sort Key": ["t.created_at' not in plan
            assert '"Sort Key": ["page.created_at' not in plan
        conn.execute(text("RESET enable_seqscan"))
        conn.execute(text("RESET enable_bitmapscan"))

"""Demo data for features that build on tracking, called by `pilot demo` (demo.py).

A simple list of steps: each adds something to the demo seller's account and returns
the lines to print. Append new steps to STEPS.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from sqlalchemy import text

from amazon_pilot.platform.db import transaction

DEMO_GROUP_NAME = "Earbuds vs top rivals"

Step = Callable[[str, list[int]], list[str]]


def competitor_group(user_id: str, product_ids: list[int]) -> list[str]:
    """One competitor group (main = the first product, 4 competitors) and a report,
    written synchronously (rules, or the model when a key is configured)."""
    from amazon_pilot.competitors import store as db
    from amazon_pilot.competitors.service import run_report

    if len(product_ids) < 4:
        return ["  group: skipped (the demo needs at least 4 products)"]
    uid = UUID(user_id)
    with transaction() as conn:
        found = db.find_group_by_name(conn, uid, DEMO_GROUP_NAME)
        group_id = found.id if found is not None else db.insert_group(
            conn, uid, DEMO_GROUP_NAME, product_ids[0], product_ids[1:5])
        report_id = db.insert_report(conn, group_id, uid, 30, trigger="demo")
    try:
        result = run_report(report_id)
    except Exception as exc:  # the demo still has its group; say what went wrong
        return [f"  group: {DEMO_GROUP_NAME} (report failed: {exc})"]
    how = result.get("generated_by", "?")
    return [f"  group: {DEMO_GROUP_NAME} (report ready, written by {how})"]


STEPS: list[Step] = [competitor_group]


def suggestion_run(user_id: str, product_ids: list[int]) -> list[str]:
    """One suggestion run for the demo's main product, generated synchronously (the
    model's copy when a key or the stand-in is configured, else the rules)."""
    from amazon_pilot.optimization import store as odb
    from amazon_pilot.optimization.service import run_suggestions

    if not product_ids:
        return ["  suggestions: skipped (no demo product)"]
    uid = UUID(user_id)
    with transaction() as conn:
        tracked = conn.execute(text(
            "SELECT id FROM tracked_products WHERE user_id = :u AND product_id = :p"),
            {"u": uid, "p": product_ids[0]}).first()
        if tracked is None:
            return ["  suggestions: skipped (the main product is not tracked)"]
        run_id = odb.insert_run(conn, uid, tracked.id, product_ids[0], trigger="demo")
    try:
        result = run_suggestions(run_id)
    except Exception as exc:  # the demo goes on without them; say what went wrong
        return [f"  suggestions: failed ({exc})"]
    if "failed" in result:
        return [f"  suggestions: none ({result['failed']})"]
    return [f"  suggestions: {result.get('suggestions', 0)} for the main product (written by"
            f" {result.get('generated_by', '?')}; GET /v1/optimizations/{run_id})"]


STEPS.append(suggestion_run)

DEMO_TERMS = ("wireless earbuds", "bluetooth earbuds")
DEMO_TERM_DAYS = 30


def keyword_ranks(user_id: str, product_ids: list[int]) -> list[str]:
    """Two search terms on the main product with a month of first pages (docs/keywords.md)."""
    from datetime import UTC, datetime, timedelta

    from amazon_pilot.market import store as mdb
    from pilot_dev.timetravel import observe_search

    if not product_ids:
        return []
    with transaction() as conn:
        tracked = conn.execute(text(
            "SELECT id FROM tracked_products WHERE user_id = :u AND product_id = :p"),
            {"u": user_id, "p": product_ids[0]}).scalar()
        if tracked is None:
            return ["  keywords: skipped (the main product is not tracked)"]
        for term in DEMO_TERMS:
            mdb.insert_term(conn, UUID(user_id), tracked, term)
    today = datetime.now(UTC).date()
    try:
        for back in range(DEMO_TERM_DAYS, -1, -1):
            observe_search("com", list(DEMO_TERMS), today - timedelta(days=back))
    except Exception as exc:  # the demo goes on without them; say what went wrong
        return [f"  keywords: failed ({exc})"]
    return [f"  keywords: {len(DEMO_TERMS)} search terms on the main product, "
            f"{DEMO_TERM_DAYS + 1} days of ranks"]


STEPS.append(keyword_ranks)


def add_demo_extras(user_id: str, product_ids: list[int]) -> list[str]:
    lines: list[str] = []
    for step in STEPS:
        lines.extend(step(user_id, product_ids))
    return lines

"""kill -9 of `pilot run` in the middle of work, then a restart on the same database.

The embedded AWS endpoint dies with the process, so every queued and in-flight message
is gone with it; the outbox still holds every job, and at start the runtime re-sends the
ones no consumer finished and reconciles stuck runs. Afterwards every job is processed or
in a DLQ with its reason, and each product has exactly one snapshot per run."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.chaos.conftest import PilotProcess
from tests.chaos.helpers import fresh_asins, wait_for

pytestmark = pytest.mark.chaos

PRODUCTS = 200


def add_products(stack: PilotProcess, headers: dict[str, str], asins: list[str]) -> None:
    for start in range(0, len(asins), 100):  # the bulk endpoint takes 100 at a time
        items = [{"url": f"https://www.amazon.com/dp/{a}"} for a in asins[start:start + 100]]
        response = stack.client.post("/v1/products/bulk", json={"items": items}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["created"] == len(items)


def unfinished_jobs(stack: PilotProcess) -> list[tuple[str, str]]:
    """Outbox jobs not recorded as finished by a consumer: (key, type)."""
    with stack.db() as conn:
        return [(r[0], r[1]) for r in conn.execute(
            "SELECT o.job_key, o.job_type FROM outbox o WHERE NOT EXISTS ("
            " SELECT 1 FROM processed_messages p WHERE p.idempotency_key = o.job_key"
            "  AND coalesce(to_jsonb(p) ->> 'status', 'done') = 'done')").fetchall()]


def settle(stack: PilotProcess, poison: frozenset[str] = frozenset(),
           timeout: float = 240) -> dict[str, int]:
    """Wait until every job but the `poison` ones is done, then account for each: done,
    dead-lettered (with a reason) or lost. Returns the counts; lost must be 0."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and ({k for k, _ in unfinished_jobs(stack)} - poison
                                           or stack.dlq_depth() < len(poison)):
        time.sleep(1)
    left = unfinished_jobs(stack)
    dead = stack.dead_letters()
    dead_keys = {d["body"].get("key") for d in dead}
    with stack.db() as conn:
        total = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    lost = [job for job in left if job[0] not in dead_keys]
    assert not lost, f"jobs neither processed nor dead-lettered: {lost[:5]}\n{stack.tail()}"
    assert all(d["reason"] for d in dead if d["body"].get("key") in {k for k, _ in left}), dead
    return {"jobs": total, "processed": total - len(left), "dead_lettered": len(left),
            "lost": len(lost)}


def wait_running(stack: PilotProcess, trigger: str, at_least: int, done: int = 0,
                 timeout: float = 120) -> int:
    """Wait for `at_least` runs of this trigger in flight (and `done` finished)."""
    def counts() -> tuple[int, int]:
        with stack.db() as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'running'),"
                " count(*) FILTER (WHERE status = 'succeeded')"
                " FROM scrape_runs WHERE trigger = %s", (trigger,)).fetchone()
            return int(row[0]), int(row[1])
    return wait_for(lambda: (c := counts())[0] >= at_least and c[1] >= done and c[0], timeout,
                    f"{at_least} {trigger} run(s) in flight, {done} done")


POISON_KEY = "chaos:poison"


def queue_poison(stack: PilotProcess) -> None:
    """A job that can never succeed, written to the outbox as a service would: it must end
    in a DLQ with its reason, before and after the crash."""
    with stack.db() as conn:
        conn.execute("INSERT INTO outbox (priority, job_type, job_key, payload) VALUES"
                     " ('low', 'fail', %s, %s)", (POISON_KEY, json.dumps(
                         {"permanent": True, "reason": "chaos: a job that always fails"})))


def test_kill9_during_first_fetches(pilot_stack: Any, seller_login: Any,
                                    chaos_report: Any) -> None:
    stack = pilot_stack()
    headers = seller_login(stack)
    stack.apify_fault("slow", count=2, delay_s=8)  # both actor runs are in flight at the kill
    add_products(stack, headers, fresh_asins(PRODUCTS))
    in_flight = wait_running(stack, "add", 1)
    stack.kill9()
    with stack.db() as conn:
        fetched_before = conn.execute(
            "SELECT count(*) FROM products WHERE latest_captured_at IS NOT NULL").fetchone()[0]
    stack.start()

    counts = settle(stack)
    with stack.db() as conn:
        per_product = conn.execute(
            "SELECT p.id, count(s.product_id) FROM products p"
            " LEFT JOIN snapshots s ON s.product_id = p.id GROUP BY p.id").fetchall()
        runs = conn.execute("SELECT status, attempts FROM scrape_runs").fetchall()
    assert len(per_product) == PRODUCTS
    snapshot_counts = sorted({n for _, n in per_product})
    assert snapshot_counts == [1], f"snapshots per product: {snapshot_counts}"
    assert counts["lost"] == 0 and counts["dead_lettered"] == 0
    assert all(status == "succeeded" for status, _ in runs), runs
    chaos_report("kill -9 during first fetches", products=PRODUCTS,
                 runs_in_flight_at_kill=in_flight, fetched_before_kill=fetched_before,
                 **counts, products_with_one_snapshot=len(per_product),
                 runs_retried=sum(1 for _, a in runs if a > 1))


def test_kill9_during_daily_refresh(pilot_stack: Any, seller_login: Any,
                                    chaos_report: Any) -> None:
    stack = pilot_stack(env={"APIFY_BATCH_SIZE": "50"})
    headers = seller_login(stack)
    add_products(stack, headers, fresh_asins(PRODUCTS))
    settle(stack)
    with stack.db() as conn:  # yesterday's observations: every product is due today
        conn.execute("UPDATE products SET latest_captured_at = latest_captured_at"
                     " - interval '2 days'")
    # every actor run takes 6 s: the workers take the 4 batches in turns, so at some
    # moment some runs are done and others in flight; that is when the process dies
    stack.apify_fault("slow", count=4, delay_s=6)
    queue_poison(stack)
    planned = stack.fire("DailyRefresh")["result"]
    assert planned["products"] == PRODUCTS, planned
    in_flight = wait_running(stack, "schedule", 1, done=1)
    stack.kill9()
    with stack.db() as conn:
        done_before = conn.execute(
            "SELECT count(*) FROM scrape_runs WHERE trigger = 'schedule'"
            " AND status = 'succeeded'").fetchone()[0]
    stack.start()

    counts = settle(stack, poison=frozenset({POISON_KEY}))
    with stack.db() as conn:
        per_product = conn.execute(
            "SELECT p.id, count(s.product_id) FROM products p LEFT JOIN snapshots s"
            " ON s.product_id = p.id AND s.captured_at = %s GROUP BY p.id",
            (planned["captured_at"],)).fetchall()
        runs = conn.execute("SELECT status, attempts, idempotency_key FROM scrape_runs"
                            " WHERE trigger = 'schedule'").fetchall()
        run_of_snapshot = conn.execute(
            "SELECT count(DISTINCT s.scrape_run_id) FROM snapshots s"
            " WHERE s.captured_at = %s", (planned["captured_at"],)).fetchone()[0]
    snapshot_counts = sorted({n for _, n in per_product})
    assert len(per_product) == PRODUCTS and snapshot_counts == [1], snapshot_counts
    assert len(runs) == planned["batches"] == run_of_snapshot, runs  # one run per batch
    assert all(status == "succeeded" for status, _, _ in runs), runs
    assert counts["lost"] == 0 and counts["dead_lettered"] == 1  # the poison job, with reason
    chaos_report("kill -9 during daily refresh", products=PRODUCTS, batches=len(runs),
                 runs_in_flight_at_kill=in_flight, runs_done_before_kill=done_before,
                 **counts, products_with_one_snapshot_for_the_run=len(per_product),
                 runs_retried=sum(1 for _, a, _ in runs if a > 1))

"""The transactional outbox and the reconciler, against the session's running stack (real
Postgres, the real AWS endpoint's queues, the stack's workers and relay thread)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.platform import outbox
from amazon_pilot.platform.db import get_engine, transaction
from amazon_pilot.platform.reconcile import MAX_ATTEMPTS, reconcile
from pilot_dev.runtime.stack import Stack
from tests.integration.sellers import new_seller
from tests.integration.test_runtime import wait_for


def one(sql: str, **params: Any) -> Any:
    with get_engine().connect() as conn:
        return conn.execute(text(sql), params).first()


def recorded(key: str) -> bool:
    """The `record` job ran for this key (it writes one audit row per key)."""
    return one("SELECT 1 FROM audit_log WHERE action = 'job.record' AND target = :k",
               k=key) is not None


def test_a_job_exists_only_if_its_transaction_commits(stack: Stack) -> None:
    key = f"outbox-rollback-{uuid.uuid4()}"
    with pytest.raises(RuntimeError), transaction() as conn:
        outbox.enqueue(conn, "low", "record", {}, key)
        raise RuntimeError("the change fails after the job was written")
    assert one("SELECT 1 FROM outbox WHERE job_key = :k", k=key) is None
    kept = f"outbox-commit-{uuid.uuid4()}"
    with transaction() as conn:
        outbox.enqueue(conn, "low", "record", {}, kept)
    # sent by the nudge after the commit, then run by the stack's low worker
    wait_for(lambda: recorded(kept), 30, "the committed job's effect")
    row = one("SELECT sent_at, last_error FROM outbox WHERE job_key = :k", k=kept)
    assert row.sent_at is not None and row.last_error is None


def test_jobs_wait_while_sqs_refuses_them_and_leave_when_it_accepts(
        stack: Stack, stack_env: Callable[[str, str], None]) -> None:
    from amazon_pilot.platform.settings import settings

    real_url = settings().queue_urls["low"]
    # the queue does not exist on the endpoint: SQS refuses every send (NonExistentQueue)
    stack_env("QUEUE_URL_LOW", real_url + "-gone")
    key = f"outbox-refused-{uuid.uuid4()}"
    with transaction() as conn:
        outbox.enqueue(conn, "low", "record", {}, key)
    row = wait_for(lambda: one("SELECT * FROM outbox WHERE job_key = :k AND last_error"
                               " IS NOT NULL", k=key), 10, "the refused send's reason")
    assert row.sent_at is None and row.send_attempts >= 1
    assert "NonExistentQueue" in row.last_error or "does not exist" in row.last_error
    stack_env("QUEUE_URL_LOW", real_url)
    wait_for(lambda: recorded(key), 60, "the job once SQS accepts it")
    assert one("SELECT sent_at FROM outbox WHERE job_key = :k", k=key).sent_at is not None


def test_requeue_unfinished_resends_only_jobs_nobody_finished(stack: Stack) -> None:
    lost, finished = f"outbox-lost-{uuid.uuid4()}", f"outbox-done-{uuid.uuid4()}"
    with get_engine().begin() as conn:  # as the endpoint's queues were when it died
        for key in (lost, finished):
            conn.execute(text(
                "INSERT INTO outbox (priority, job_type, job_key, payload, sent_at)"
                " VALUES ('low', 'record', :k, '{}', now())"), {"k": key})
        conn.execute(text("INSERT INTO processed_messages (idempotency_key, job_type)"
                          " VALUES (:k, 'record')"), {"k": finished})
    assert outbox.requeue_unfinished() >= 1
    wait_for(lambda: recorded(lost), 30, "the lost job, sent again")
    assert not recorded(finished)  # a finished job is not run again


def _stuck_report(api: httpx.Client, attempts: int) -> str:
    from amazon_pilot.tracking.store import upsert_product

    seller = new_seller(api)
    with get_engine().begin() as conn:
        ids = [upsert_product(conn, "B0" + uuid.uuid4().hex[:8].upper(), "com")[0]
               for _ in range(4)]
        group = conn.execute(text(
            "INSERT INTO competitor_groups (user_id, name, main_product_id)"
            " VALUES (:u, 'stuck', :m) RETURNING id"), {"u": seller["id"], "m": ids[0]}).scalar()
        return str(conn.execute(text(
            "INSERT INTO competitor_reports (group_id, user_id, status, attempts, created_at,"
            " started_at) VALUES (:g, :u, 'running', :a, now() - interval '2 hours',"
            " now() - interval '2 hours') RETURNING id"),
            {"g": group, "u": seller["id"], "a": attempts}).scalar())


def test_the_reconciler_fails_abandoned_runs_and_requeues_stuck_work(
        api: httpx.Client, stack: Stack) -> None:
    key = f"fetch:test:{uuid.uuid4()}"
    with get_engine().begin() as conn:
        run_id = conn.execute(text(
            "INSERT INTO scrape_runs (idempotency_key, trigger, status, captured_at, started_at)"
            " VALUES (:k, 'schedule', 'running', now(), now() - interval '1 hour')"
            " RETURNING id"), {"k": key}).scalar()
    retry = _stuck_report(api, attempts=1)
    spent = _stuck_report(api, attempts=MAX_ATTEMPTS)
    seller = new_seller(api)
    never = "B0" + uuid.uuid4().hex[:8].upper()
    with get_engine().begin() as conn:  # tracked an hour ago, its first fetch never queued
        product = conn.execute(text(
            "INSERT INTO products (asin, created_at) VALUES (:a, now() - interval '1 hour')"
            " RETURNING id"), {"a": never}).scalar()
        conn.execute(text("INSERT INTO tracked_products (user_id, product_id) VALUES (:u, :p)"),
                     {"u": seller["id"], "p": product})

    result = reconcile()

    assert result["runs_abandoned"] >= 1 and result["reports_requeued"] >= 1
    assert result["reports_failed"] >= 1 and result["products_queued"] >= 1
    run = one("SELECT status, error FROM scrape_runs WHERE id = :i", i=run_id)
    assert run.status == "failed" and run.error.startswith("abandoned")
    failed = one("SELECT status, error FROM competitor_reports WHERE id = :i", i=spent)
    assert failed.status == "failed" and f"after {MAX_ATTEMPTS} attempts" in failed.error
    assert one("SELECT 1 FROM outbox WHERE job_key = :k", k=f"report:{retry}") is not None
    # the re-queued report is written by the stack's worker; the product gets fetched
    wait_for(lambda: one("SELECT status FROM competitor_reports WHERE id = :i AND"
                         " status IN ('done', 'failed')", i=retry), 60, "the re-queued report")
    wait_for(lambda: one("SELECT 1 FROM products WHERE id = :p AND last_fetch_status"
                         " IS NOT NULL", p=product), 60, "the never-fetched product's fetch")
    # a second pass finds nothing new of these
    again = reconcile()
    assert one("SELECT count(*) AS n FROM outbox WHERE job_key = :k",
               k=f"report:{retry}").n == 1, again

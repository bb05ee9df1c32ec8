"""SQS down during writes: every request that creates work answers as it would with SQS
up (no 500 after a committed change), the work waits in the outbox, and it reaches its
queue and is done once SQS answers again. SQS is cut at the network (a loopback proxy in
front of the AWS endpoint closes every connection carrying an SQS call)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chaos.helpers import fresh_asins, wait_for

pytestmark = pytest.mark.chaos


def test_writes_while_sqs_is_down_are_kept_and_done_when_it_returns(
        pilot_stack: Any, moto_behind_proxy: Any, seller_login: Any, chaos_report: Any) -> None:
    proxy = moto_behind_proxy
    stack = pilot_stack(aws_endpoint_url=proxy.url)
    headers = seller_login(stack)
    asins = fresh_asins(20)

    proxy.cut(b"AmazonSQS")
    statuses: list[int] = []

    def post(path: str, body: Any = None) -> Any:
        response = stack.client.post(path, json=body, headers=headers)
        statuses.append(response.status_code)
        return response

    added = [post("/v1/products", {"url": f"https://www.amazon.com/dp/{a}"}) for a in asins[:5]]
    bulk = post("/v1/products/bulk", {"items": [{"url": f"https://www.amazon.com/dp/{a}"}
                                               for a in asins[5:12]]})
    refreshed = post(f"/v1/products/{added[0].json()['id']}/refresh")
    group = post("/v1/competitor-groups", {"name": "while SQS is down", "main": asins[12],
                                          "competitors": asins[13:16]})
    post(f"/v1/competitor-groups/{group.json()['id']}/reports")
    server_errors = [s for s in statuses if s >= 500]
    assert not server_errors, (statuses, stack.tail())
    assert bulk.json()["created"] == 7 and refreshed.status_code == 202
    with stack.db() as conn:
        pending = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
        fetched = conn.execute(
            "SELECT count(*) FROM products WHERE latest_captured_at IS NOT NULL").fetchone()[0]
    assert pending >= 5 + 1 + 1 + 1 + 1 and fetched == 0  # nothing reached a queue
    cuts = proxy.cuts

    proxy.restore()

    def all_done() -> Any:
        with stack.db() as conn:
            left = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
            unfetched = conn.execute(
                "SELECT count(*) FROM products WHERE latest_captured_at IS NULL"
                " AND last_fetch_status IS NULL").fetchone()[0]
            report_status = conn.execute("SELECT status FROM competitor_reports").fetchone()[0]
        return (left, unfetched, report_status) if (left, unfetched, report_status) == (
            0, 0, "done") else None

    wait_for(all_done, 120, "outbox drained, every product fetched, the report written")
    with stack.db() as conn:
        products = conn.execute("SELECT count(*) FROM products").fetchone()[0]
        runs = conn.execute("SELECT count(*) FROM scrape_runs WHERE status = 'succeeded'"
                            ).fetchone()[0]
    chaos_report("SQS down during writes", requests=len(statuses), server_errors=0,
                 jobs_held_in_outbox=pending, sqs_connections_cut=cuts,
                 products_fetched_after_return=products, scrape_runs_succeeded=runs,
                 report_status="done")


def test_writes_answer_promptly_while_sqs_hangs(
        pilot_stack: Any, moto_behind_proxy: Any, seller_login: Any, chaos_report: Any) -> None:
    """SQS accepts connections but never answers: the nudge after the commit gives up
    quickly (one attempt, short timeouts), so the request still answers in a few seconds."""
    import time

    proxy = moto_behind_proxy
    stack = pilot_stack(aws_endpoint_url=proxy.url)
    headers = seller_login(stack)
    asins = fresh_asins(3)
    proxy.hang(b"AmazonSQS")
    timings, statuses = [], []
    for asin in asins:
        started = time.monotonic()
        response = stack.client.post("/v1/products", headers=headers,
                                     json={"url": f"https://www.amazon.com/dp/{asin}"})
        timings.append(time.monotonic() - started)
        statuses.append(response.status_code)
    assert statuses == [202] * len(asins), (statuses, stack.tail())
    assert max(timings) < 8, timings  # the nudge's 2 s connect/read timeouts, not 60 s
    hung = proxy.hangs
    proxy.restore()

    def fetched() -> Any:
        with stack.db() as conn:
            return conn.execute("SELECT count(*) FROM products WHERE latest_captured_at"
                                " IS NOT NULL").fetchone()[0] == len(asins)

    wait_for(fetched, 120, "every product fetched once SQS answers")
    chaos_report("SQS hung during writes", requests=len(asins), status_202=statuses.count(202),
                 slowest_answer_s=round(max(timings), 2), sqs_calls_hung=hung,
                 products_fetched_after_return=len(asins))

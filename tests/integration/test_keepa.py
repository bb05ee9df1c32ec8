"""PRODUCT_SOURCE=keepa through the running stack: products added and refreshed are
fetched from Keepa's API (its stand-in, with the key the stack keeps as a secret) and
stored as snapshots labelled `keepa`; running out of tokens delays a fetch, it loses
nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from pilot_dev.runtime.stack import Stack, StackConfig
from pilot_dev.standins.apify_catalog import demo_asins
from pilot_dev.standins.keepa_server import KeepaStandIn
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import wait_for
from tests.integration.test_tracking import wait_queues_idle


def _rows(sql: str, **params: Any) -> list[dict[str, Any]]:
    with get_engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


@pytest.fixture()
def keepa(stack: Stack, stack_env: Callable[[str, str], None]) -> Iterator[KeepaStandIn]:
    wait_queues_idle(stack)  # nothing of another test's still fetching from Apify
    from amazon_pilot.platform.settings import reset_settings

    with KeepaStandIn(api_key="sandbox-key") as server, pytest.MonkeyPatch.context() as patch:
        # the template gives every function PRODUCT_SOURCE (its ProductSource parameter):
        # switched in each function's own variables, as a redeploy would
        for env in stack.environments.values():
            patch.setitem(env, "PRODUCT_SOURCE", "keepa")
        stack_env("KEEPA_BASE_URL", server.url)
        yield server
        wait_queues_idle(stack)  # this test's fetches done before the source switches back
    reset_settings()


def test_added_and_refreshed_products_are_stored_from_keepa_and_a_429_waits(
        api: httpx.Client, keepa: KeepaStandIn) -> None:
    seller = new_seller(api)
    asin = demo_asins("kitchen", 3)[2]
    tracked = api.post("/v1/products", json={"asin": asin}, headers=auth(seller)).json()

    def fetched() -> dict[str, Any] | None:
        body = api.get(f"/v1/products/{tracked['id']}", headers=auth(seller)).json()
        return body if body["fetch_status"] == "ok" else None

    product = wait_for(fetched, 30, "the first fetch from Keepa")
    assert product["data_source"] == "sandbox" and product["title"]  # the stand-in's label
    assert [r["asins"] for r in keepa.requests()] == [[asin]]

    # a balance below zero (a large request may leave one): two refills (4 s) before the
    # next request is served, so the refresh's request is answered 429, then retried
    # after refillIn
    keepa.set_tokens(-100, refill_rate=60, refill_interval_s=2)
    # a user-triggered fetch observes at a whole second; one within the add's second
    # would be the same observation (stored once), so step past it
    time.sleep(1.05 - time.time() % 1)
    assert api.post(f"/v1/products/{tracked['id']}/refresh",
                    headers=auth(seller)).status_code == 202
    def finished_runs() -> list[dict[str, Any]] | None:
        rows = _rows("SELECT r.trigger, r.status, r.data_source, r.actor_id, r.tokens_consumed"
                     " FROM scrape_runs r"
                     " JOIN scrape_run_products p ON p.scrape_run_id = r.id JOIN products x"
                     " ON x.id = p.product_id WHERE x.asin = :a AND r.status <> 'running'"
                     " ORDER BY r.started_at", a=asin)
        return rows if len(rows) == 2 else None

    runs = wait_for(finished_runs, 30, "the refresh after the token refill")
    assert [(r["trigger"], r["status"], r["data_source"]) for r in runs] == [
        ("add", "succeeded", "keepa"), ("refresh", "succeeded", "keepa")]
    assert runs[0]["actor_id"] == "keepa/product"
    # each run records the tokens Keepa said it consumed: 1 + 2 for the Buy Box; the
    # request answered 429 consumed none
    assert [r["tokens_consumed"] for r in runs] == [3, 3]
    statuses = [r["status"] for r in keepa.requests()]
    assert statuses[0] == 200 and statuses[-1] == 200
    assert statuses[1:-1] and set(statuses[1:-1]) == {429}
    snapshots = _rows("SELECT s.data_source FROM snapshots s JOIN products x ON"
                      " x.id = s.product_id WHERE x.asin = :a", a=asin)
    assert [s["data_source"] for s in snapshots] == ["sandbox", "sandbox"]


def test_an_unknown_asin_is_not_found_as_with_apify(
        api: httpx.Client, keepa: KeepaStandIn) -> None:
    seller = new_seller(api)
    tracked = api.post("/v1/products", json={"asin": "B0KEEP0000"},
                       headers=auth(seller)).json()

    def settled() -> dict[str, Any] | None:
        body = api.get(f"/v1/products/{tracked['id']}", headers=auth(seller)).json()
        return body if body["fetch_status"] != "pending" else None

    assert wait_for(settled, 30, "the first fetch")["fetch_status"] == "not_found"


def test_pilot_run_starts_the_keepa_standin_only_for_the_keepa_source(
        stack: Stack, stack_env: Callable[[str, str], None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The variables are the process's, which the shared stack's functions read too: through
    # stack_env, so the settings they loaded are forgotten on each change and on the undo (a
    # bare setenv left PRODUCT_SOURCE=keepa cached, and later tests fetched from Keepa).
    wait_queues_idle(stack)
    monkeypatch.delenv("KEEPA_API_KEY", raising=False)
    for source, expected in (("apify", False), ("keepa", True)):
        stack_env("PRODUCT_SOURCE", source)
        local = Stack(StackConfig(port=0))
        local._start_standins()
        try:
            assert ("keepa" in local.standins) is expected
            if expected:
                assert local.config.extra_env["KEEPA_BASE_URL"] == local.standins["keepa"].url
                assert local.config.extra_env["KEEPA_API_KEY"] == "sandbox-key"
        finally:
            for server in local.standins.values():
                server.stop()

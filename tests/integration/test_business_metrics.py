"""A product's first fetch through the running stack leaves what the dashboard and the
saved queries read: the business metrics as EMF in the worker's log group, under the
worker's service, and a "job done" line naming the product (product-fetch-history)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from pilot_dev.runtime.stack import Stack
from pilot_dev.standins.apify_catalog import demo_asins
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import _log_messages, wait_for
from tests.integration.test_tracking import product_row_id

WORKERS = ("CriticalWorkerFunction", "DefaultWorkerFunction", "LowWorkerFunction")


def _lines(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for worker in WORKERS:
        group = f"/aws/lambda/{stack.function_names[worker]}"
        for message in _log_messages(stack, group):
            if message.startswith("{"):
                found.append((worker, json.loads(message)))
    return found


def test_a_fetch_leaves_its_metrics_and_a_job_line_naming_the_product(
        api: httpx.Client, stack: Stack) -> None:
    seller = new_seller(api)
    asin = demo_asins("books", 45)[-1]  # an ASIN no other test tracks
    seen = {json.dumps(d, sort_keys=True) for _, d in _lines(stack)}
    response = api.post("/v1/products", json={"url": f"https://www.amazon.com/dp/{asin}"},
                        headers=auth(seller))
    assert response.status_code == 202, response.text
    tracked = response.json()
    wait_for(lambda: api.get(f"/v1/products/{tracked['id']}", headers=auth(seller))
             .json()["fetch_status"] == "ok", 60, "the first fetch")
    pid = product_row_id(asin)

    def job_line() -> tuple[str, dict[str, Any]] | None:
        return next(((w, d) for w, d in _lines(stack) if d.get("message") == "job done"
                     and d.get("job") == "fetch_products" and pid in d.get("product_ids", [])),
                    None)

    worker, line = wait_for(job_line, 20, "the fetch's job done line")
    assert line["duration_ms"] > 0
    assert line["outcome"]["stored"] == 1 and line["outcome"]["not_found"] == 0

    def new_emf() -> list[dict[str, Any]] | None:
        docs = [d for w, d in _lines(stack) if w == worker and "_aws" in d
                and "SnapshotsIngested" in d and json.dumps(d, sort_keys=True) not in seen]
        return docs or None

    docs = wait_for(new_emf, 20, "the fetch's EMF document")
    service = stack.function_names[worker].rsplit("-", 2)[-2:]  # ...-worker-critical
    for doc in docs:
        assert doc["service"] == "-".join(service)
        declared = {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        assert declared["SnapshotsIngested"] == "Count"
    assert sum(sum(d["SnapshotsIngested"]) for d in docs) >= 1
    assert sum(sum(d["ProductsFetched"]) for d in docs) >= 1
    assert all("ProductsNotFound" in d and "ApifyItems" in d for d in docs)

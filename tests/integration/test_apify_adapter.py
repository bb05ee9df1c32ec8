"""The Apify adapter, through the real apify-client, against the offline stand-in."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from amazon_pilot.adapters.apify import (
    DEFAULT_ACTOR,
    JUNGLEE_ACTOR,
    ApifyProductFetcher,
    ApifyRejected,
    ApifyRunError,
    ApifyUnavailable,
)
from amazon_pilot.domain.normalize import normalize_item
from amazon_pilot.domain.product_ref import product_url
from pilot_dev.standins.apify_catalog import demo_asins, item_for
from pilot_dev.standins.apify_server import ApifyStandIn
from pilot_dev.timetravel import input_on

UNKNOWN = "B0ZZZZ0000"  # the catalog has no page for ASINs ending in 0000


@pytest.fixture(scope="module")
def standin() -> Iterator[ApifyStandIn]:
    server = ApifyStandIn(port=0).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_leftover_faults(standin: ApifyStandIn) -> Iterator[None]:
    standin.clear_faults()
    yield
    standin.clear_faults()


def fetcher(standin: ApifyStandIn, **kwargs: Any) -> ApifyProductFetcher:
    # Fast retries keep fault tests quick; production keeps apify-client's defaults.
    kwargs.setdefault("max_retries", 2)
    kwargs.setdefault("min_delay_between_retries_millis", 10)
    return ApifyProductFetcher("sandbox-token", standin.url, **kwargs)


def refs(n: int, category: str = "wireless earbuds") -> list[tuple[str, str]]:
    return [(a, "com") for a in demo_asins(category, n)]


def _http(
    standin: ApifyStandIn, method: str, path: str, body: Any = None, token: str | None = "t"
) -> tuple[int, Any, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(standin.url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_batch_gives_snapshots_and_names_the_unknown(standin: ApifyStandIn) -> None:
    batch = [*refs(4), (UNKNOWN, "com")]
    result = fetcher(standin).fetch(batch)
    assert result.status == "SUCCEEDED" and result.run_id
    assert sorted(s.asin for s in result.snapshots) == sorted(a for a, _ in batch[:4])
    assert result.not_found == [(UNKNOWN, "com")]
    assert result.problems == [] and result.no_data == []
    assert result.item_count == result.attributed == 5
    assert result.cost_usd == pytest.approx(5 * 0.0005)
    assert result.data_source == "sandbox"
    assert all(s.data_source == "sandbox" for s in result.snapshots)
    assert result.started_at is not None and result.started_at.tzinfo is not None
    assert result.duration_s is not None and result.duration_s >= 0
    run = next(r for r in standin.runs() if r["id"] == result.run_id)
    assert run["urls"] == [product_url(a, m) for a, m in batch]
    snap = result.snapshots[0]
    assert snap.price is None or snap.buy_box_price == snap.price
    assert snap.title and snap.bullet_points


def test_all_pages_of_a_large_dataset_are_read(standin: ApifyStandIn) -> None:
    batch = refs(120, "toys")
    result = fetcher(standin, page_size=25).fetch(batch)
    assert len(result.snapshots) == 120 and result.not_found == []
    pages = [
        r for r in standin.requests()
        if r["path"].endswith(f"/datasets/{result.dataset_id}/items")
    ]  # fmt: skip
    assert len(pages) >= 5  # 120 items at 25 a page


def test_large_inputs_arrive_gzipped(standin: ApifyStandIn) -> None:
    batch = refs(40, "kitchen")  # 40 URLs are well over the client's 1 KiB gzip threshold
    result = fetcher(standin).fetch(batch)
    assert len(result.snapshots) == 40
    starts = [r for r in standin.requests() if r["path"].endswith("/runs") and r["status"] == 201]
    assert starts[-1]["encoding"] == "gzip"


@pytest.mark.parametrize(
    ("mode", "status"), [("run_failed", "FAILED"), ("run_timed_out", "TIMED-OUT")]
)
def test_failed_runs_raise_with_a_record(standin: ApifyStandIn, mode: str, status: str) -> None:
    standin.inject(mode, count=1)
    with pytest.raises(ApifyRunError) as excinfo:
        fetcher(standin).fetch(refs(4))
    error = excinfo.value
    assert error.status == status and error.retryable
    assert error.record is not None and error.record.run_id == error.run_id
    assert error.record.status == status and error.record.cost_usd is not None
    # The fault was used up: the next run is fine.
    assert len(fetcher(standin).fetch(refs(2)).snapshots) == 2


def test_one_429_is_retried_by_the_client(standin: ApifyStandIn) -> None:
    standin.inject("http_429", count=1)
    result = fetcher(standin).fetch(refs(3))
    assert len(result.snapshots) == 3
    assert any(r["status"] == 429 for r in standin.requests())


def test_persistent_500_means_unavailable(standin: ApifyStandIn) -> None:
    standin.inject("http_500", count=50)
    started = time.monotonic()
    with pytest.raises(ApifyUnavailable, match="500") as excinfo:
        fetcher(standin).fetch(refs(3))
    assert excinfo.value.retryable
    assert time.monotonic() - started < 5


def test_malformed_items_are_recorded_and_the_rest_kept(standin: ApifyStandIn) -> None:
    standin.inject("malformed_items", count=1)
    batch = refs(5)
    result = fetcher(standin).fetch(batch)
    # item 0 is an HTML string (no URL: nobody's), item 1 names its URL but holds no data
    html, empty, *others = result.problems
    assert (html.kind, html.index, html.ref) == ("unattributed", 0, None)
    assert "HTML page" in html.reason
    assert (empty.kind, empty.index, empty.ref) == ("unusable", 1, batch[1])
    assert "Unexpected page layout" in empty.reason
    assert [(p.kind, p.ref) for p in others] == [("no_item", batch[0]), ("no_item", batch[1])]
    assert sorted(s.asin for s in result.snapshots) == sorted(a for a, _ in batch[2:])
    # garbage is no evidence that a page is gone: neither product is "not found"
    assert result.not_found == [] and result.no_data == batch[:2]
    assert (result.unattributed, result.unusable, result.attributed) == (1, 1, 3)


def test_missing_items_are_no_data_not_not_found(standin: ApifyStandIn) -> None:
    standin.inject("missing_items", count=1)
    batch = refs(4)
    result = fetcher(standin).fetch(batch)
    assert result.not_found == [] and result.no_data == [batch[-1]]
    assert [(p.kind, p.ref) for p in result.problems] == [("no_item", batch[-1])]
    assert len(result.snapshots) == 3


def test_sandbox_date_picks_the_day(standin: ApifyStandIn) -> None:
    batch = refs(6, "phone chargers")
    day = date(2024, 11, 29)
    result = fetcher(standin, input_builder=input_on(day, DEFAULT_ACTOR)).fetch(batch)
    run = next(r for r in standin.runs() if r["id"] == result.run_id)
    assert run["day"] == "2024-11-29"
    expected = {a: normalize_item(item_for(a, "com", day)) for a, _ in batch}
    for snap in result.snapshots:
        assert snap.price == expected[snap.asin].price
        assert snap.review_count == expected[snap.asin].review_count


def test_slow_run_is_waited_for(standin: ApifyStandIn) -> None:
    standin.inject("slow", count=1, delay_s=1.2)
    started = time.monotonic()
    result = fetcher(standin).fetch(refs(2))
    assert result.status == "SUCCEEDED" and len(result.snapshots) == 2
    assert time.monotonic() - started >= 1.0


def test_run_over_budget_is_aborted(standin: ApifyStandIn) -> None:
    standin.inject("slow", count=1, delay_s=10)
    with pytest.raises(ApifyRunError) as excinfo:
        fetcher(standin, wait_secs=1).fetch(refs(2))
    assert excinfo.value.status == "ABORTED"
    run = next(r for r in standin.runs() if r["id"] == excinfo.value.run_id)
    assert run["status"] == "ABORTED"


def test_junglee_actor_is_configurable(standin: ApifyStandIn) -> None:
    batch = refs(3, "headphones")
    result = fetcher(standin, actor_id=JUNGLEE_ACTOR).fetch(batch)
    assert len(result.snapshots) == 3
    starts = [r for r in standin.requests() if r["path"].endswith("/runs")]
    assert "junglee~amazon-crawler" in starts[-1]["path"]
    for snap in result.snapshots:
        assert snap.rating is not None and snap.review_count is not None and snap.title


def test_unknown_actor_is_rejected_not_retried(standin: ApifyStandIn) -> None:
    with pytest.raises(ApifyRejected, match="404") as excinfo:
        fetcher(standin, actor_id="someone/unknown-actor").fetch(refs(1))
    assert not excinfo.value.retryable


def test_api_contract_auth_errors_and_pagination_headers(standin: ApifyStandIn) -> None:
    status, body, _ = _http(standin, "POST", "/v2/acts/x~y/runs", {"urls": []}, token=None)
    assert status == 401 and set(body["error"]) == {"type", "message"}
    urls = [product_url(a, "com") for a, _ in refs(3)]
    path = "/v2/acts/axesso_data~amazon-product-details-scraper/runs?waitForFinish=10"
    status, body, _ = _http(standin, "POST", path, {"urls": urls})
    assert status == 201 and body["data"]["status"] == "SUCCEEDED"
    dataset = body["data"]["defaultDatasetId"]
    status, items, headers = _http(
        standin, "GET", f"/v2/datasets/{dataset}/items?offset=1&limit=1&fields=asin,price"
    )
    assert status == 200 and len(items) == 1 and set(items[0]) <= {"asin", "price"}
    assert (headers["X-Apify-Pagination-Total"], headers["X-Apify-Pagination-Offset"]) == ("3", "1")
    assert (headers["X-Apify-Pagination-Count"], headers["X-Apify-Pagination-Limit"]) == ("1", "1")
    assert headers["X-Apify-Pagination-Desc"] == "false"
    status, items, _ = _http(
        standin, "POST", "/v2/acts/axesso_data~amazon-product-details-scraper/"
        "run-sync-get-dataset-items", {"urls": urls},
    )  # fmt: skip
    assert status == 201 and [i["asin"] for i in items] == [u[-10:] for u in urls]


def test_dataset_pages_in_either_order_make_the_whole_dataset(standin: ApifyStandIn) -> None:
    # the stand-in renders each page when it is read: pages and orders must still agree
    urls = [product_url(a, "com") for a, _ in refs(5)]
    standin.inject("missing_items")
    path = "/v2/acts/axesso_data~amazon-product-details-scraper/runs?waitForFinish=10"
    _, body, _ = _http(standin, "POST", path, {"urls": urls})
    items_path = f"/v2/datasets/{body['data']['defaultDatasetId']}/items"
    _, whole, headers = _http(standin, "GET", items_path)
    assert [i["url"] for i in whole] == urls[:4]  # the fault left the last one out
    assert headers["X-Apify-Pagination-Total"] == "4"
    pages = [_http(standin, "GET", f"{items_path}?offset={o}&limit=3")[1] for o in (0, 3, 6)]
    assert [i for page in pages for i in page] == whole
    _, backwards, _ = _http(standin, "GET", f"{items_path}?desc=1&offset=1&limit=2")
    assert backwards == [whole[2], whole[1]]


def test_faults_through_the_control_endpoint(standin: ApifyStandIn) -> None:
    status, body, _ = _http(standin, "POST", "/_sandbox/faults", {"mode": "nope"})
    assert status == 400 and "unknown fault mode" in body["error"]["message"]
    status, body, _ = _http(standin, "POST", "/_sandbox/faults", {"mode": "run_failed", "count": 1})
    assert status == 200 and body["faults"]["run_failed"]["count"] == 1
    with pytest.raises(ApifyRunError):
        fetcher(standin).fetch(refs(1))
    status, body, _ = _http(standin, "GET", "/_sandbox/runs")
    assert body["runs"][-1]["fault"] == "run_failed"
    _http(standin, "POST", "/_sandbox/faults", {"mode": "run_failed", "count": 3})
    _http(standin, "DELETE", "/_sandbox/faults")
    assert fetcher(standin).fetch(refs(1)).status == "SUCCEEDED"


def test_gzip_body_accepted_on_the_raw_api(standin: ApifyStandIn) -> None:
    urls = [product_url(a, "com") for a, _ in refs(30)]
    data = gzip.compress(json.dumps({"urls": urls}).encode())
    request = urllib.request.Request(
        standin.url + "/v2/actors/axesso_data~amazon-product-details-scraper/runs",
        data=data, method="POST",
        headers={"Authorization": "Bearer t", "Content-Encoding": "gzip",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def test_standin_runs_as_a_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pilot_dev.standins.apify_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        result = ApifyProductFetcher("sandbox-token", url).fetch(refs(2))
        assert len(result.snapshots) == 2
    finally:
        process.terminate()
        process.wait(timeout=5)

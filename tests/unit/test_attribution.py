"""Attribution (adapters/apify.attribute): an item belongs to the product whose URL was
requested, never to the ASIN it reports, and every item is accounted for on the run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from amazon_pilot.adapters.apify import FetchResult, attribute

ROOT = Path(__file__).resolve().parents[2]
SECOND_RUN = ROOT / "tests/fixtures/runs/second-run.json"


def run(items: list[Any], wanted: list[tuple[str, str]]) -> FetchResult:
    record = FetchResult(None, "SUCCEEDED", None, None, None, None, len(items))
    attribute(items, wanted, record)
    # every item is counted exactly once
    assert (record.attributed + record.duplicates + record.unusable
            + record.unattributed) == record.item_count
    # every requested product ends in exactly one place
    ends = [(s.asin, s.marketplace) for s in record.snapshots] + record.not_found
    assert sorted(ends + record.no_data) == sorted(set(wanted))
    return record


def axesso(url_asin: str, asin: str, price: float, marketplace: str = "com") -> dict[str, Any]:
    return {"statusCode": 200, "statusMessage": "FOUND", "asin": asin, "price": price,
            "url": f"https://www.amazon.{marketplace}/dp/{url_asin}?psc=1",
            "title": f"Bottle {asin}", "warehouseAvailability": "In Stock", "soldBy": "X"}


def test_the_recorded_harsh_run() -> None:
    items = json.loads(SECOND_RUN.read_text())
    wanted = [(a, "com") for a in ("B0RUNOK001", "B0RUNVAR02", "B0RUNGONE3", "B0RUNDUP04",
                                   "B0RUNBOT05", "B0RUNOTH07")]
    record = run(items, wanted)
    stored = {s.asin: s for s in record.snapshots}
    assert sorted(stored) == ["B0RUNDUP04", "B0RUNOK001", "B0RUNOTH07", "B0RUNVAR02"]
    assert stored["B0RUNOK001"].price == 22.49  # not the url-less item's 99.99
    assert stored["B0RUNDUP04"].price == 12.99  # the first of two
    variation = stored["B0RUNVAR02"]
    assert variation.served_asin == "B0RUNVAR2X" and variation.price == 29.99
    assert any("B0RUNVAR2X" in w for w in variation.parse_warnings)
    assert record.not_found == [("B0RUNGONE3", "com")]  # the only 404 page
    assert record.no_data == [("B0RUNBOT05", "com")]  # a robot check is no evidence
    assert (record.attributed, record.duplicates, record.unusable, record.unattributed) == (
        5, 1, 1, 4)
    kinds = [(p.kind, p.index) for p in record.problems]
    assert kinds == [("redirected", 1), ("duplicate", 4), ("unusable", 5),
                     ("unattributed", 7), ("unattributed", 8), ("unattributed", 9),
                     ("unattributed", 10), ("no_item", None)]
    reasons = {p.index: p.reason for p in record.problems}
    assert "HTML page" in reasons[5] and "HTML page" in reasons[7]
    assert reasons[8] == "an empty item: no field at all"
    assert "unknown format" in reasons[9] and "product_url" in reasons[9]
    assert "B0RUNOK001" in reasons[10] and "no product URL" in reasons[10]


def test_the_requested_url_decides_never_the_reported_asin() -> None:
    a, b = "B0ATTRIB01", "B0ATTRIB02"
    # both variations requested; Amazon served b's page for a's URL, and b's own page
    record = run([axesso(a, b, 10.0), axesso(b, b, 11.0)], [(a, "com"), (b, "com")])
    by = {s.asin: s for s in record.snapshots}
    assert by[a].price == 10.0 and by[a].served_asin == b
    assert by[b].price == 11.0 and by[b].served_asin is None
    assert record.duplicates == 0


def test_the_marketplace_is_part_of_the_request() -> None:
    asin = "B0ATTRIB03"
    record = run([axesso(asin, asin, 19.99, "de")], [(asin, "com")])
    assert record.snapshots == [] and record.no_data == [(asin, "com")]
    [unattributed, no_item] = record.problems
    assert unattributed.kind == "unattributed"
    assert "amazon.de, which this run did not request" in unattributed.reason
    assert no_item.kind == "no_item" and no_item.ref == (asin, "com")
    # the marketplace of the request gives the currency
    record = run([axesso(asin, asin, 19.99, "ca")], [(asin, "ca")])
    assert record.snapshots[0].currency == "CAD"


def test_junglee_echoes_the_request_in_input() -> None:
    asin, served = "B07T5GBSDH", "B07T5GBXXX"
    # a real reduced junglee/amazon-crawler item (its thumbnail, crumbs, text left out)
    item = {"title": "ATG Mens Synthetic Utility Pant", "asin": asin, "brand": "ATG",
            "stars": 4.4, "reviewsCount": 10600, "price": {"value": 20.8, "currency": "$"},
            "url": f"https://www.amazon.com/dp/{asin}?language=en"}
    # the page URL names the served variation; `input` is the URL that was requested
    moved = dict(item, asin=served, url=f"https://www.amazon.com/dp/{served}",
                 input=f"https://www.amazon.com/dp/{asin}")
    record = run([moved], [(asin, "com")])
    [snap] = record.snapshots
    assert snap.asin == asin and snap.served_asin == served and snap.price == 20.8
    # the reduced export carries only `url`: it names the product
    record = run([item], [(asin, "com")])
    assert record.snapshots[0].asin == asin and record.snapshots[0].served_asin is None


def test_a_good_item_after_an_unusable_one_is_kept() -> None:
    asin = "B0ATTRIB04"
    bad = {"url": f"https://www.amazon.com/dp/{asin}", "error": "page_blocked"}
    record = run([bad, axesso(asin, asin, 5.0), axesso(asin, asin, 6.0)], [(asin, "com")])
    assert [s.price for s in record.snapshots] == [5.0]
    assert (record.unusable, record.duplicates) == (1, 1)
    assert "page_blocked" in record.problems[0].reason


def test_ten_thousand_items_are_all_accounted_for_quickly() -> None:
    wanted = [(f"B0BULK{i:04d}", "com") for i in range(50)]
    items: list[Any] = []
    for i in range(10_000):
        asin = wanted[(i // 4) % 50][0]
        kind = i % 4
        if kind == 0:
            items.append(axesso(asin, asin, 10.0 + i % 7))
        elif kind == 1:
            items.append({"asin": asin, "title": "no url"})
        elif kind == 2:
            items.append(f"<html>{i}</html>")
        else:
            items.append(axesso(f"B0ELSE{i:04d}", asin, 1.0))
    started = time.monotonic()
    record = run(items, wanted)
    assert time.monotonic() - started < 10
    assert len(record.snapshots) == 50 and record.duplicates == 2500 - 50
    assert record.unattributed == 7500


def test_two_items_for_one_product_keep_the_preferred_one_wherever_it_stands() -> None:
    """docs/actor-formats.md, "Two items for one product": a found page, then the most
    complete item, then fewer parse warnings, then the earlier one."""
    full = dict(axesso("B0PREFER01", "B0PREFER01", 44.99), productRating="4.5 out of 5 stars",
                countReview="1,024")
    bare = {"statusCode": 200, "url": full["url"], "asin": "B0PREFER01", "title": "Bottle",
            "price": 0.01}
    gone = {"statusCode": 404, "statusMessage": "NOT_FOUND", "url": full["url"],
            "asin": "B0PREFER01"}
    robot = {"statusCode": 200, "url": full["url"], "asin": "B0PREFER01", "title": "Robot Check"}
    wanted = [("B0PREFER01", "com")]
    for items in ([bare, full], [full, bare], [gone, bare, full], [robot, full, gone]):
        record = run(items, wanted)
        assert [s.price for s in record.snapshots] == [44.99], items
        assert not record.not_found
        left_out = [p.index for p in record.problems if p.kind == "duplicate"]
        assert full not in [items[i] for i in left_out]
    # a 404 page alone, or a found page and a 404 page: found wins; a tie keeps the first
    assert run([gone], wanted).not_found == wanted
    assert [s.price for s in run([gone, bare], wanted).snapshots] == [0.01]
    twin = dict(full, price=45.99)
    assert [s.price for s in run([full, twin], wanted).snapshots] == [44.99]
    assert [s.price for s in run([twin, full], wanted).snapshots] == [45.99]
    # an unusable item before any usable one is counted unusable, not a duplicate
    record = run([robot, full], wanted)
    assert (record.unusable, record.duplicates) == (1, 0)

"""The three actor formats, read from dataset exports in their real shapes
(tests/fixtures/apify/README.md says what each item exercises)."""

# Localized Amazon pages really use full-width characters, so the cases do too.
# ruff: noqa: RUF001

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from amazon_pilot.domain.normalize import (
    ACTOR_FORMATS,
    ActorFormat,
    ItemProblem,
    ItemReading,
    normalize_item,
    read_item,
    snapshot_to_dict,
)
from amazon_pilot.domain.snapshot import Availability, Fulfilment, OfferSeller, Snapshot

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
AXESSO = "axesso-water-bottles.json"
FULL = "junglee-crawler-full.json"
REDUCED = "junglee-crawler-reduced.json"
FREE = "junglee-free-scraper.json"
BAD = "bad-items.json"


@cache
def _export(name: str) -> tuple[Any, ...]:
    return tuple(json.loads((FIXTURES / "apify" / name).read_text(encoding="utf-8")))


def raw(name: str, index: int) -> Any:
    return copy.deepcopy(_export(name)[index])


def reading(name: str, index: int) -> ItemReading:
    return read_item(raw(name, index))


def snap(name: str, index: int) -> Snapshot:
    s = reading(name, index).snapshot
    assert s is not None, reading(name, index)
    return s


# --------------------------------------------------------------------------------------------
# One product, three formats, the same snapshot


# What the axesso and the full junglee items both say about a product page.
SHARED = (
    "asin", "marketplace", "found", "title", "brand", "price", "list_price", "currency",
    "buy_box_price", "buy_box_seller", "buy_box_seller_id", "availability", "stock_count",
    "in_stock", "rating", "review_count", "bsr_rank", "bsr_category", "subcategory_ranks",
    "bullet_points", "description", "image_urls", "image_count", "video_count",
    "variation_count", "past_sales", "bought_past_month",
)  # fmt: skip
# What the reduced 10-field export says too.
SHARED_REDUCED = ("asin", "marketplace", "found", "title", "brand", "price", "currency",
                  "rating", "review_count", "description")  # fmt: skip


def test_the_formats_give_the_same_snapshot_for_the_same_product() -> None:
    readings = {name: reading(name, 0) for name in (AXESSO, FULL, FREE, REDUCED)}
    assert {n: r.format for n, r in readings.items()} == {
        AXESSO: ActorFormat.AXESSO, FULL: ActorFormat.JUNGLEE, FREE: ActorFormat.JUNGLEE,
        REDUCED: ActorFormat.JUNGLEE_REDUCED,
    }  # fmt: skip
    dicts = {}
    for name, r in readings.items():
        assert r.snapshot is not None and r.problem is None
        assert r.snapshot.parse_warnings == [], (name, r.snapshot.parse_warnings)
        dicts[name] = snapshot_to_dict(r.snapshot)
    axesso = dicts[AXESSO]
    assert axesso["price"] == 24.99 and axesso["currency"] == "USD"
    assert axesso["availability"] == "in_stock" and axesso["bsr_rank"] == 312
    assert axesso["subcategory_ranks"] == [{"rank": 4, "category": "Insulated Water Bottles"}]
    assert axesso["bought_past_month"] == 10000 and axesso["image_count"] == 6
    for name in (FULL, FREE):
        assert {k: dicts[name][k] for k in SHARED} == {k: axesso[k] for k in SHARED}, name
    assert {k: dicts[REDUCED][k] for k in SHARED_REDUCED} == {k: axesso[k] for k in SHARED_REDUCED}


def test_the_actors_and_their_formats_are_named() -> None:
    assert ACTOR_FORMATS == {
        "axesso_data/amazon-product-details-scraper": ActorFormat.AXESSO,
        "junglee/amazon-crawler": ActorFormat.JUNGLEE,
        "junglee/free-amazon-product-scraper": ActorFormat.JUNGLEE,
    }


def test_real_items_are_read_in_their_formats() -> None:
    # Three real items, unchanged: axesso, and two reduced junglee exports.
    items = json.loads((FIXTURES / "replay" / "recorded-run.json").read_text(encoding="utf-8"))
    readings = [read_item(item) for item in items]
    assert [r.format for r in readings] == [
        ActorFormat.AXESSO, ActorFormat.JUNGLEE_REDUCED, ActorFormat.JUNGLEE_REDUCED,
    ]  # fmt: skip
    for r in readings:
        assert r.snapshot is not None and r.snapshot.found
        assert r.snapshot.parse_warnings == [] and r.snapshot.price is not None
    soundcore = readings[0].snapshot
    assert soundcore is not None
    assert (soundcore.fulfilment, soundcore.bought_past_month) == (Fulfilment.FBA, 10000)
    assert (soundcore.is_prime, soundcore.has_deal) == (True, True)


def test_every_fixture_item_reads_without_raising_or_warnings() -> None:
    for name in (AXESSO, FULL, FREE, REDUCED):
        for index, item in enumerate(_export(name)):
            r = read_item(copy.deepcopy(item))
            assert r.problem is None and r.snapshot is not None, (name, index, r)
            assert r.snapshot.parse_warnings == [], (name, index, r.snapshot.parse_warnings)
            json.dumps(snapshot_to_dict(r.snapshot), allow_nan=False)


# --------------------------------------------------------------------------------------------
# Identity: the page the item says it is for, and the ASIN the page showed


@pytest.mark.parametrize("name", [AXESSO, FULL, FREE, REDUCED])
def test_a_variation_served_instead_keeps_both_asins(name: str) -> None:
    r = reading(name, 1)
    assert r.url_ref == ("B0D7FLK3QW", "com")  # what was asked for
    assert r.page_asin == "B0D7FLJ9XR"  # what Amazon served


def test_junglee_names_the_requested_page_by_input_or_original_asin() -> None:
    item = raw(FULL, 1)
    item["url"] = "https://www.amazon.com/dp/B0D7FLJ9XR"  # the url of the page served
    assert read_item(item).url_ref == ("B0D7FLK3QW", "com")  # from `input`
    del item["input"]
    assert read_item(item).url_ref == ("B0D7FLK3QW", "com")  # from `originalAsin`
    del item["originalAsin"]
    assert read_item(item).url_ref == ("B0D7FLJ9XR", "com")  # only the url is left


def test_a_404_item_is_not_found_and_nothing_else() -> None:
    r = reading(AXESSO, 3)
    assert r.problem is None and r.snapshot is not None
    assert r.snapshot.found is False and r.url_ref == ("B09QX7RZ2L", "com")


def test_a_page_that_failed_to_load_is_not_called_not_found() -> None:
    item = raw(AXESSO, 3) | {"statusCode": 503, "statusMessage": "SERVICE_UNAVAILABLE"}
    r = read_item(item)
    assert r.snapshot is None and r.problem is ItemProblem.PAGE_ERROR
    assert r.reason is not None and "503" in r.reason and r.url_ref == ("B09QX7RZ2L", "com")


# --------------------------------------------------------------------------------------------
# No featured offer, stock-outs


@pytest.mark.parametrize("name", [AXESSO, FULL, FREE])
def test_no_featured_offer_is_neither_in_nor_out_of_stock(name: str) -> None:
    s = snap(name, 2)
    assert s.found is True and s.title is not None and s.rating == 4.4
    assert s.availability is Availability.NO_FEATURED_OFFER and s.in_stock is None
    assert (s.price, s.buy_box_price, s.buy_box_seller, s.fulfilment) == (None, None, None, None)


def test_the_reduced_export_cannot_tell_stock_at_all() -> None:
    s = snap(REDUCED, 2)  # no price, and no stock or seller field to judge by
    assert s.availability is Availability.UNKNOWN and s.price is None


@pytest.mark.parametrize("name", [AXESSO, FULL])
def test_a_page_that_says_unavailable_is_out_of_stock(name: str) -> None:
    s = snap(name, 10)
    assert s.availability is Availability.OUT_OF_STOCK and s.in_stock is False


def test_an_offer_without_availability_text_is_unknown_not_out_of_stock() -> None:
    item = raw(AXESSO, 0) | {"warehouseAvailability": ""}
    assert normalize_item(item).availability is Availability.UNKNOWN
    item = raw(FULL, 0) | {"inStockText": None}  # the actor's flag still says in stock
    assert normalize_item(item).availability is Availability.IN_STOCK


def test_missing_fields_are_not_a_suppressed_buy_box() -> None:
    item = raw(AXESSO, 2)
    del item["warehouseAvailability"]
    assert normalize_item(item).availability is Availability.UNKNOWN
    item = raw(FULL, 2)
    del item["inStockText"]
    assert normalize_item(item).availability is Availability.OUT_OF_STOCK  # `inStock` false


# --------------------------------------------------------------------------------------------
# Low stock in every format and language


@pytest.mark.parametrize(
    ("name", "index", "marketplace", "count"),
    [
        (AXESSO, 4, "com", 3), (AXESSO, 5, "de", 4), (AXESSO, 6, "co.jp", 2),
        (FULL, 3, "com", 2), (FULL, 4, "fr", 3),
        (FREE, 3, "in", 1), (FREE, 4, "es", 2), (FREE, 5, "it", 3),
    ],
)  # fmt: skip
def test_low_stock_fixtures(name: str, index: int, marketplace: str, count: int) -> None:
    s = snap(name, index)
    assert s.marketplace == marketplace
    assert s.availability is Availability.LOW_STOCK and s.stock_count == count
    assert s.in_stock is True


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Only 7 left in stock - order soon.", 7),
        ("Only 1 left in stock (more on the way).", 1),
        ("Nur noch 4 auf Lager (mehr ist unterwegs).", 4),
        ("Il ne reste plus que 3 exemplaire(s) en stock.", 3),
        ("Plus que 2 ex. en stock", 2),
        ("Solo quedan 2 en stock (hay más unidades en camino).", 2),
        ("Sólo queda 1 en stock.", 1),
        ("Solo 5 rimasti (ordina subito).", 5),
        ("残り 3 点 ご注文はお早めに", 3),
        ("残り３点 ご注文はお早めに", 3),
        ("Apenas 4 em estoque.", 4),
        ("Nog maar 6 op voorraad.", 6),
        ("Endast 2 kvar i lager.", 2),
        ("Zostały tylko 3 szt. - zamów wkrótce.", 3),
        ("Stokta sadece 5 adet kaldı.", 5),
        ("僅剩 8 件 - 欲購從速。", 8),
        ("تبقى 2 فقط - اطلب الآن.", 2),
    ],
)
def test_only_n_left_in_any_language_and_format(text: str, count: int) -> None:
    for item in (raw(AXESSO, 0) | {"warehouseAvailability": text},
                 raw(FULL, 0) | {"inStockText": text}):  # fmt: skip
        s = normalize_item(item)
        assert (s.availability, s.stock_count) == (Availability.LOW_STOCK, count), text
        assert s.parse_warnings == []


# --------------------------------------------------------------------------------------------
# Currency: the marketplace decides when the symbol could mean it


@pytest.mark.parametrize(
    ("name", "index", "marketplace", "currency"),
    [
        (AXESSO, 7, "ca", "CAD"), (FULL, 5, "ca", "CAD"), (REDUCED, 3, "ca", "CAD"),
        (FULL, 6, "com.au", "AUD"), (FREE, 6, "com.mx", "MXN"), (FREE, 3, "in", "INR"),
        (FULL, 4, "fr", "EUR"), (AXESSO, 6, "co.jp", "JPY"), (FULL, 0, "com", "USD"),
    ],
)  # fmt: skip
def test_currency_comes_from_the_marketplace(
    name: str, index: int, marketplace: str, currency: str
) -> None:
    s = snap(name, index)
    assert (s.marketplace, s.currency) == (marketplace, currency)
    assert s.parse_warnings == []


def _on(marketplace: str, symbol: str) -> Snapshot:
    item = raw(FULL, 0)
    item["url"] = item["input"] = f"https://www.amazon.{marketplace}/dp/B0CWTR4K2P"
    item["price"]["currency"] = item["listPrice"]["currency"] = symbol
    return normalize_item(item)


def test_an_ambiguous_symbol_never_overrides_the_marketplace() -> None:
    s = _on("de", "$")  # which dollar? amazon.de sells in euros
    assert s.currency == "EUR" and any("ambiguous" in w for w in s.parse_warnings)
    assert _on("co.jp", "¥").currency == "JPY"
    assert _on("se", "kr").currency == "SEK"


def test_an_unambiguous_currency_is_believed_and_reported() -> None:
    s = _on("de", "£")
    assert s.currency == "GBP" and any("GBP" in w for w in s.parse_warnings)
    assert _on("com", "C$").currency == "CAD"
    assert _on("com", "EUR").currency == "EUR"
    s = _on("com", "¤")
    assert s.currency == "USD" and any("unknown currency" in w for w in s.parse_warnings)


def test_marketplace_from_the_country_code_when_the_url_has_none() -> None:
    item = raw(FULL, 6)  # amazon.com.au, "$"
    del item["url"], item["input"]
    s = normalize_item(item)
    assert (s.marketplace, s.currency) == ("com.au", "AUD")


# --------------------------------------------------------------------------------------------
# What the page shows beyond the numbers


def test_fulfilment_prime_deal_and_sales() -> None:
    fba, fbm, amazon = snap(AXESSO, 0), snap(AXESSO, 4), snap(AXESSO, 5)
    assert (fba.fulfilment, fba.is_prime, fba.has_deal) == (Fulfilment.FBA, True, True)
    assert (fbm.fulfilment, fbm.is_prime, fbm.has_deal) == (Fulfilment.FBM, False, False)
    assert amazon.fulfilment is Fulfilment.AMAZON
    assert snap(FULL, 4).fulfilment is Fulfilment.AMAZON  # sold by "Amazon" on amazon.fr
    assert snap(FULL, 0).fulfilment is None  # junglee does not say who ships
    assert snap(FULL, 0).is_prime is None and snap(FULL, 0).has_deal is None


def test_offers_listed_by_the_actor() -> None:
    s = snap(FULL, 7)
    assert (s.offer_count, s.seller_count) == (3, 3)
    assert s.offer_sellers[0] == OfferSeller("A3HPKDRCT7QX2M", "HydroPeak Direct")
    assert OfferSeller("ATVPDKIKX0DER", "Amazon.com") in s.offer_sellers
    assert s.fulfilment is Fulfilment.FBA  # the featured offer ships from Amazon
    unlisted = snap(FULL, 0)  # `offers: []` means "not asked for", not "no offers"
    assert (unlisted.offer_count, unlisted.seller_count, unlisted.offer_sellers) == (None, None, [])


def test_a_coupon_on_the_search_card() -> None:
    assert snap(FREE, 3).has_coupon is True
    assert snap(FREE, 0).has_coupon is None and snap(AXESSO, 0).has_coupon is None


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("10K+ bought in past month", 10000),
        ("1.5K+ bought in past month", 1500),
        ("3K bought in past month", 3000),
        ("50+ bought in past month", 50),
        ("1,000+ bought in past month", 1000),
        ("200+ Mal im letzten Monat gekauft", 200),
        ("10K+ Mal im letzten Monat gekauft", 10000),
        ("過去1か月で1000点以上購入されました", 1000),
        ("Plus de 1 k achetés au cours du mois dernier", 1000),
        ("bought in past month", None),
        (None, None),
    ],
)
def test_bought_in_past_month_is_a_number(text: str | None, count: int | None) -> None:
    s = normalize_item(raw(AXESSO, 0) | {"pastSales": text})
    assert (s.past_sales, s.bought_past_month) == (text, count)
    j = normalize_item(raw(FULL, 0) | {"monthlyPurchaseVolume": text})
    assert j.bought_past_month == count


# --------------------------------------------------------------------------------------------
# Bad items: never raise, a named problem, nothing to store


@pytest.mark.parametrize(
    ("index", "problem", "url_ref"),
    [
        (0, ItemProblem.HTML_PAGE, None),
        (1, ItemProblem.HTML_PAGE, ("B0CX5TQ2NB", "com")),
        (2, ItemProblem.NOT_AN_OBJECT, None),
        (3, ItemProblem.NOT_AN_OBJECT, None),
        (4, ItemProblem.NOT_AN_OBJECT, None),
        (5, ItemProblem.EMPTY, None),
        (6, ItemProblem.EMPTY, ("B0CHK2M9QZ", "com")),
        (7, ItemProblem.NO_PRODUCT, None),
        (8, ItemProblem.UNKNOWN_FORMAT, None),
        (9, ItemProblem.ACTOR_ERROR, ("B0CT4RJ8WM", "com")),
    ],
)
def test_bad_items_get_a_named_problem(
    index: int, problem: ItemProblem, url_ref: tuple[str, str] | None
) -> None:
    r = reading(BAD, index)
    assert r.snapshot is None
    assert r.problem is problem and r.reason
    assert r.url_ref == url_ref
    placeholder = normalize_item(raw(BAD, index))  # the old entry point: never raises either
    assert placeholder.found is False and placeholder.asin == ""  # nothing can store it
    assert placeholder.parse_warnings == [f"{problem}: {r.reason}"]


def test_problem_reasons_say_what_the_item_was() -> None:
    reasons = [reading(BAD, i).reason or "" for i in range(10)]
    assert "HTML page" in reasons[0] and "'Amazon.com'" in reasons[0]
    assert "field 'body'" in reasons[1] and "Something went wrong" in reasons[1]
    assert "got int" in reasons[2] and "got null" in reasons[3] and "got list" in reasons[4]
    assert "no field at all" in reasons[5] and "nothing besides url" in reasons[6]
    assert "axesso" in reasons[7] and "naming no product" in reasons[7]
    assert "unknown format" in reasons[8] and "product_title" in reasons[8]
    assert reading(BAD, 8).format is ActorFormat.UNKNOWN
    assert "page_blocked" in reasons[9] and "CAPTCHA" in reasons[9]


def test_a_product_item_with_bad_fields_still_gives_a_snapshot() -> None:
    r = reading(BAD, 10)
    assert r.problem is None and r.snapshot is not None
    s = r.snapshot
    assert s.asin == "B0CQ7WJ3RS" and s.found and s.title is not None
    assert (s.price, s.rating, s.review_count, s.is_prime, s.bullet_points) == (
        None, None, None, None, [],
    )  # fmt: skip
    assert len(s.parse_warnings) == 5


def test_a_bug_costs_one_item_not_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import amazon_pilot.domain.normalize as normalize

    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(normalize, "_normalize_axesso", broken)
    r = read_item(raw(AXESSO, 0))
    assert r.problem is ItemProblem.PARSER_ERROR and r.reason is not None and "boom" in r.reason
    assert read_item(raw(FULL, 0)).snapshot is not None


# --------------------------------------------------------------------------------------------
# `pilot normalize FILE.json` on every format


def test_pilot_normalize_reads_every_format(capsys: pytest.CaptureFixture[str]) -> None:
    from pilot_dev.cli import main

    for name in (AXESSO, FULL, REDUCED, FREE, BAD):
        assert main(["normalize", str(FIXTURES / "apify" / name)]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert len(rows) == len(_export(name))
        if name == BAD:
            assert [r["problem"] for r in rows][:3] == ["html_page", "html_page", "not_an_object"]
            assert rows[10]["problem"] is None and rows[10]["format"] == "axesso"
            assert rows[1]["requested"] == ["B0CX5TQ2NB", "com"] and rows[1]["asin"] == ""
        else:
            assert all(r["problem"] is None and r["parse_warnings"] == [] for r in rows)
            assert rows[0]["price"] == 24.99 and rows[0]["asin"] == "B0CWTR4K2P"
            assert rows[1]["requested"] == ["B0D7FLK3QW", "com"]
            assert rows[1]["page_asin"] == "B0D7FLJ9XR"
            assert {r["format"] for r in rows} == {
                AXESSO: {"axesso"}, FULL: {"junglee"}, FREE: {"junglee"},
                REDUCED: {"junglee_reduced"},
            }[name]


# --------------------------------------------------------------------------------------------
# Stored and read back (the snapshot's details JSON), and read as unknown stock everywhere


def _stored(s: Snapshot) -> Snapshot:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from amazon_pilot.tracking.store import SNAPSHOT_COLUMNS, snapshot_from_row, snapshot_row

    values = snapshot_row(1, datetime(2026, 9, 18, tzinfo=UTC), None, s)
    return snapshot_from_row(s.asin, s.marketplace,
                             SimpleNamespace(**dict(zip(SNAPSHOT_COLUMNS, values, strict=True))))


def test_the_page_details_survive_storage() -> None:
    for s in (snap(FULL, 7), snap(AXESSO, 0), snap(FREE, 3), snap(AXESSO, 2)):
        back = _stored(s)
        fields = ("fulfilment", "offer_count", "seller_count", "offer_sellers", "has_coupon",
                  "bought_past_month", "past_sales", "is_prime", "has_deal", "availability",
                  "stock_count")  # fmt: skip
        assert {f: getattr(back, f) for f in fields} == {f: getattr(s, f) for f in fields}
    assert _stored(snap(AXESSO, 2)).availability is Availability.NO_FEATURED_OFFER


def test_no_featured_offer_reads_as_unknown_stock_everywhere() -> None:
    from datetime import UTC, datetime

    from amazon_pilot.competitors.store import history_point
    from amazon_pilot.domain.changes import LatestValues, Thresholds, detect_changes

    now = datetime(2026, 9, 18, tzinfo=UTC).timestamp()
    entry = [now, None, None, None, None, None, None, None, None, "no_featured_offer"]
    assert history_point(entry).in_stock is None
    in_stock, suppressed, gone = snap(AXESSO, 0), snap(AXESSO, 2), snap(AXESSO, 10)
    for before, after in ((in_stock, suppressed), (suppressed, in_stock)):
        drafts = detect_changes(LatestValues.of(before), after, Thresholds())
        assert not {d.type.value for d in drafts} & {"out_of_stock", "back_in_stock"}
    drafts = detect_changes(LatestValues.of(in_stock), gone, Thresholds())
    assert "out_of_stock" in {d.type.value for d in drafts}  # a real stock-out still alerts


def test_a_competitor_without_a_featured_offer_is_not_listed_out_of_stock() -> None:
    from amazon_pilot.domain.comparison import ProductView, compare_group

    main = ProductView("B0CWTR4K2P", "main", snap(AXESSO, 0), [])
    suppressed = ProductView("B0BZ8MWN4T", "suppressed", snap(AXESSO, 2), [])
    g = compare_group(main, [suppressed], 30)
    product = g.competitor("B0BZ8MWN4T").product
    assert product.availability == "no_featured_offer" and g.group.out_of_stock == ()
    assert product.price.reason == "no price: no featured offer (Buy Box suppressed)"

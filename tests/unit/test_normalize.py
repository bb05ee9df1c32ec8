"""Normalizing the default actor's items."""

# Localized Amazon pages really use full-width punctuation, so the fixtures do too.
# ruff: noqa: RUF001

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amazon_pilot.domain.normalize import (
    normalize_export,
    normalize_item,
    read_item,
    snapshot_to_dict,
)
from amazon_pilot.domain.snapshot import Availability, Snapshot

# --------------------------------------------------------------------------------------------
# Items in the actor's real output format (values invented, shapes as captured).

US_ITEM: dict[str, Any] = {
    "statusCode": 200,
    "statusMessage": "FOUND",
    "url": "https://www.amazon.com/dp/B0C7QK2M4D",
    "asin": "B0C7QK2M4D",
    "title": "Soundcore by Anker P25i Wireless Earbuds, Bluetooth 5.3, 30H Playtime, IPX5",
    "manufacturer": "Visit the Soundcore Store",
    "countReview": 35077,
    "productRating": "4.4 out of 5 stars",
    "price": 19.99,
    "retailPrice": 29.99,
    "shippingPrice": 0,
    "priceSaving": "-33%",
    "soldBy": "Amazon.com",
    "fulfilledBy": "Amazon",
    "sellerId": "ATVPDKIKX0DER",
    "warehouseAvailability": "In Stock",
    "features": [
        "Big Sound, Small Package: 10 mm drivers deliver punchy bass.",
        "30H Playtime: 6 hours per charge, 24 more from the case.",
        "  IPX5 Waterproof: rain and sweat are no problem.  ",
    ],
    "imageUrlList": [
        "https://m.media-amazon.com/images/I/51a1.jpg",
        "https://m.media-amazon.com/images/I/51a2.jpg",
        "https://m.media-amazon.com/images/I/51a3.jpg",
    ],
    "videoeUrlList": ["https://m.media-amazon.com/images/S/vse-vms/v1.mp4"],
    "mainImage": {
        "imageUrl": "https://m.media-amazon.com/images/I/51a1.jpg",
        "imageResolution": "679 x 849",
    },
    "productDescription": "Compact earbuds with a pocket-sized case.",
    "productDetails": [
        {"name": "Product Dimensions", "value": "2.2 x 1.1 x 1 inches; 1.41 ounces"},
        {"name": "ASIN", "value": "B0C7QK2M4D"},
        {"name": "Customer Reviews", "value": "4.4 4.4 out of 5 stars 35,077 ratings"},
        {
            "name": "Best Sellers Rank",
            "value": "#1,073 in Electronics (See Top 100 in Electronics) "
            "#25 in Earbud & In-Ear Headphones #3 in Open-Ear Headphones",
        },
        {"name": "Date First Available", "value": "June 12, 2023"},
    ],
    "aboutProduct": [{"name": "Brand", "value": "Soundcore"}, {"name": "Color", "value": "Black"}],
    "categoriesExtended": [
        {"name": "Electronics", "url": "/b?node=172282", "node": "172282"},
        {"name": "Headphones", "url": "/b?node=172541", "node": "172541"},
    ],
    "variations": [
        {
            "variationName": "Color",
            "values": [
                {
                    "value": "Black",
                    "selected": True,
                    "available": True,
                    "price": 19.99,
                    "asin": "B0C7QK2M4D",
                    "imageUrl": None,
                    "dpUrl": "/dp/B0C7QK2M4D",
                },
                {
                    "value": "White",
                    "selected": False,
                    "available": True,
                    "price": 19.99,
                    "asin": "B0C7QL9X2P",
                    "imageUrl": None,
                    "dpUrl": "/dp/B0C7QL9X2P",
                },
                {
                    "value": "Blue",
                    "selected": False,
                    "available": False,
                    "price": 0,
                    "asin": "B0C7QMZ3YT",
                    "imageUrl": None,
                    "dpUrl": "/dp/B0C7QMZ3YT",
                },
            ],
        },
        {
            "variationName": "Style",
            "values": [{"value": "P25i"}, {"value": "P20i"}],
        },
    ],
    "reviews": [
        {
            "text": "Great for the gym.",
            "date": "Reviewed in the United States on May 2, 2024",
            "rating": "5.0 out of 5 stars",
            "title": "Solid",
            "userName": "Kim",
            "reviewId": "R1",
        },
    ],
    "globalReviews": [],
    "reviewInsights": None,
    "deal": True,
    "prime": True,
    "used": False,
    "pastSales": "10K+ bought in past month",
    "buyBoxUsed": None,
}

ZH_TW_ITEM: dict[str, Any] = {
    "statusCode": 200,
    "statusMessage": "FOUND",
    "url": "https://www.amazon.com/-/zh_TW/dp/B08HMWZBXC",
    "asin": "B08HMWZBXC",
    "title": "Soundcore Life Q20 混合主動降噪耳機",
    "manufacturer": "造訪 Soundcore 商店",
    "countReview": 98123,
    "productRating": "4.7 顆星，最高 5 顆星",
    "price": 49.99,
    "retailPrice": 0,
    "soldBy": "Amazon.com",
    "fulfilledBy": "Amazon",
    "sellerId": "ATVPDKIKX0DER",
    "warehouseAvailability": "現貨。",
    "features": ["40 小時播放時間", "主動降噪"],
    "imageUrlList": ["https://m.media-amazon.com/images/I/61z1.jpg"],
    "videoeUrlList": [],
    "productDetails": [
        {"name": "ASIN", "value": "B08HMWZBXC"},
        {
            "name": "暢銷商品排名",
            "value": "#1,234 在 電子 (請參閱 電子 前 100 名) #56 在 頭戴式耳機",
        },
    ],
    "aboutProduct": [{"name": "品牌", "value": "Soundcore"}],
    "variations": [],
    "deal": False,
    "prime": True,
    "pastSales": None,
}

UNAVAILABLE_ITEM: dict[str, Any] = {
    "statusCode": 200,
    "statusMessage": "FOUND",
    "url": "https://www.amazon.com/dp/B09JB2K8NQ",
    "asin": "B09JB2K8NQ",
    "title": "JLab Go Air Pop True Wireless Earbuds",
    "manufacturer": "Brand: JLab",
    "countReview": 60211,
    "productRating": "4.3 out of 5 stars",
    "price": 0,
    "retailPrice": 0,
    "shippingPrice": 0,
    "priceSaving": None,
    "soldBy": None,
    "fulfilledBy": None,
    "sellerId": None,
    "warehouseAvailability": "",
    "features": ["32+ hour playtime"],
    "imageUrlList": [],
    "videoeUrlList": [],
    "productDetails": [
        {
            "name": "Best Sellers Rank",
            "value": "#35,077 in Electronics (See Top 100 in Electronics)",
        },
    ],
    "variations": [],
    "deal": False,
    "prime": False,
    "pastSales": None,
}


def item(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(US_ITEM)
    out.update(changes)
    return out


# --------------------------------------------------------------------------------------------
# The default actor's items


def test_us_item_gives_every_number_a_seller_needs() -> None:
    s = normalize_item(US_ITEM)
    assert s.parse_warnings == []
    assert (s.asin, s.marketplace, s.found, s.currency) == ("B0C7QK2M4D", "com", True, "USD")
    assert s.title is not None and s.title.startswith("Soundcore by Anker P25i")
    assert s.brand == "Soundcore"
    assert (s.price, s.list_price) == (19.99, 29.99)
    assert (s.buy_box_price, s.buy_box_seller, s.buy_box_seller_id, s.fulfilled_by) == (
        19.99, "Amazon.com", "ATVPDKIKX0DER", "Amazon",
    )  # fmt: skip
    assert s.availability is Availability.IN_STOCK and s.in_stock is True
    assert (s.rating, s.review_count) == (4.4, 35077)
    assert (s.bsr_rank, s.bsr_category) == (1073, "Electronics")
    assert [(r.rank, r.category) for r in s.subcategory_ranks] == [
        (25, "Earbud & In-Ear Headphones"),
        (3, "Open-Ear Headphones"),
    ]
    assert s.subcategory_bsr == 25
    assert s.bullet_points[2] == "IPX5 Waterproof: rain and sweat are no problem."
    assert (s.image_count, s.video_count, s.variation_count) == (3, 1, 5)
    assert s.image_urls[0].endswith("51a1.jpg")
    assert (s.is_prime, s.has_deal, s.past_sales) == (True, True, "10K+ bought in past month")
    assert s.description == "Compact earbuds with a pocket-sized case."
    assert s.data_source == "apify"


def test_localized_zh_tw_page_is_understood() -> None:
    s = normalize_item(ZH_TW_ITEM)
    assert s.parse_warnings == []
    assert s.rating == 4.7
    assert (s.bsr_rank, s.bsr_category) == (1234, "電子")
    assert [(r.rank, r.category) for r in s.subcategory_ranks] == [(56, "頭戴式耳機")]
    assert s.availability is Availability.IN_STOCK
    assert s.brand == "Soundcore"
    assert s.list_price is None  # retailPrice 0 = no list price
    assert s.currency == "USD"  # a zh-TW page of amazon.com still sells in dollars


def test_page_without_an_offer_has_no_featured_offer_not_a_stock_out() -> None:
    s = normalize_item(UNAVAILABLE_ITEM)  # price 0, nobody selling, no availability text
    assert s.parse_warnings == []
    assert s.found is True
    assert (s.price, s.list_price, s.buy_box_price, s.buy_box_seller) == (None, None, None, None)
    assert s.availability is Availability.NO_FEATURED_OFFER and s.in_stock is None
    assert s.brand == "JLab"
    assert (s.bsr_rank, s.subcategory_ranks) == (35077, [])
    assert s.rating == 4.3  # the listing still shows its reviews


@pytest.mark.parametrize("details", [None, [{"name": "ASIN", "value": "B0C7QK2M4D"}], []])
def test_missing_bsr_is_unknown_not_zero(details: Any) -> None:
    s = normalize_item(item(productDetails=details))
    assert (s.bsr_rank, s.bsr_category, s.subcategory_ranks) == (None, None, [])
    assert s.subcategory_bsr is None
    assert s.parse_warnings == []


def test_low_stock_keeps_the_count() -> None:
    s = normalize_item(item(warehouseAvailability="Only 11 left in stock - order soon."))
    assert s.availability is Availability.LOW_STOCK
    assert s.stock_count == 11
    assert s.in_stock is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("In Stock", Availability.IN_STOCK),
        ("In stock.", Availability.IN_STOCK),
        ("Auf Lager", Availability.IN_STOCK),
        ("En stock", Availability.IN_STOCK),
        ("現貨。", Availability.IN_STOCK),
        ("在庫あり。", Availability.IN_STOCK),
        ("Currently unavailable.", Availability.OUT_OF_STOCK),
        ("Temporarily out of stock.", Availability.OUT_OF_STOCK),
        ("", Availability.UNKNOWN),  # an offer (price, seller) but no text: unknown
        ("Nur noch 3 auf Lager", Availability.LOW_STOCK),
        ("Usually ships within 3 to 5 weeks.", Availability.UNKNOWN),
    ],
)
def test_availability_texts(text: str, expected: Availability) -> None:
    assert normalize_item(item(warehouseAvailability=text)).availability is expected


def test_unrecognized_availability_is_reported() -> None:
    s = normalize_item(item(warehouseAvailability="Usually ships within 3 to 5 weeks."))
    assert any("availability" in w for w in s.parse_warnings)


def test_not_found_item() -> None:
    raw = {"statusCode": 404, "statusMessage": "NOT_FOUND",
           "url": "https://www.amazon.co.uk/dp/B0DEAD0000"}  # fmt: skip
    s = normalize_item(raw)
    assert s.found is False
    assert (s.asin, s.marketplace, s.currency) == ("B0DEAD0000", "co.uk", "GBP")
    assert s.price is None and s.availability is Availability.UNKNOWN


@pytest.mark.parametrize(
    ("rating", "expected"),
    [
        ("4,5 von 5 Sternen", 4.5),
        ("5つ星のうち4.3", 4.3),
        ("4,1 sur 5 étoiles", 4.1),
        ("5.0 out of 5 stars", 5.0),
        (4.2, 4.2),
    ],
)
def test_ratings_in_any_language(rating: Any, expected: float) -> None:
    assert normalize_item(item(productRating=rating)).rating == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Nr. 1.234 in Elektronik & Foto (Siehe Top 100 in Elektronik & Foto) Nr. 5 in In-Ear",
         (1234, "Elektronik & Foto", [(5, "In-Ear")])),
        ("- 2,345位家電＆カメラ (家電＆カメラの売れ筋ランキングを見る) - 67位イヤホン",
         (2345, "家電＆カメラ", [(67, "イヤホン")])),
        ("1 234 en High-Tech (Voir les 100 premiers en High-Tech) 56 en Écouteurs",
         (1234, "High-Tech", [(56, "Écouteurs")])),
        ("#12 in Kitchen & Dining (See Top 100 in Kitchen & Dining)\n#3 in Blenders",
         (12, "Kitchen & Dining", [(3, "Blenders")])),
    ],
)  # fmt: skip
def test_bsr_in_any_language(value: str, expected: tuple[int, str, list[tuple[int, str]]]) -> None:
    names = {
        "Nr.": "Amazon Bestseller-Rang",
        "- ": "Amazon 売れ筋ランキング",
        "1 ": "Classement des meilleures ventes d'Amazon",
        "#1": "Best Sellers Rank",
    }
    name = next(n for prefix, n in names.items() if value.startswith(prefix))
    s = normalize_item(item(productDetails=[{"name": name, "value": value}]))
    assert (s.bsr_rank, s.bsr_category) == expected[:2]
    assert [(r.rank, r.category) for r in s.subcategory_ranks] == expected[2]
    assert s.parse_warnings == []


def test_localized_bsr_name_matches_loosely() -> None:
    details = [{"name": "ベストセラーランキング", "value": "- 5位ヘッドホン"}]
    assert normalize_item(item(productDetails=details)).bsr_rank == 5


@pytest.mark.parametrize(
    ("manufacturer", "about", "brand"),
    [
        ("Brand: Amazon", None, "Amazon"),
        ("Besuche den Anker-Store", None, "Anker"),
        ("Ankerのストアを表示", None, "Anker"),
        ("Sony", None, "Sony"),
        (None, [{"name": "Brand", "value": "Bose"}], "Bose"),
        (None, None, None),
    ],
)
def test_brand(manufacturer: Any, about: Any, brand: str | None) -> None:
    assert normalize_item(item(manufacturer=manufacturer, aboutProduct=about)).brand == brand


def test_review_count_tolerates_text() -> None:
    assert normalize_item(item(countReview="1,234")).review_count == 1234
    assert normalize_item(item(countReview="12.345 Sternebewertungen")).review_count == 12345


def test_currency_follows_marketplace() -> None:
    jp = normalize_item(item(url="https://www.amazon.co.jp/dp/B0C7QK2M4D", price=2990))
    assert (jp.marketplace, jp.currency, jp.price) == ("co.jp", "JPY", 2990.0)
    forced = normalize_item(US_ITEM, marketplace="de")
    assert (forced.marketplace, forced.currency) == ("de", "EUR")


def test_sandbox_items_are_labelled() -> None:
    assert normalize_item(item(sandbox=True)).data_source == "sandbox"


def test_bad_fields_become_warnings_and_the_rest_survives() -> None:
    s = normalize_item(item(price="call for price", countReview=-5, prime="yes", features="oops"))
    assert s.price is None and s.review_count is None and s.is_prime is None
    assert s.bullet_points == []
    assert len(s.parse_warnings) == 4
    assert any("price" in w for w in s.parse_warnings)
    assert s.title is not None and s.bsr_rank == 1073 and s.rating == 4.4


def test_non_object_item() -> None:
    s = normalize_item("<html>Robot Check</html>")
    assert s.found is False and s.parse_warnings


def test_junglee_crawler_items_are_understood() -> None:  # more: test_actor_formats.py
    raw = {
        "title": "Anker Nano Charger 20W",
        "url": "https://www.amazon.de/dp/B09C5RG6KV",
        "asin": "B09C5RG6KV",
        "brand": "Anker",
        "stars": 4.6,
        "reviewsCount": 5321,
        "price": {"value": 15.99, "currency": "€"},
        "listPrice": {"value": 19.99, "currency": "€"},
        "inStock": True,
        "bestsellerRanks": [
            {"rank": 210, "category": "Elektronik & Foto"},
            {"rank": 4, "category": "Ladegeräte"},
        ],
    }
    s = normalize_item(raw)
    assert (s.price, s.list_price, s.currency, s.rating, s.review_count) == (
        15.99, 19.99, "EUR", 4.6, 5321,
    )  # fmt: skip
    assert (s.bsr_rank, s.subcategory_bsr, s.brand) == (210, 4, "Anker")
    assert s.in_stock is True


def test_snapshot_to_dict_is_the_normalize_output() -> None:
    out = snapshot_to_dict(normalize_item(US_ITEM))
    for key in ("asin", "title", "brand", "price", "list_price", "currency", "buy_box_price",
                "buy_box_seller", "in_stock", "rating", "review_count", "bsr_rank",
                "bsr_category", "subcategory_ranks", "bullet_points", "image_count",
                "parse_warnings", "data_source", "availability"):  # fmt: skip
        assert key in out
    assert out["subcategory_ranks"] == [
        {"rank": 25, "category": "Earbud & In-Ear Headphones"},
        {"rank": 3, "category": "Open-Ear Headphones"},
    ]
    assert out["in_stock"] is True and out["availability"] == "in_stock"
    json.dumps(out, allow_nan=False)


def test_normalize_export_handles_a_whole_file() -> None:
    rows = list(normalize_export([US_ITEM, ZH_TW_ITEM, UNAVAILABLE_ITEM, 42]))
    assert [r["asin"] for r in rows] == ["B0C7QK2M4D", "B08HMWZBXC", "B09JB2K8NQ", ""]
    assert rows[3]["parse_warnings"]


# --------------------------------------------------------------------------------------------
# Properties: never raise, never emit impossible numbers


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
KNOWN_FIELDS = [
    "statusCode", "url", "asin", "title", "manufacturer", "countReview", "productRating",
    "price", "retailPrice", "soldBy", "fulfilledBy", "sellerId", "warehouseAvailability",
    "features", "imageUrlList", "videoeUrlList", "mainImage", "productDescription",
    "productDetails", "aboutProduct", "variations", "deal", "prime", "pastSales", "sandbox",
    "stars", "reviewsCount", "bestsellerRanks", "inStock", "inStockText", "seller", "offers",
    "listPrice", "monthlyPurchaseVolume", "categoryPageData", "loadedCountryCode", "input",
    "originalAsin", "highResolutionImages", "variantAsins", "videosCount", "thumbnailImage",
    "visitStoreLink", "attributes", "body", "error",
]  # fmt: skip
# Values that look almost right: where parsers are most likely to trip.
near_miss = st.one_of(
    json_values,
    st.sampled_from(["#", "#1 in", "1,2,3 in X", "5つ星のうち", "Only  left", "0", "-1", "NaN"]),
    st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["Best Sellers Rank", "Brand"]), "value": json_values}
        ),
        max_size=3,
    ),
    st.text(alphabet="#0123456789,. in位在()", max_size=60),
)


def _check_sane(s: Snapshot) -> None:
    assert isinstance(s, Snapshot)
    assert s.price is None or s.price > 0
    assert s.list_price is None or s.list_price > 0
    assert s.bsr_rank is None or s.bsr_rank >= 1
    assert all(r.rank >= 1 and r.category for r in s.subcategory_ranks)
    assert s.rating is None or 0 <= s.rating <= 5
    assert s.review_count is None or s.review_count >= 0
    assert s.stock_count is None or s.stock_count >= 0
    assert s.bought_past_month is None or s.bought_past_month >= 1
    assert s.offer_count is None or s.offer_count >= 0
    json.dumps(snapshot_to_dict(s), allow_nan=False)


# No deadline: the suite shares machines with other jobs; the property is about raising.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_never_raises_on_arbitrary_json(value: Any) -> None:
    _check_sane(normalize_item(value))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KNOWN_FIELDS), near_miss, min_size=1, max_size=6))
def test_never_raises_on_wrong_types_in_known_fields(changes: dict[str, Any]) -> None:
    _check_sane(normalize_item(item(**changes)))
    _check_sane(normalize_item(changes))
    junglee = {"title": "Bottle", "url": "https://www.amazon.ca/dp/B0CWTR4K2P", "stars": 4.5,
               "price": {"value": 9.99, "currency": "$"}, "inStock": True} | changes
    reading = read_item(junglee)
    assert reading.problem is not None or reading.snapshot is not None
    _check_sane(normalize_item(junglee))


def test_details_table_names_are_cleaned_the_same_every_time() -> None:
    """Row names are cleaned once per distinct name and remembered; the second item, a
    hostile long name and page furniture come out exactly as cleaning each would."""
    long_name = "Capacity\u200f : " + "x" * 600
    details = [
        {"name": "Capacity \u200f : \u200e", "value": "1.5\u200e  Liters"},
        {"name": "Best Sellers Rank", "value": "#5 in Kitchen"},
        {"name": "\u200f:", "value": "no name left"},
        {"name": long_name, "value": "big"},
    ]
    first = normalize_item(item(productDetails=details))
    again = normalize_item(item(productDetails=copy.deepcopy(details)))
    assert first.details_table == again.details_table
    ours = [row for row in first.details_table if row[1] in ("1.5 Liters", "big", "no name left")]
    assert ours == [("Capacity", "1.5 Liters"), ("Capacity    " + "x" * 488, "big")]
    assert all(name != "Best Sellers Rank" for name, _ in first.details_table)

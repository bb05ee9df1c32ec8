"""Turn a Keepa API product object into a Snapshot (pure: no I/O).

The format is Keepa's own, as its Java API (keepacom/api_backend, `Product.java`,
`KeepaTime.java`) and the `keepa` Python package (akaszynski/keepa) document it; the
facts used here, with their sources, are in tests/fixtures/keepa/README.md:

- `csv[i]` is the history of price type i as a flat list: Keepa-minute, value, ... For
  the types "with shipping" (7, 18-29) each entry is a triple: minute, price, shipping.
- prices are integers in the currency's smallest unit (cents; yen on amazon.co.jp);
  -1 means "no offer at that time" (out of stock); a missing series means no data.
- RATING (16) is stars x 10 (45 = 4.5); COUNT_REVIEWS (17) a count; SALES (3) the rank.
- a Keepa minute is unix minutes - 21564000.
- `salesRanks` maps a category id to that category's rank history (minute, rank, ...);
  `salesRankReference` names the category of the main rank (-1: none); `categoryTree`
  lists the product's categories root first as {catId, name}.
- `stats.current[i]` (only with the `stats` request parameter) is type i's current value.
- `productType` 4 (INVALID) is "no data: invalid or deprecated ASIN".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from amazon_pilot.domain.snapshot import (
    MARKETPLACE_CURRENCY,
    Availability,
    Snapshot,
    SubcategoryRank,
)

__all__ = [
    "DOMAIN_IDS",
    "KEEPA_EPOCH_MINUTE",
    "MARKETPLACES",
    "CsvType",
    "current_value",
    "keepa_minute_to_datetime",
    "last_entry",
    "map_product",
    "product_found",
]

KEEPA_EPOCH_MINUTE = 21_564_000  # KeepaTime.keepaStartMinute: unix minute of Keepa minute 0
IMAGE_BASE = "https://images-na.ssl-images-amazon.com/images/I/"  # Product.imagesCSV

# Keepa's domain id is the ordinal of AmazonLocale; 7 (China) has no marketplace here.
DOMAIN_IDS: dict[str, int] = {
    "com": 1, "co.uk": 2, "de": 3, "fr": 4, "co.jp": 5, "ca": 6, "it": 8, "es": 9,
    "in": 10, "com.mx": 11, "com.br": 12,
}  # fmt: skip
MARKETPLACES = {domain: marketplace for marketplace, domain in DOMAIN_IDS.items()}
# prices in whole units, not hundredths (Product.csv: "if domainId is 5, Japan, 4900 => ¥ 4900")
_WHOLE_UNIT_DOMAINS = frozenset({5})
INVALID_PRODUCT_TYPE = 4


class CsvType:
    """The csv indices read here (Product.CsvType)."""

    AMAZON = 0
    NEW = 1
    SALES = 3
    LISTPRICE = 4
    COUNT_NEW = 11
    RATING = 16
    COUNT_REVIEWS = 17
    BUY_BOX_SHIPPING = 18


# Types whose entries are (minute, price, shipping) triples: CsvType.isWithShipping.
_WITH_SHIPPING = frozenset({7, *range(18, 30)})


def keepa_minute_to_datetime(minute: int) -> datetime:
    return datetime.fromtimestamp((minute + KEEPA_EPOCH_MINUTE) * 60, UTC)


def last_entry(csv: Any, index: int) -> tuple[int, ...] | None:
    """The latest (minute, value[, shipping]) of csv type `index`, or None."""
    if not isinstance(csv, list) or index >= len(csv):
        return None
    series = csv[index]
    stride = 3 if index in _WITH_SHIPPING else 2
    if not isinstance(series, list) or len(series) < stride:
        return None
    entry = series[len(series) - len(series) % stride - stride:][:stride]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in entry):
        return None
    return tuple(entry)


def current_value(product: dict[str, Any], index: int) -> int | None:
    """Type `index`'s current value: `stats.current` when the request asked for stats,
    else the last csv entry's value (for a priced triple, the price without shipping).
    None when Keepa has no data (a missing series); -1 is returned as is."""
    stats = product.get("stats")
    current = stats.get("current") if isinstance(stats, dict) else None
    if isinstance(current, list) and index < len(current):
        value = current[index]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    entry = last_entry(product.get("csv"), index)
    return None if entry is None else entry[1]


def product_found(product: object) -> bool:
    """Whether Keepa knows the product: an object of ours, not INVALID, with some data."""
    if not isinstance(product, dict):
        return False
    if product.get("productType") == INVALID_PRODUCT_TYPE:
        return False
    return bool(product.get("title") or product.get("csv"))


def _money(value: int | None, domain_id: int) -> float | None:
    """A Keepa price as money: None for no data and for -1 (no offer)."""
    if value is None or value < 0:
        return None
    return float(value) if domain_id in _WHOLE_UNIT_DOMAINS else round(value / 100, 2)


def _count(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None


_TAG = re.compile(r"<[^>]+>")


def _text(value: object) -> str | None:
    """Keepa's text fields may carry HTML markup (Product.title, .description)."""
    if not isinstance(value, str):
        return None
    text = " ".join(_TAG.sub(" ", value).split())
    return text or None


def _category_names(product: dict[str, Any]) -> dict[int, str]:
    tree = product.get("categoryTree")
    names: dict[int, str] = {}
    if isinstance(tree, list):
        for node in tree:
            if isinstance(node, dict) and isinstance(node.get("catId"), int):
                name = _text(node.get("name"))
                if name:
                    names[node["catId"]] = name
    return names


def _ranks(product: dict[str, Any]) -> tuple[int | None, str | None, list[SubcategoryRank]]:
    """(main rank, its category, subcategory ranks) from salesRanks/salesRankReference,
    falling back on the SALES csv type for the main rank."""
    names = _category_names(product)
    reference = product.get("salesRankReference")
    ranks = product.get("salesRanks")
    main_rank: int | None = None
    main_category: str | None = None
    subs: list[SubcategoryRank] = []
    if isinstance(ranks, dict):
        for key, history in ranks.items():
            try:
                category_id = int(key)
            except (TypeError, ValueError):
                continue
            if not isinstance(history, list) or len(history) < 2:
                continue
            rank = history[len(history) - len(history) % 2 - 1]
            if not isinstance(rank, int) or rank <= 0:
                continue
            if category_id == reference:
                main_rank, main_category = rank, names.get(category_id)
            else:
                subs.append(SubcategoryRank(rank, names.get(category_id)
                                            or f"category {category_id}"))
    if main_rank is None:
        sales = current_value(product, CsvType.SALES)
        if sales is not None and sales > 0:
            main_rank = sales
            root = product.get("rootCategory")
            main_category = names.get(root) if isinstance(root, int) else None
    if main_rank is not None and main_category is None and names:
        main_category = next(iter(names.values()))  # categoryTree starts at the root
    subs.sort(key=lambda s: s.rank)
    return main_rank, main_category, subs


def _buy_box_seller(product: dict[str, Any]) -> str | None:
    """The last Buy Box holder of buyBoxSellerIdHistory ("-1": none qualified, "-2":
    an unknown seller; both are no seller id)."""
    history = product.get("buyBoxSellerIdHistory")
    if not isinstance(history, list) or len(history) < 2:
        return None
    seller = history[len(history) - len(history) % 2 - 1]
    if isinstance(seller, str) and seller not in ("-1", "-2") and seller.strip():
        return seller.strip()
    return None


def map_product(product: dict[str, Any], asin: str, marketplace: str) -> Snapshot:
    """The Snapshot of one Keepa product object, on the requested (asin, marketplace).
    A product Keepa does not know is a Snapshot with `found=False`."""
    # the local stand-in labels its products, as the Apify stand-in labels its items
    source = "sandbox" if product.get("sandbox") is True else "keepa"
    snap = Snapshot(asin=asin, marketplace=marketplace, data_source=source)
    if not product_found(product):
        snap.found = False
        return snap
    domain_id = product.get("domainId")
    if not isinstance(domain_id, int):
        domain_id = DOMAIN_IDS.get(marketplace, 1)
    snap.title = _text(product.get("title"))
    snap.brand = _text(product.get("brand"))
    snap.currency = MARKETPLACE_CURRENCY.get(marketplace)

    amazon = current_value(product, CsvType.AMAZON)
    new = current_value(product, CsvType.NEW)
    buy_box = current_value(product, CsvType.BUY_BOX_SHIPPING)
    snap.buy_box_price = _money(buy_box, domain_id)
    # the page's price is the featured offer's; without a Buy Box, Amazon's own offer,
    # else the lowest new offer
    snap.price = next((p for p in (_money(v, domain_id) for v in (buy_box, amazon, new))
                       if p is not None), None)
    snap.list_price = _money(current_value(product, CsvType.LISTPRICE), domain_id)
    snap.buy_box_seller_id = _buy_box_seller(product)

    prices = [v for v in (buy_box, amazon, new) if v is not None]
    if any(v > 0 for v in prices):
        snap.availability = (Availability.IN_STOCK if buy_box is None or buy_box > 0
                             else Availability.NO_FEATURED_OFFER)
    elif prices:  # every known offer type says -1: nothing to buy
        snap.availability = Availability.OUT_OF_STOCK

    rating = current_value(product, CsvType.RATING)
    if rating is not None and 0 <= rating <= 50:
        snap.rating = rating / 10
    snap.review_count = _count(current_value(product, CsvType.COUNT_REVIEWS))
    snap.offer_count = _count(current_value(product, CsvType.COUNT_NEW))

    snap.bsr_rank, snap.bsr_category, snap.subcategory_ranks = _ranks(product)

    features = product.get("features")
    if isinstance(features, list):
        snap.bullet_points = [t for t in (_text(f) for f in features) if t]
    snap.description = _text(product.get("description"))
    images = product.get("imagesCSV")
    if isinstance(images, str):
        snap.image_urls = [IMAGE_BASE + name.strip() for name in images.split(",")
                           if name.strip()]
        snap.image_count = len(snap.image_urls)
    if product.get("asin") not in (None, asin):
        snap.served_asin = str(product["asin"])
    return snap

"""Turn raw Apify dataset items into Snapshots (product references: domain/product_ref.py).

Pure functions, no I/O. `normalize_item` runs once per scraped product on the ingestion hot
path, so every pattern is compiled once at import and no validation framework is involved.
It never raises: whatever it cannot read becomes a human-readable entry in `parse_warnings`
and the corresponding field stays None ("unknown", never zero).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from amazon_pilot.domain.snapshot import (
    MARKETPLACE_CURRENCY,
    Availability,
    Snapshot,
    SubcategoryRank,
)

__all__ = [
    "identify_item",
    "normalize_export",
    "normalize_item",
    "snapshot_to_dict",
]

# Cheap marketplace lookup on an item's url; no full URL parse on the hot path.
_ITEM_URL_MP_RE = re.compile(
    r"^https?://(?:www\.|smile\.)?amazon\.([a-z]{2,3}(?:\.[a-z]{2})?)(?=[:/?#]|$)"
)
_ITEM_URL_ASIN_RE = re.compile(
    r"/(?:dp(?:/product)?|gp/product|gp/aw/d|exec/obidos/ASIN|o/ASIN|o)/([A-Z0-9]{10})(?=$|[/?#])",
    re.IGNORECASE,
)

# "4.4 out of 5 stars", "4,5 von 5 Sternen", zh-TW "4.7 顆星...", ja "5つ星のうち4.3".
_RATING_RE = re.compile(r"5\s*つ星のうち\s*(\d+(?:[.,]\d+)?)|(\d+(?:[.,]\d+)?)")
_NUMBER_TEXT_RE = re.compile(r"\d[\d,.\u00a0\u202f' ]*")

# One pattern for every BSR style seen: "#1,234 in X", "Nr. 1.234 in X", "#56 在 X",
# "1 234 en X", "nº5 en X", "n. 5 in X", "1,234位X". It matches either a rank (a number and
# the word before its category; group 1 is the number after its first digit) or a whole
# "(See Top 100 in X)" aside, so asides are skipped and never read as ranks. A category is
# the text from the end of its rank to the start of the next match. Every match starts with
# "(" or a digit, which lets the engine skip other characters quickly.
_BSR_RE = re.compile(
    r"[(\d](?:(?<=\()[^()]*\)|([\d,.\u00a0\u202f ]*)(?:\s(?:in|en|dans|em)\s|\s?[在位]))"
)
_RANK_SEPARATORS = str.maketrans("", "", ",.\u00a0\u202f ")
_BSR_NAME_RE = re.compile(
    r"best\s*-?\s*sellers?\s*-?\s*rank|bestseller|meilleures ventes|más vendidos|mais vendidos"
    r"|ベストセラー|売れ筋ランキング|暢銷|畅销|sales\s*rank|en çok satanlar|najlepiej sprzedaj"
    r"|mest sålda|الأكثر مبيع",
    re.IGNORECASE,
)

_BSR_NAMES = frozenset(
    {"Best Sellers Rank", "Best-Sellers Rank", "Amazon Best Sellers Rank", "暢銷商品排名",
     "Amazon Bestseller-Rang", "Classement des meilleures ventes d'Amazon",
     "ベストセラーランキング", "Amazon 売れ筋ランキング",
     "Posizione nella classifica Bestseller di Amazon",
     "Clasificación en los más vendidos de Amazon"}
)  # fmt: skip

# Brand lines as pages show them; exactly one named group matches.
_BRAND_RE = re.compile(
    r"^(?:visit the\s+(?P<a>.+?)\s+store"
    r"|(?:brand|marke|marque|marca|merk|märke|marka|品牌|ブランド)\s*[:\uff1a]\s*(?P<b>.+)"
    r"|besuche den\s+(?P<c>.+?)-store"
    r"|visitez la boutique\s+(?:de\s+|d')?(?P<d>.+)"
    r"|visita (?:la tienda de|lo store di|a loja)\s+(?P<e>.+)"
    r"|造訪\s*(?P<f>.+?)\s*(?:商店|商店面)"
    r"|(?P<g>.+?)\s*の?ストアを表示"
    r")$",
    re.IGNORECASE,
)
_BRAND_ENTRY_NAMES = frozenset(
    {"brand", "brand name", "marke", "marque", "marca", "merk", "märke", "marka", "ブランド",
     "品牌", "ブランド名"}
)  # fmt: skip

_LOW_STOCK_RE = re.compile(
    r"(?:only|nur noch|plus que|solo|sólo quedan|quedan|restano|nog maar|残り|僅剩|仅剩|tylko)"
    r"\s*(\d{1,6})",
    re.IGNORECASE,
)
_OUT_OF_STOCK_RE = re.compile(
    r"unavailable|out of stock|nicht verfügbar|nicht auf lager|indisponible|non disponibile"
    r"|no disponible|não disponível|niet beschikbaar|ej i lager|niedostępny|stokta yok"
    r"|在庫切れ|取り扱い|無法購買|目前無貨|缺貨|无货|غير متوفر",
    re.IGNORECASE,
)
_IN_STOCK_RE = re.compile(
    r"in stock|auf lager|en stock|disponibile|disponible|em estoque|op voorraad|i lager"
    r"|na stanie|stokta|在庫あり|現貨|现货|有現貨|متوفر",
    re.IGNORECASE,
)

# The commonest texts, looked up before any pattern is tried.
_AVAILABILITY_TEXTS: dict[str, Availability] = {
    "In Stock": Availability.IN_STOCK, "In stock": Availability.IN_STOCK,
    "In Stock.": Availability.IN_STOCK, "In stock.": Availability.IN_STOCK,
    "Auf Lager": Availability.IN_STOCK, "Auf Lager.": Availability.IN_STOCK,
    "En stock": Availability.IN_STOCK, "En stock.": Availability.IN_STOCK,
    "現貨。": Availability.IN_STOCK, "在庫あり。": Availability.IN_STOCK,
    "Disponibilità immediata.": Availability.IN_STOCK,
    "Currently unavailable.": Availability.OUT_OF_STOCK,
    "Currently unavailable": Availability.OUT_OF_STOCK,
}  # fmt: skip
_MAX_REVIEW_COUNT = 10**11  # anything larger is garbage, not a review count
_MAX_RANK = 10**10
_MAX_BSR_TEXT = 1000
_CATEGORY_JUNK = " \t\r\n:-#\u3000\u00a0"
_RANK_PREFIXES = (" Nr.", " nº", " Nº", " n°", " No.", " n.", "Nr.", "nº")


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def identify_item(item: object) -> tuple[str | None, str | None]:
    """(ASIN, marketplace) an item is about, from its `asin` field or its `url`; None if unknown."""
    if not isinstance(item, dict):
        return None, None
    url = item.get("url")
    marketplace: str | None = None
    if isinstance(url, str):
        if url.startswith("https://www.amazon."):  # the actor's own form: skip the regex
            marketplace = url[19:].split("/", 1)[0]
        else:
            mp_match = _ITEM_URL_MP_RE.match(url)
            marketplace = mp_match.group(1) if mp_match is not None else None
        if marketplace not in MARKETPLACE_CURRENCY:
            marketplace = None
    asin = item.get("asin")
    if isinstance(asin, str) and asin.strip():
        return asin.strip().upper(), marketplace
    if isinstance(url, str):
        asin_match = _ITEM_URL_ASIN_RE.search(url)
        if asin_match is not None:
            return asin_match.group(1).upper(), marketplace
    return None, marketplace


def normalize_item(item: object, *, marketplace: str | None = None) -> Snapshot:
    """One dataset item (default actor, or junglee/amazon-crawler) -> Snapshot. Never raises."""
    try:
        if not isinstance(item, dict):
            return Snapshot(
                asin="",
                found=False,
                parse_warnings=[f"item is not a JSON object (got {type(item).__name__})"],
            )
        if "statusCode" not in item and _looks_like_junglee(item):
            return _normalize_junglee(item, marketplace)
        return _normalize_axesso(item, marketplace)
    except Exception as exc:  # a bug must cost one field, never the whole batch
        asin = ""
        if isinstance(item, dict) and isinstance(item.get("asin"), str):
            asin = item["asin"].strip().upper()[:32]
        return Snapshot(
            asin=asin,
            found=False,
            parse_warnings=[f"item could not be parsed ({type(exc).__name__}: {str(exc)[:120]})"],
        )


def _base_snapshot(item: dict[str, Any], marketplace: str | None, warnings: list[str]) -> Snapshot:
    asin, url_marketplace = identify_item(item)
    if asin is None:
        warnings.append("item has neither an 'asin' nor a product 'url'")
        asin = ""
    elif len(asin) != 10:
        warnings.append(f"unexpected ASIN {_short(asin)}")
    if marketplace is None:
        marketplace = url_marketplace
        if marketplace is None:
            url = item.get("url")
            where = f"url {_short(url)}" if isinstance(url, str) else "no url"
            warnings.append(f"marketplace unknown ({where}); assumed amazon.com")
            marketplace = "com"
    snap = Snapshot(asin=asin, marketplace=marketplace, parse_warnings=warnings)
    snap.currency = MARKETPLACE_CURRENCY.get(marketplace)
    if item.get("sandbox") is True:
        snap.data_source = "sandbox"
    return snap


def _normalize_axesso(item: dict[str, Any], marketplace: str | None) -> Snapshot:
    warnings: list[str] = []
    snap = _base_snapshot(item, marketplace, warnings)
    if _status_code(item.get("statusCode"), warnings) not in (None, 200):
        snap.found = False
        snap.title = _text(item.get("title"), "title", warnings)
        return snap
    snap.title = _text(item.get("title"), "title", warnings)
    _offer(item, snap, warnings)
    _availability(item, snap, warnings)
    snap.rating = _rating(item.get("productRating"), warnings)
    snap.review_count = _count(item.get("countReview"), "countReview", warnings)
    _best_sellers_rank(item.get("productDetails"), snap, warnings)
    snap.brand = _brand(item.get("manufacturer"), item.get("aboutProduct"), warnings)
    _content(item, snap, warnings)
    return snap


def _status_code(value: object, warnings: list[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    warnings.append(f"statusCode is not a number: {_short(repr(value))}")
    return None


def _offer(item: dict[str, Any], snap: Snapshot, warnings: list[str]) -> None:
    price = _money(item.get("price"), "price", warnings)
    snap.price = price
    snap.list_price = _money(item.get("retailPrice"), "retailPrice", warnings)
    seller = _text(item.get("soldBy"), "soldBy", warnings)
    if price is not None:
        snap.buy_box_price = price
        snap.buy_box_seller = seller
        snap.buy_box_seller_id = _text(item.get("sellerId"), "sellerId", warnings)
        snap.fulfilled_by = _text(item.get("fulfilledBy"), "fulfilledBy", warnings)


def _availability(item: dict[str, Any], snap: Snapshot, warnings: list[str]) -> None:
    raw = item.get("warehouseAvailability")
    price = item.get("price")
    if snap.price is None and price == 0 and price is not False and item.get("soldBy") is None:
        snap.availability = Availability.OUT_OF_STOCK  # no offer and nobody selling it
        return
    if raw is None:
        return
    if not isinstance(raw, str):
        warnings.append(f"warehouseAvailability is not text: {_short(repr(raw))}")
        return
    text = raw.strip()
    if not text:
        snap.availability = Availability.OUT_OF_STOCK
        return
    known = _AVAILABILITY_TEXTS.get(text)
    if known is not None:
        snap.availability = known
        return
    low = _LOW_STOCK_RE.search(text)
    if low is not None:
        snap.availability = Availability.LOW_STOCK
        snap.stock_count = int(low.group(1))
    elif _OUT_OF_STOCK_RE.search(text):
        snap.availability = Availability.OUT_OF_STOCK
    elif _IN_STOCK_RE.search(text):
        snap.availability = Availability.IN_STOCK
    else:
        warnings.append(f"unrecognized availability text {_short(text)}")


def _content(item: dict[str, Any], snap: Snapshot, warnings: list[str]) -> None:
    snap.bullet_points = _str_list(item.get("features"), "features", warnings)
    images = _str_list(item.get("imageUrlList"), "imageUrlList", warnings)
    if not images:
        main = item.get("mainImage")
        if isinstance(main, dict) and isinstance(main.get("imageUrl"), str):
            images = [main["imageUrl"]]
    snap.image_urls = images
    snap.image_count = len(images)
    videos = item.get("videoeUrlList", item.get("videoUrlList"))  # the actor misspells it
    snap.video_count = len(_str_list(videos, "videoeUrlList", warnings))
    snap.variation_count = _variation_count(item.get("variations"), warnings)
    snap.is_prime = _flag(item.get("prime"), "prime", warnings)
    snap.has_deal = _flag(item.get("deal"), "deal", warnings)
    snap.past_sales = _text(item.get("pastSales"), "pastSales", warnings)
    snap.description = _text(item.get("productDescription"), "productDescription", warnings)


# --------------------------------------------------------------------------------------------
# Field parsers: each returns None for "unknown" and explains anything it had to reject.


def _text(value: object, name: str, warnings: list[str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    warnings.append(f"{name} is not text: {_short(repr(value))}")
    return None


def _flag(value: object, name: str, warnings: list[str]) -> bool | None:
    if value is None or value is True or value is False:
        return value
    warnings.append(f"{name} is not true/false: {_short(repr(value))}")
    return None


def _str_list(value: object, name: str, warnings: list[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        warnings.append(f"{name} is not a list: {_short(repr(value))}")
        return []
    try:
        out = [v.strip() for v in value]
    except AttributeError:  # rare: some entries are not text
        out = [v.strip() for v in value if isinstance(v, str)]
        skipped = len(value) - len(out)
        warnings.append(f"{name}: skipped {skipped} entries that are not text")
    return [v for v in out if v] if "" in out else out


def _number_from_text(text: str) -> float | None:
    """'$1,299.99' -> 1299.99, '19,99 €' -> 19.99, '1.234,5' -> 1234.5, '¥1,234' -> 1234."""
    match = _NUMBER_TEXT_RE.search(text)
    if match is None:
        return None
    digits = match.group(0).strip().replace("\u00a0", "").replace("\u202f", "")
    digits = digits.replace(" ", "").replace("'", "")
    comma, dot = digits.rfind(","), digits.rfind(".")
    if comma >= 0 and dot >= 0:
        decimal = "," if comma > dot else "."
        thousands = "." if decimal == "," else ","
        digits = digits.replace(thousands, "").replace(decimal, ".")
    elif comma >= 0:
        tail = len(digits) - comma - 1
        digits = (
            digits.replace(",", ".")
            if tail in (1, 2) and digits.count(",") == 1
            else (digits.replace(",", ""))
        )
    elif dot >= 0 and (digits.count(".") > 1 or len(digits) - dot - 1 == 3):
        digits = digits.replace(".", "")
    try:
        return float(digits.rstrip(".,"))
    except ValueError:
        return None


def _money(value: object, name: str, warnings: list[str]) -> float | None:
    """A price; 0 means "no price" in the actor's output, so it becomes None."""
    if value is None:
        return None
    amount: float | None = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int | float):
        try:
            amount = float(value)
        except OverflowError:
            amount = None
    elif isinstance(value, str):
        if not value.strip():
            return None
        amount = _number_from_text(value)
    if amount is None or not math.isfinite(amount) or amount < 0:
        warnings.append(f"{name} is not a price: {_short(repr(value))}")
        return None
    return amount if amount > 0 else None


def _count(value: object, name: str, warnings: list[str]) -> int | None:
    if value is None:
        return None
    count: int | None = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        count = value
    elif isinstance(value, float):
        count = int(value) if math.isfinite(value) and value.is_integer() else None
    elif isinstance(value, str):
        match = _NUMBER_TEXT_RE.search(value)
        if match is not None:
            digits = "".join(ch for ch in match.group(0) if "0" <= ch <= "9")
            count = int(digits) if len(digits) <= 12 else None
    if count is None or count < 0 or count > _MAX_REVIEW_COUNT:
        warnings.append(f"{name} is not a count: {_short(repr(value))}")
        return None
    return count


def _rating(value: object, warnings: list[str]) -> float | None:
    if value is None:
        return None
    rating: float | None = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int | float):
        try:
            rating = float(value)
        except OverflowError:
            rating = None
    elif isinstance(value, str):
        if not value.strip():
            return None
        match = _RATING_RE.search(value)
        if match is not None:
            rating = float((match.group(1) or match.group(2)).replace(",", "."))
    if rating is None or not 0 <= rating <= 5:  # NaN fails the range test too
        warnings.append(f"productRating not understood: {_short(repr(value))}")
        return None
    return rating


def _best_sellers_rank(details: object, snap: Snapshot, warnings: list[str]) -> None:
    if details is None:
        return
    if not isinstance(details, list):
        warnings.append(f"productDetails is not a list: {_short(repr(details))}")
        return
    # Fast path: the names the actor emits; BSR sits near the end of the list.
    for entry in reversed(details):
        if (
            isinstance(entry, dict)
            and type(name := entry.get("name")) is str
            and (name in _BSR_NAMES)
        ):
            _parse_bsr_value(entry.get("value"), snap, warnings)
            return
    for entry in details:  # then any name that looks like a BSR label
        if not isinstance(entry, dict):
            continue
        name = entry.get("name")
        if isinstance(name, str) and _BSR_NAME_RE.search(name):
            _parse_bsr_value(entry.get("value"), snap, warnings)
            return


def _parse_bsr_value(value: object, snap: Snapshot, warnings: list[str]) -> None:
    if not isinstance(value, str):
        warnings.append(f"Best Sellers Rank is not text: {_short(repr(value))}")
        return
    text = value[:_MAX_BSR_TEXT]  # real values are < 300 chars; bounds hostile input
    ranks: list[SubcategoryRank] = []
    number = ""
    category_start = -1
    for match in _BSR_RE.finditer(text):
        if category_start >= 0:
            _add_rank(ranks, number, text[category_start : match.start()])
            category_start = -1
        if match.group(1) is not None:
            number = text[match.start() : match.end(1)]
            category_start = match.end()
    if category_start >= 0:
        _add_rank(ranks, number, text[category_start:])
    if not ranks:
        if value.strip():
            warnings.append(f"Best Sellers Rank not understood: {_short(value, 80)}")
        return
    snap.bsr_rank = ranks[0].rank
    snap.bsr_category = ranks[0].category
    snap.subcategory_ranks = ranks[1:]


def _add_rank(ranks: list[SubcategoryRank], number: str, category: str) -> None:
    category = category.strip(_CATEGORY_JUNK)
    if category.endswith(_RANK_PREFIXES):  # "A Nr. 5 in B": drop the next rank's prefix
        category = category.rsplit(None, 1)[0].rstrip(_CATEGORY_JUNK) if " " in category else ""
    digits = number.translate(_RANK_SEPARATORS)
    if category and digits.isdigit() and len(digits) <= 11 and 0 < int(digits) <= _MAX_RANK:
        ranks.append(SubcategoryRank(int(digits), category))


def _brand(manufacturer: object, about: object, warnings: list[str]) -> str | None:
    if isinstance(manufacturer, str) and manufacturer.strip():
        line = manufacturer.strip()
        match = _BRAND_RE.match(line)
        if match is not None and match.lastgroup is not None:
            return match.group(match.lastgroup).strip() or None
        if len(line) <= 80:
            return line
    elif manufacturer is not None and not isinstance(manufacturer, str):
        warnings.append(f"manufacturer is not text: {_short(repr(manufacturer))}")
    if isinstance(about, list):
        for entry in about:
            if isinstance(entry, dict):
                name, value = entry.get("name"), entry.get("value")
                if (
                    isinstance(name, str)
                    and name.strip().lower() in _BRAND_ENTRY_NAMES
                    and isinstance(value, str)
                    and value.strip()
                ):
                    return value.strip()
    return None


def _variation_count(variations: object, warnings: list[str]) -> int:
    if variations is None:
        return 0
    if not isinstance(variations, list):
        warnings.append(f"variations is not a list: {_short(repr(variations))}")
        return 0
    total = 0
    for variation in variations:
        if isinstance(variation, dict):
            values = variation.get("values")
            if isinstance(values, list):
                total += len(values)
    return total


# --------------------------------------------------------------------------------------------
# junglee/amazon-crawler items: different names, numbers instead of text.


def _looks_like_junglee(item: dict[str, Any]) -> bool:
    return (
        "stars" in item
        or "reviewsCount" in item
        or "bestsellerRanks" in item
        or isinstance(item.get("price"), dict)
    )


def _normalize_junglee(item: dict[str, Any], marketplace: str | None) -> Snapshot:
    warnings: list[str] = []
    snap = _base_snapshot(item, marketplace, warnings)
    snap.title = _text(item.get("title"), "title", warnings)
    snap.brand = _text(item.get("brand"), "brand", warnings)
    snap.price = _money(_price_value(item.get("price")), "price", warnings)
    snap.list_price = _money(_price_value(item.get("listPrice")), "listPrice", warnings)
    seller = item.get("seller")
    seller_name = seller.get("name") if isinstance(seller, dict) else None
    if snap.price is not None:
        snap.buy_box_price = snap.price
        snap.buy_box_seller = _text(seller_name, "seller.name", warnings)
    in_stock = item.get("inStock")
    if in_stock is True:
        snap.availability = Availability.IN_STOCK
    elif in_stock is False:
        snap.availability = Availability.OUT_OF_STOCK
    snap.rating = _rating(item.get("stars"), warnings)
    snap.review_count = _count(item.get("reviewsCount"), "reviewsCount", warnings)
    ranks = item.get("bestsellerRanks")
    if isinstance(ranks, list):
        parsed = [
            SubcategoryRank(r["rank"], r["category"].strip())
            for r in ranks
            if isinstance(r, dict)
            and type(r.get("rank")) is int
            and 0 < r["rank"] <= _MAX_RANK
            and isinstance(r.get("category"), str)
        ]
        if parsed:
            snap.bsr_rank, snap.bsr_category = parsed[0].rank, parsed[0].category
            snap.subcategory_ranks = parsed[1:]
    snap.bullet_points = _str_list(item.get("features"), "features", warnings)
    images = _str_list(item.get("highResolutionImages"), "highResolutionImages", warnings)
    snap.image_urls = images
    snap.image_count = len(images)
    snap.description = _text(item.get("description"), "description", warnings)
    return snap


def _price_value(price: object) -> object:
    return price.get("value") if isinstance(price, dict) else price


# --------------------------------------------------------------------------------------------
# Output


def snapshot_to_dict(s: Snapshot) -> dict[str, Any]:
    """The JSON object `pilot normalize` prints for one snapshot."""
    return {
        "asin": s.asin,
        "marketplace": s.marketplace,
        "found": s.found,
        "title": s.title,
        "brand": s.brand,
        "price": s.price,
        "list_price": s.list_price,
        "currency": s.currency,
        "buy_box_price": s.buy_box_price,
        "buy_box_seller": s.buy_box_seller,
        "buy_box_seller_id": s.buy_box_seller_id,
        "fulfilled_by": s.fulfilled_by,
        "in_stock": s.in_stock,
        "availability": s.availability.value,
        "stock_count": s.stock_count,
        "rating": s.rating,
        "review_count": s.review_count,
        "bsr_rank": s.bsr_rank,
        "bsr_category": s.bsr_category,
        "subcategory_ranks": [
            {"rank": r.rank, "category": r.category} for r in s.subcategory_ranks
        ],
        "bullet_points": list(s.bullet_points),
        "description": s.description,
        "image_urls": list(s.image_urls),
        "image_count": s.image_count,
        "video_count": s.video_count,
        "variation_count": s.variation_count,
        "is_prime": s.is_prime,
        "has_deal": s.has_deal,
        "past_sales": s.past_sales,
        "data_source": s.data_source,
        "parse_warnings": list(s.parse_warnings),
    }


def normalize_export(items: Iterable[object]) -> Iterator[dict[str, Any]]:
    """Normalize a whole dataset export (a JSON array of items) into output dicts, lazily."""
    if isinstance(items, dict):  # a single item exported on its own
        items = [items]
    for item in items:
        yield snapshot_to_dict(normalize_item(item))

"""Turn raw Apify dataset items into Snapshots (product references: domain/product_ref.py).

Pure functions, no I/O. `read_item` runs once per scraped product on the ingestion hot path,
so every pattern is compiled once at import and no validation framework is involved.

Three actor formats are read (docs/actor-formats.md has the field-by-field mapping):

- `ActorFormat.AXESSO`: `axesso_data/amazon-product-details-scraper`, the default actor;
  text rating and BSR, 0 for a missing price, no currency field.
- `ActorFormat.JUNGLEE`: `junglee/amazon-crawler` and `junglee/free-amazon-product-scraper`,
  which emit one item shape (seen in real exports of both): numbers for rating and ranks,
  `price{value, currency}` with a currency *symbol*, `seller{}`, `inStock`/`inStockText`.
- `ActorFormat.JUNGLEE_REDUCED`: a junglee export cut down to its 10 commonest fields
  (title, asin, brand, stars, reviewsCount, thumbnailImage, breadCrumbs, description,
  price, url): no stock, seller or rank.

An item is recognised by its field names (`detect_format`), never by the actor it is said
to come from. It never raises: an item that is no product page (not an object, an HTML
page, an error item, empty, of an unknown format, naming no product) gets a named
`ItemProblem` and a reason that says what it was, so the adapter can record it on the run;
a product item with bad fields still gives a Snapshot, each field it could not read left
None ("unknown", never zero) with a human-readable entry in `parse_warnings`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any, NamedTuple

from amazon_pilot.domain.product_ref import (
    SUPPORTED_MARKETPLACES,
    InvalidProductRef,
    parse_product_ref,
)
from amazon_pilot.domain.snapshot import (
    MARKETPLACE_CURRENCY,
    Availability,
    Fulfilment,
    OfferSeller,
    Snapshot,
    SubcategoryRank,
)

__all__ = [
    "ACTOR_FORMATS",
    "ActorFormat",
    "ItemProblem",
    "ItemReading",
    "detect_format",
    "identify_item",
    "item_preference",
    "normalize_export",
    "normalize_item",
    "read_item",
    "snapshot_to_dict",
]


class ActorFormat(StrEnum):
    """The item shape an actor emits, as recognised from an item's field names."""

    AXESSO = "axesso"
    JUNGLEE = "junglee"
    JUNGLEE_REDUCED = "junglee_reduced"
    UNKNOWN = "unknown"


# The actors whose output is read, and the format each emits. (junglee's crawler and its free
# scraper were compared on real exports: same field names, same nesting.)
ACTOR_FORMATS: dict[str, ActorFormat] = {
    "axesso_data/amazon-product-details-scraper": ActorFormat.AXESSO,
    "junglee/amazon-crawler": ActorFormat.JUNGLEE,
    "junglee/free-amazon-product-scraper": ActorFormat.JUNGLEE,
}

_FORMAT_WORDS = {
    ActorFormat.AXESSO: "axesso (axesso_data/amazon-product-details-scraper)",
    ActorFormat.JUNGLEE: "junglee (junglee/amazon-crawler, junglee/free-amazon-product-scraper)",
    ActorFormat.JUNGLEE_REDUCED: "junglee, reduced 10-field export",
    ActorFormat.UNKNOWN: "unknown",
}


class ItemProblem(StrEnum):
    """Why an item gave no snapshot. Nothing is stored for it; the run records it."""

    NOT_AN_OBJECT = "not_an_object"  # a number, null, a list, text
    HTML_PAGE = "html_page"  # an HTML page (CAPTCHA, error page), bare or in a field
    EMPTY = "empty"  # no field at all, or nothing besides the page's url/asin
    ACTOR_ERROR = "actor_error"  # the actor's own error item ({error, errorDescription})
    PAGE_ERROR = "page_error"  # the actor says the page failed to load (not a 404)
    UNKNOWN_FORMAT = "unknown_format"  # fields of none of the three formats
    BLOCKED_PAGE = "blocked_page"  # Amazon served a robot check or an error page instead
    NO_PRODUCT_DATA = "no_product_data"  # a product item without one product value
    NO_PRODUCT = "no_product"  # a known format, but it names no ASIN nor product URL
    PARSER_ERROR = "parser_error"  # a bug in this module (reported, never raised)


class ItemReading(NamedTuple):
    """What one dataset item says: a snapshot, or the problem that prevented one."""

    format: ActorFormat
    snapshot: Snapshot | None  # None exactly when `problem` is set
    problem: ItemProblem | None = None
    reason: str | None = None  # for a problem: what the item was, format named
    # (ASIN, marketplace) of the product page the item says was requested: axesso's `url`;
    # junglee's `input` (a product URL), else its `originalAsin`, else its `url`. The ASIN
    # the page itself showed is `page_asin`; they differ when Amazon served another
    # variation or redirected.
    url_ref: tuple[str, str] | None = None
    page_asin: str | None = None


# Cheap marketplace lookup on an item's url; no full URL parse on the hot path.
_ITEM_URL_MP_RE = re.compile(
    r"^https?://(?:www\.|smile\.)?amazon\.([a-z]{2,3}(?:\.[a-z]{2})?)(?=[:/?#]|$)"
)
_ITEM_URL_ASIN_RE = re.compile(
    r"/(?:dp(?:/product)?|gp/product|gp/aw/d|exec/obidos/ASIN|o/ASIN|o)/([A-Z0-9]{10})(?=$|[/?#])",
    re.IGNORECASE,
)
# junglee's `loadedCountryCode` -> marketplace, for items whose url names no Amazon store.
_COUNTRY_MARKETPLACE = {
    "US": "com", "CA": "ca", "MX": "com.mx", "BR": "com.br", "GB": "co.uk", "UK": "co.uk",
    "DE": "de", "FR": "fr", "IT": "it", "ES": "es", "NL": "nl", "SE": "se", "PL": "pl",
    "TR": "com.tr", "AE": "ae", "SA": "sa", "IN": "in", "JP": "co.jp", "AU": "com.au",
    "SG": "sg", "TW": "com.tw",
}  # fmt: skip

# Field names only one format uses (shared names such as title, url, asin, features,
# description count for neither).
_AXESSO_FIELDS = frozenset(
    {"statusCode", "statusMessage", "countReview", "productRating", "warehouseAvailability",
     "soldBy", "fulfilledBy", "sellerId", "retailPrice", "imageUrlList", "videoeUrlList",
     "productDetails", "manufacturer", "aboutProduct", "pastSales", "mainImage",
     "productDescription", "variations", "categoriesExtended", "priceSaving", "buyBoxUsed"}
)  # fmt: skip
_JUNGLEE_FIELDS = frozenset({"stars", "reviewsCount", "thumbnailImage", "breadCrumbs", "brand"})
# Fields of the full junglee item that its reduced export leaves out.
_JUNGLEE_FULL_FIELDS = frozenset(
    {"inStock", "inStockText", "originalAsin", "seller", "listPrice", "highResolutionImages",
     "galleryThumbnails", "bestsellerRanks", "attributes", "productOverview", "variantAsins",
     "variantDetails", "monthlyPurchaseVolume", "loadedCountryCode", "offers", "starsBreakdown",
     "videosCount", "visitStoreLink", "reviewsLink", "answeredQuestions", "locationText",
     "unNormalizedProductUrl", "categoryPageData", "isAmazonChoice"}
)  # fmt: skip
_IDENTITY_FIELDS = frozenset({"url", "asin", "input", "sandbox"})
# Every field a format defines (a product item's HTML error body sits in some other field).
_KNOWN_FIELDS = _AXESSO_FIELDS | _JUNGLEE_FIELDS | _JUNGLEE_FULL_FIELDS | _IDENTITY_FIELDS | {
    "title", "price", "features", "description", "reviews", "globalReviews", "reviewInsights",
    "deal", "prime", "used", "minimalQuantity", "productSpecification", "bookVariations",
    "deliveryMessage", "importantInformation", "priceRange", "shippingPrice",
    "priceShippingInformation", "author", "sustainabilityFeatures", "fastestDelivery",
    "condition", "returnPolicy", "support", "variantAttributes", "manufacturerAttributes",
    "amazonChoiceText", "bookDescription", "aPlusContent", "brandStory", "productComparison",
    "aiReviewsSummary", "productPageReviews", "productPageReviewsFromOtherCountries",
    "delivery", "hasReviews",
}

_REF_MARKETPLACES = frozenset(SUPPORTED_MARKETPLACES)
_REF_ASIN_RE = re.compile(r"B0[A-Z0-9]{8}|\d{9}[\dX]")
_HTML_RE = re.compile(r"\s*(?:<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])", re.IGNORECASE)
_HTML_TITLE_RE = re.compile(r"<title[^>]*>([^<]{0,200})</title>", re.IGNORECASE)
_NOT_FOUND_CODES = frozenset({404, 410})
# Titles of the pages Amazon serves instead of a product: never a product's title.
_BLOCK_TITLES = frozenset({
    "robot check", "amazon.com", "sorry! something went wrong!", "amazon.com page not found",
    "503 - service unavailable error", "service unavailable error", "captcha",
})  # fmt: skip

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

# "Only N left in stock" in the languages Amazon uses: en "Only 3 left", de "Nur noch 4 auf
# Lager", fr "Il ne reste plus que 3 exemplaire(s)", es "Solo quedan 2 en stock", it "Solo 3
# rimasti", pt "Apenas 3 em estoque", nl "Nog maar 3 op voorraad", sv "Endast 3 kvar",
# pl "Zostało tylko 3 szt.", tr "Stokta sadece 3 adet kald\u0131", ja "残り2点", zh "僅剩3件",
# ar "تبقى 3 فقط". \d also matches full-width and Arabic-Indic digits; int() reads them.
_LOW_STOCK_RE = re.compile(
    r"(?:only|nur noch|plus que|s[oó]lo(?:\s+quedan?)?|quedan?|restano|rimangono|apenas"
    r"|restam|nog maar|slechts|endast|bara|tylko|sadece|yaln\u0131zca|残り|僅剩|仅剩|只剩|تبقى)"
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

# "10K+ bought in past month", "200+ Mal im letzten Monat gekauft", "過去1か月で100点以上購入":
# every number with its multiplier; the largest is the count (the month's "1" is smaller).
_PAST_SALES_RE = re.compile(
    r"(\d+(?:[.,]\d+)*)\s?(?:([kKmM]|mil|Mio)(?![^\W\d_])|([千万]))?"
)
_MULTIPLIERS = {"k": 1_000, "m": 1_000_000, "mil": 1_000, "mio": 1_000_000, "千": 1_000,
                "万": 10_000}  # fmt: skip
_COUPON_RE = re.compile(r"coupon|cupón|cupom|gutschein|クーポン|优惠券|優惠券|kupon", re.IGNORECASE)

# A seller (or shipper) that is Amazon itself: "Amazon", "Amazon.com", "Amazon.co.uk",
# "Amazon.com Services LLC", "Amazon EU S.à r.l.".
_AMAZON_SELLER_RE = re.compile(r"amazon(?:\.[a-z]{2,3}(?:\.[a-z]{2})?)?(?:$|[\s,])", re.IGNORECASE)

# Currency symbols (and codes) -> the currencies they can mean. A symbol that can mean the
# marketplace's currency means it: "$" on amazon.ca is CAD, on amazon.com.au AUD.
_CURRENCY_SYMBOLS: dict[str, tuple[str, ...]] = {
    "$": ("USD", "CAD", "AUD", "MXN", "SGD", "TWD"), "US$": ("USD",), "USD": ("USD",),
    "C$": ("CAD",), "CA$": ("CAD",), "CDN$": ("CAD",), "A$": ("AUD",), "AU$": ("AUD",),
    "MX$": ("MXN",), "R$": ("BRL",), "S$": ("SGD",), "NT$": ("TWD",), "€": ("EUR",),
    "£": ("GBP",), "¥": ("JPY", "CNY"), "￥": ("JPY", "CNY"), "円": ("JPY",), "₹": ("INR",),
    "Rs.": ("INR",), "zł": ("PLN",), "kr": ("SEK", "NOK", "DKK"), "TL": ("TRY",),
    "₺": ("TRY",), "د.إ": ("AED",), "ر.س": ("SAR",),
}  # fmt: skip
_MAX_REVIEW_COUNT = 10**11  # anything larger is garbage, not a review count
_MAX_RANK = 10**10
_MAX_BSR_TEXT = 1000
_CATEGORY_JUNK = " \t\r\n:-#\u3000\u00a0"
_RANK_PREFIXES = (" Nr.", " nº", " Nº", " n°", " No.", " n.", "Nr.", "nº")


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


# --------------------------------------------------------------------------------------------
# Entry points


def detect_format(item: dict[str, Any]) -> ActorFormat:
    """The format an item's field names belong to (UNKNOWN when they belong to none)."""
    if "statusCode" in item:  # the default actor's every item, found or not
        return ActorFormat.AXESSO
    axesso = sum(1 for key in _AXESSO_FIELDS if key in item)
    junglee = sum(1 for key in _JUNGLEE_FIELDS if key in item)
    full = sum(1 for key in _JUNGLEE_FULL_FIELDS if key in item)
    if isinstance(item.get("price"), dict):
        junglee += 1
    if axesso == 0 and junglee + full == 0:
        return ActorFormat.UNKNOWN
    if axesso > junglee + full:
        return ActorFormat.AXESSO
    return ActorFormat.JUNGLEE if full else ActorFormat.JUNGLEE_REDUCED


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
    if marketplace is None:
        country = item.get("loadedCountryCode")
        if isinstance(country, str):
            marketplace = _COUNTRY_MARKETPLACE.get(country.strip().upper())
    asin = item.get("asin")
    if isinstance(asin, str) and asin.strip():
        return asin.strip().upper(), marketplace
    if isinstance(url, str):
        asin_match = _ITEM_URL_ASIN_RE.search(url)
        if asin_match is not None:
            return asin_match.group(1).upper(), marketplace
    return None, marketplace


def read_item(item: object, *, marketplace: str | None = None) -> ItemReading:
    """One dataset item -> its snapshot, or the named problem that prevented one. Never raises.

    `marketplace` is the store the item was requested from, when the caller knows it; it
    wins over the item's own url.
    """
    fmt = ActorFormat.UNKNOWN
    try:
        if not isinstance(item, dict):
            return _not_an_object(item)
        html = _html_in(item)
        fmt = detect_format(item)
        url_ref = _url_ref(item)
        if html is not None:
            return _problem(fmt, ItemProblem.HTML_PAGE, f"an HTML page, not a product item{html}",
                            url_ref)
        if fmt is ActorFormat.UNKNOWN:
            return _unknown(item, url_ref)
        page_asin = _page_asin(item)
        if page_asin is None and url_ref is None and identify_item(item)[0] is None:
            fields = ", ".join(sorted(map(str, item))[:8])
            return _problem(fmt, ItemProblem.NO_PRODUCT,
                            f"an item in the {_FORMAT_WORDS[fmt]} format naming no product: "
                            f"no ASIN, no product url (fields: {fields})", None)
        title = item.get("title")
        if isinstance(title, str) and title.strip().lower() in _BLOCK_TITLES:
            return _problem(fmt, ItemProblem.BLOCKED_PAGE,
                            f"Amazon served a {_short(title.strip())!r} page instead of the "
                            "product", url_ref, page_asin)
        if fmt is ActorFormat.AXESSO:
            code = _status_code(item.get("statusCode"), [])
            if code is not None and code != 200 and code not in _NOT_FOUND_CODES:
                message = item.get("statusMessage")
                said = f" {_short(message)}" if isinstance(message, str) and message else ""
                return _problem(fmt, ItemProblem.PAGE_ERROR,
                                f"the actor could not load the page (statusCode {code}{said}); "
                                "not a missing product", url_ref, page_asin)
            snap = _normalize_axesso(item, marketplace)
        else:
            snap = _normalize_junglee(item, marketplace, fmt is ActorFormat.JUNGLEE_REDUCED)
        if snap.found and not _has_product_data(snap):
            said = "; ".join(snap.parse_warnings[:2])
            return _problem(fmt, ItemProblem.NO_PRODUCT_DATA,
                            "the item holds no product data" + (f": {_short(said)}" if said
                                                                else ""), url_ref, page_asin)
        return ItemReading(fmt, snap, url_ref=url_ref, page_asin=page_asin)
    except Exception as exc:  # a bug must cost one item, never the whole batch
        return _problem(fmt, ItemProblem.PARSER_ERROR,
                        f"the item could not be read ({type(exc).__name__}: {str(exc)[:120]})",
                        None)


def _has_product_data(snap: Snapshot) -> bool:
    return any(v is not None for v in (snap.title, snap.price, snap.rating, snap.review_count,
                                        snap.bsr_rank, snap.buy_box_seller)) or bool(
        snap.image_urls)


def item_preference(snap: Snapshot) -> tuple[int, int, int]:
    """How strongly an item for one product is preferred over another item for the same
    product in the same run (actors do emit two: a variation page and the product's, a
    retry's copy). Larger wins; on a tie the earlier item in the dataset is kept. The
    rule (docs/actor-formats.md, "Two items for one product"):

    1. a found page beats the actor's 404 page (the product exists);
    2. then the item that knows more of the values alerts and history use (price, list
       and Buy Box price, Buy Box seller, rating, reviews, rank, availability, title,
       brand, images, bullets);
    3. then the one with fewer parse warnings (fields the page had but we could not read).
    """
    known = sum(v is not None for v in (
        snap.price, snap.list_price, snap.buy_box_price, snap.buy_box_seller, snap.rating,
        snap.review_count, snap.bsr_rank, snap.title, snap.brand))
    known += (snap.availability is not Availability.UNKNOWN) + bool(snap.image_urls) + bool(
        snap.bullet_points)
    return int(snap.found), known, -len(snap.parse_warnings)


def normalize_item(item: object, *, marketplace: str | None = None) -> Snapshot:
    """One dataset item -> Snapshot. Never raises. An item that is no product page gives a
    placeholder without an ASIN (so nothing can store it), not found, whose only warning is
    the reason; `read_item` tells them apart and says which page they concern."""
    reading = read_item(item, marketplace=marketplace)
    if reading.snapshot is not None:
        return reading.snapshot
    mp = marketplace or (reading.url_ref[1] if reading.url_ref else "com")
    return Snapshot(asin="", marketplace=mp, found=False,
                    parse_warnings=[f"{reading.problem}: {reading.reason}"])


def _problem(fmt: ActorFormat, problem: ItemProblem, reason: str,
             url_ref: tuple[str, str] | None, page_asin: str | None = None) -> ItemReading:
    return ItemReading(fmt, None, problem, reason, url_ref, page_asin)


def _not_an_object(item: object) -> ItemReading:
    if isinstance(item, str):
        if _HTML_RE.match(item[:300]):
            return _problem(ActorFormat.UNKNOWN, ItemProblem.HTML_PAGE,
                            f"an HTML page, not a product item{_html_title(item)}", None)
        return _problem(ActorFormat.UNKNOWN, ItemProblem.NOT_AN_OBJECT,
                        f"text, not a JSON object: {_short(item)}", None)
    kind = "null" if item is None else type(item).__name__
    return _problem(ActorFormat.UNKNOWN, ItemProblem.NOT_AN_OBJECT,
                    f"not a JSON object (got {kind})", None)


def _html_in(item: dict[str, Any]) -> str | None:
    """' in field ... (title ...)' if a top-level field holds an HTML page, else None. Only
    fields no format defines are looked at, and the title (real items have neither)."""
    if item.keys() <= _KNOWN_FIELDS:  # the usual item (a subset test builds no set)
        extra: Iterable[str] = ("title",)
    else:
        unknown = item.keys() - _KNOWN_FIELDS
        unknown.add("title")
        extra = unknown
    for key in extra:
        value = item.get(key)
        if type(value) is str and value[:1] in "<\n\r\t " and value and _HTML_RE.match(value[:300]):
            return f" in field {_short(str(key), 20)}{_html_title(value)}"
    return None


def _html_title(page: str) -> str:
    match = _HTML_TITLE_RE.search(page[:5000])
    title = match.group(1).strip() if match is not None else ""
    return f" (title {_short(title, 60)})" if title else ""


def _unknown(item: dict[str, Any], url_ref: tuple[str, str] | None) -> ItemReading:
    error = item.get("error")
    if error is not None and error != "":
        detail = item.get("errorDescription") or item.get("message")
        said = f": {str(detail)[:160]}" if detail else ""
        return _problem(ActorFormat.UNKNOWN, ItemProblem.ACTOR_ERROR,
                        f"the actor's error item ({str(error)[:80]}{said})", url_ref)
    content = sorted(str(k) for k, v in item.items()
                     if k not in _IDENTITY_FIELDS and v not in (None, "", [], {}))
    if not content:
        only = ", ".join(sorted(str(k) for k in item if k != "sandbox"))  # the stand-in's label
        what = f"nothing besides {only}" if only else "no field at all"
        return _problem(ActorFormat.UNKNOWN, ItemProblem.EMPTY,
                        f"an empty item: {what}", url_ref)
    shown = ", ".join(content[:8]) + (", …" if len(content) > 8 else "")
    return _problem(ActorFormat.UNKNOWN, ItemProblem.UNKNOWN_FORMAT,
                    f"an item of an unknown format (fields: {shown}); readable formats: axesso, "
                    "junglee, junglee reduced", url_ref)


def _page_asin(item: dict[str, Any]) -> str | None:
    asin = item.get("asin")
    if isinstance(asin, str) and asin.strip():
        return asin.strip().upper()
    return None


def _ref_of(value: object) -> tuple[str, str] | None:
    """(ASIN, marketplace) of a product URL, as domain/product_ref.py reads it (the replay
    and the requests use it too); the actors' own URL form is read without a URL parse."""
    if not isinstance(value, str) or "amazon." not in value:
        return None
    if value.startswith("https://www.amazon."):
        marketplace = value[19:].split("/", 1)[0]
        match = _ITEM_URL_ASIN_RE.search(value)
        if marketplace in _REF_MARKETPLACES and match is not None and match.start() == 19 + len(
            marketplace
        ):
            asin = match.group(1).upper()
            if _REF_ASIN_RE.fullmatch(asin):
                return asin, marketplace
    try:
        ref = parse_product_ref(value)
    except InvalidProductRef:
        return None
    return ref.asin, ref.marketplace


def _url_ref(item: dict[str, Any]) -> tuple[str, str] | None:
    url_ref = _ref_of(item.get("url"))
    if "statusCode" in item:  # axesso: the url is the one requested
        return url_ref
    # junglee's `url` is the page it ended on; it also echoes the request (`input`, when that
    # was a product URL) and the ASIN before any redirect (`originalAsin`).
    ref = _ref_of(item.get("input"))
    if ref is not None:
        return ref
    original = item.get("originalAsin")
    if isinstance(original, str) and len(original.strip()) == 10:
        marketplace = url_ref[1] if url_ref is not None else identify_item(item)[1]
        if marketplace is not None:
            return original.strip().upper(), marketplace
    return url_ref


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


# --------------------------------------------------------------------------------------------
# axesso_data/amazon-product-details-scraper (field names: shared/reference apify.md)


def _normalize_axesso(item: dict[str, Any], marketplace: str | None) -> Snapshot:
    warnings: list[str] = []
    snap = _base_snapshot(item, marketplace, warnings)
    snap.title = _text(item.get("title"), "title", warnings)
    if _status_code(item.get("statusCode"), warnings) in _NOT_FOUND_CODES:
        snap.found = False
        return snap
    _offer(item, snap, warnings)
    _axesso_availability(item, snap, warnings)
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
        snap.fulfilment = _fulfilment(seller, snap.fulfilled_by)


def _axesso_availability(item: dict[str, Any], snap: Snapshot, warnings: list[str]) -> None:
    raw = item.get("warehouseAvailability")
    if isinstance(raw, str) and raw.strip():
        _stock_text(raw.strip(), snap, warnings)
        return
    if raw is not None and not isinstance(raw, str):
        warnings.append(f"warehouseAvailability is not text: {_short(repr(raw))}")
        return
    # No availability text. With no price and nobody selling either, the page was found but
    # shows no featured offer: the Buy Box is suppressed, which says nothing about stock.
    if (
        "warehouseAvailability" in item
        and "price" in item
        and snap.price is None
        and item.get("soldBy") in (None, "")
    ):
        snap.availability = Availability.NO_FEATURED_OFFER


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
    snap.bought_past_month = _bought_past_month(snap.past_sales)
    snap.description = _text(item.get("productDescription"), "productDescription", warnings)
    snap.details_table = _details_table(
        [item.get("productDetails"), item.get("aboutProduct"), item.get("productSpecification")],
        "name",
    )


# --------------------------------------------------------------------------------------------
# junglee/amazon-crawler and junglee/free-amazon-product-scraper (field names: real exports of
# both, see tests/fixtures/apify/README.md; `offers` entries: junglee's changelog)


def _normalize_junglee(item: dict[str, Any], marketplace: str | None, reduced: bool) -> Snapshot:
    warnings: list[str] = []
    snap = _base_snapshot(item, marketplace, warnings)
    snap.title = _text(item.get("title"), "title", warnings)
    snap.brand = _text(item.get("brand"), "brand", warnings)
    store = item.get("visitStoreLink")
    if snap.brand is None and isinstance(store, dict):  # "Visit the X Store", "Brand: X"
        overview = item.get("productOverview")
        about = ([{"name": e.get("key"), "value": e.get("value")}
                  for e in overview if isinstance(e, dict)] if isinstance(overview, list) else None)
        snap.brand = _brand(store.get("text"), about, warnings)
    price = item.get("price")
    snap.price = _money(_price_value(price), "price", warnings)
    snap.list_price = _money(_price_value(item.get("listPrice")), "listPrice", warnings)
    snap.currency = _currency(price, item.get("listPrice"), snap.marketplace, warnings)
    snap.rating = _rating(item.get("stars"), warnings, "stars")
    snap.review_count = _count(item.get("reviewsCount"), "reviewsCount", warnings)
    snap.description = _text(item.get("description"), "description", warnings)
    if reduced:  # title, asin, brand, stars, reviewsCount, thumbnail, crumbs, description, price
        thumb = _text(item.get("thumbnailImage"), "thumbnailImage", warnings)
        snap.image_urls = [thumb] if thumb else []
        snap.image_count = len(snap.image_urls)
        return snap
    seller = item.get("seller")
    if seller is not None and not isinstance(seller, dict):
        warnings.append(f"seller is not an object: {_short(repr(seller))}")
        seller = None
    seller_name = _text(seller.get("name"), "seller.name", warnings) if seller else None
    if snap.price is not None:
        snap.buy_box_price = snap.price
        snap.buy_box_seller = seller_name
        snap.buy_box_seller_id = _text(seller.get("id"), "seller.id", warnings) if seller else None
    _junglee_offers(item.get("offers"), snap, seller_name, warnings)
    _junglee_availability(item, snap, seller_name, warnings)
    _junglee_ranks(item, snap, warnings)
    snap.bullet_points = _str_list(item.get("features"), "features", warnings)
    snap.details_table = _details_table(
        [item.get("productOverview"), item.get("attributes"), item.get("productDetails")], "key"
    )
    images = _str_list(item.get("highResolutionImages"), "highResolutionImages", warnings)
    if not images:
        thumb = _text(item.get("thumbnailImage"), "thumbnailImage", warnings)
        images = [thumb] if thumb else []
    snap.image_urls = images
    snap.image_count = len(images)
    snap.video_count = _count(item.get("videosCount"), "videosCount", warnings) or 0
    variants = item.get("variantAsins")
    if not isinstance(variants, list):
        variants = item.get("variantDetails")
    snap.variation_count = len(variants) if isinstance(variants, list) else 0
    snap.past_sales = _text(item.get("monthlyPurchaseVolume"), "monthlyPurchaseVolume", warnings)
    snap.bought_past_month = _bought_past_month(snap.past_sales)
    page = item.get("categoryPageData")  # the search card it was found on, if any
    summary = page.get("saleSummary") if isinstance(page, dict) else None
    if isinstance(summary, str) and _COUPON_RE.search(summary):
        snap.has_coupon = True
    return snap


# Rows that are page furniture, not product attributes (they have their own fields).
_NOT_DETAILS = frozenset({"best sellers rank", "customer reviews", "asin"})
_MAX_DETAIL_ROWS = 200
_MAX_DETAIL_TEXT = 500


# Amazon pads names with invisible marks ("Capacity \u200f : \u200e").
_NAME_PADDING_RE = re.compile(r"[\u200e\u200f:]+")


_CACHED_NAME_CHARS = 200  # longer names (hostile input) are cleaned every time, never kept
_CACHED_NAMES = 4096


def _clean_detail_name(raw: str) -> str | None:
    """A details-table row name cleaned and cut, or None for page furniture."""
    name = _NAME_PADDING_RE.sub(" ", raw).strip()
    if not name or name.lower() in _NOT_DETAILS:
        return None
    return name[:_MAX_DETAIL_TEXT]


# The same few hundred names come back on every item of a run: each is cleaned once (a
# plain dict read inline: this loop runs ~15 times an item).
_detail_names: dict[str, str | None] = {}


def _details_table(tables: list[object], key: str) -> list[tuple[str, str]]:
    """(name, value) rows of the product-details tables, first occurrence of a row kept."""
    rows: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    names = _detail_names
    for table in tables:
        if not isinstance(table, list):
            continue
        for entry in table:
            if not isinstance(entry, dict):
                continue
            name = entry[key] if key in entry else entry.get("name")
            if type(name) is not str:
                if not isinstance(name, str):
                    continue
                name = str(name)
            # the name first: a row of page furniture (ASIN, reviews, rank: 3 of a usual 8)
            # is left out before its value is cleaned
            clean = names.get(name, "")
            if clean == "":  # not seen yet ("" is never a cleaned name)
                clean = _clean_detail_name(name)
                if len(name) <= _CACHED_NAME_CHARS and len(names) < _CACHED_NAMES:
                    names[name] = clean
            if clean is None:
                continue
            value = entry.get("value")
            if type(value) is not str:
                if not isinstance(value, str | int | float):
                    continue
                value = str(value)
            if "\u200e" in value:
                value = value.replace("\u200e", " ")
            text = " ".join(value.split())[:_MAX_DETAIL_TEXT]
            if not text:
                continue
            row = (clean, text)
            if row not in seen and len(rows) < _MAX_DETAIL_ROWS:
                seen.add(row)
                rows.append(row)
    return rows


def _price_value(price: object) -> object:
    return price.get("value") if isinstance(price, dict) else price


def _junglee_availability(
    item: dict[str, Any], snap: Snapshot, seller_name: str | None, warnings: list[str]
) -> None:
    raw = item.get("inStockText")
    if isinstance(raw, str) and raw.strip() and _stock_text(raw.strip(), snap, warnings):
        return
    if raw is not None and not isinstance(raw, str):
        warnings.append(f"inStockText is not text: {_short(repr(raw))}")
    if (
        not (isinstance(raw, str) and raw.strip())
        and "inStockText" in item
        and snap.price is None
        and seller_name is None
    ):
        # Found, but no price, no seller, no availability text: no featured offer. The
        # actor's `inStock` false then only echoes the missing text.
        snap.availability = Availability.NO_FEATURED_OFFER
        return
    in_stock = item.get("inStock")
    if in_stock is True and snap.availability is Availability.UNKNOWN:
        snap.availability = Availability.IN_STOCK
    elif in_stock is False and snap.availability is Availability.UNKNOWN:
        snap.availability = Availability.OUT_OF_STOCK


def _junglee_ranks(item: dict[str, Any], snap: Snapshot, warnings: list[str]) -> None:
    ranks = item.get("bestsellerRanks")
    if isinstance(ranks, list):
        parsed = [
            SubcategoryRank(r["rank"], r["category"].strip())
            for r in ranks
            if isinstance(r, dict)
            and type(r.get("rank")) is int
            and 0 < r["rank"] <= _MAX_RANK
            and isinstance(r.get("category"), str)
            and r["category"].strip()
        ]
        if parsed:
            snap.bsr_rank, snap.bsr_category = parsed[0].rank, parsed[0].category
            snap.subcategory_ranks = parsed[1:]
            return
        if ranks:
            warnings.append(f"bestsellerRanks not understood: {_short(repr(ranks), 80)}")
    elif ranks is not None:
        warnings.append(f"bestsellerRanks is not a list: {_short(repr(ranks))}")
    attributes = item.get("attributes")  # the same table as text, when the list is missing
    if isinstance(attributes, list):
        named = [{"name": a.get("key"), "value": a.get("value")}
                 for a in attributes if isinstance(a, dict)]
        _best_sellers_rank(named, snap, warnings)


def _junglee_offers(
    offers: object, snap: Snapshot, seller_name: str | None, warnings: list[str]
) -> None:
    pinned: dict[str, Any] | None = None
    if offers is not None and not isinstance(offers, list):
        warnings.append(f"offers is not a list: {_short(repr(offers))}")
    elif offers:  # [] means "not asked for" (maxOffers 0), not "no offers"
        sellers: list[OfferSeller] = []
        for offer in offers:
            if not isinstance(offer, dict):
                continue
            seller = offer.get("seller")
            if isinstance(seller, dict):
                sid, name = seller.get("id"), seller.get("name")
                sellers.append(OfferSeller(sid.strip() if isinstance(sid, str) and sid.strip()
                                           else None,
                                           name.strip() if isinstance(name, str) and name.strip()
                                           else None))
            if offer.get("isPinnedOffer") is True and pinned is None:
                pinned = offer
        snap.offer_count = sum(1 for o in offers if isinstance(o, dict))
        snap.offer_sellers = sellers
        snap.seller_count = len({s.seller_id or s.name for s in sellers if s.seller_id or s.name})
    if snap.price is None:
        return
    ships_from = pinned.get("shipsFrom") if pinned is not None else None
    snap.fulfilment = _fulfilment(seller_name, ships_from if isinstance(ships_from, str) else None)


# --------------------------------------------------------------------------------------------
# Meanings shared by the formats


def _stock_text(text: str, snap: Snapshot, warnings: list[str]) -> bool:
    """Availability from a page's availability text; False (and a warning) if not understood."""
    known = _AVAILABILITY_TEXTS.get(text)
    if known is not None:
        snap.availability = known
        return True
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
        return False
    return True


def _fulfilment(sold_by: str | None, fulfilled_by: str | None) -> Fulfilment | None:
    """Amazon sells it / a merchant's offer Amazon ships (FBA) / the merchant ships (FBM)."""
    if sold_by and _AMAZON_SELLER_RE.match(sold_by):
        return Fulfilment.AMAZON
    if fulfilled_by:
        return Fulfilment.FBA if _AMAZON_SELLER_RE.match(fulfilled_by) else Fulfilment.FBM
    return None


def _bought_past_month(text: str | None) -> int | None:
    """'10K+ bought in past month' -> 10000; '200+ Mal im letzten Monat gekauft' -> 200."""
    if not text:
        return None
    best = 0.0
    for match in _PAST_SALES_RE.finditer(text[:200]):
        digits, latin, cjk = match.groups()
        unit = latin or cjk
        if unit:
            number = float(digits.replace(",", ".")) if digits.count(",") + digits.count(
                ".") == 1 else float(digits.replace(",", "").replace(".", ""))
            number *= _MULTIPLIERS[unit.lower()]
        else:
            number = float(digits.replace(",", "").replace(".", ""))
        best = max(best, number)
    return int(best) if 1 <= best < 10**10 else None


def _currency(price: object, list_price: object, marketplace: str,
              warnings: list[str]) -> str | None:
    """The price's currency: the marketplace's, unless the item names another unambiguously.

    A symbol that can mean the marketplace's currency means it ("$" on amazon.ca is CAD,
    on amazon.com.au AUD); an ambiguous symbol never overrides the marketplace.
    """
    home = MARKETPLACE_CURRENCY.get(marketplace)
    raw = None
    for source in (price, list_price):
        if isinstance(source, dict) and isinstance(source.get("currency"), str):
            raw = source["currency"].strip()
            if raw:
                break
    if not raw:
        return home
    candidates = _CURRENCY_SYMBOLS.get(raw)
    if candidates is None and len(raw) == 3 and raw.isascii() and raw.isalpha():
        candidates = (raw.upper(),)
    if candidates is None:
        warnings.append(f"unknown currency {_short(raw)}; assumed {home} (amazon.{marketplace})")
        return home
    if home in candidates:
        return home
    if len(candidates) == 1:
        warnings.append(f"price in {candidates[0]} on amazon.{marketplace}")
        return candidates[0]
    warnings.append(f"currency {_short(raw)} is ambiguous and not amazon.{marketplace}'s "
                    f"{home}; kept {home}")
    return home


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


def _rating(value: object, warnings: list[str], name: str = "productRating") -> float | None:
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
        warnings.append(f"{name} not understood: {_short(repr(value))}")
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
    digits = number.replace(",", "")  # the usual "1,334"; translate only for the others
    if not digits.isdigit():
        digits = number.translate(_RANK_SEPARATORS)
    if category and digits.isdigit() and len(digits) <= 11:
        rank = int(digits)
        if 0 < rank <= _MAX_RANK:
            ranks.append(SubcategoryRank(rank, category))


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
        "fulfilment": None if s.fulfilment is None else s.fulfilment.value,
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
        "offer_count": s.offer_count,
        "seller_count": s.seller_count,
        "offer_sellers": [{"id": o.seller_id, "name": o.name} for o in s.offer_sellers],
        "is_prime": s.is_prime,
        "has_deal": s.has_deal,
        "has_coupon": s.has_coupon,
        "past_sales": s.past_sales,
        "bought_past_month": s.bought_past_month,
        "data_source": s.data_source,
        "parse_warnings": list(s.parse_warnings),
    }


def normalize_export(items: Iterable[object]) -> Iterator[dict[str, Any]]:
    """Normalize a whole dataset export (a JSON array of items) into output dicts, lazily:
    each with the item's `format`, the page it says was `requested` ([ASIN, marketplace])
    and the `page_asin` it showed, and for an item that gave no snapshot its `problem` and
    `reason` (the snapshot fields are then the placeholder's)."""
    if isinstance(items, dict):  # a single item exported on its own
        items = [items]
    for item in items:
        reading = read_item(item)
        if reading.snapshot is not None:
            row = snapshot_to_dict(reading.snapshot)
        else:
            row = snapshot_to_dict(normalize_item(item))
        row["format"] = reading.format.value
        row["problem"] = None if reading.problem is None else reading.problem.value
        row["reason"] = reading.reason
        row["requested"] = list(reading.url_ref) if reading.url_ref else None
        row["page_asin"] = reading.page_asin
        yield row

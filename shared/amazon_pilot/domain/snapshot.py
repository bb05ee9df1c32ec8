"""The typed shape of one observation of one product: what every other module reads.

Plain dataclasses (no pydantic) because ingestion builds hundreds of thousands of
them and the domain must stay free of I/O frameworks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class Availability(StrEnum):
    IN_STOCK = "in_stock"
    LOW_STOCK = "low_stock"  # "Only 11 left in stock": stock_count holds the number
    OUT_OF_STOCK = "out_of_stock"
    UNKNOWN = "unknown"
    # The page was found but shows no featured offer: no price, no seller, no availability
    # text. The Buy Box is suppressed; stock is unknown (neither in nor out of stock).
    NO_FEATURED_OFFER = "no_featured_offer"


# Marketplace code (the Amazon domain suffix) -> currency. The actor reports no currency.
MARKETPLACE_CURRENCY: dict[str, str] = {
    "com": "USD",
    "ca": "CAD",
    "com.mx": "MXN",
    "com.br": "BRL",
    "co.uk": "GBP",
    "de": "EUR",
    "fr": "EUR",
    "it": "EUR",
    "es": "EUR",
    "nl": "EUR",
    "se": "SEK",
    "pl": "PLN",
    "com.tr": "TRY",
    "ae": "AED",
    "sa": "SAR",
    "in": "INR",
    "co.jp": "JPY",
    "com.au": "AUD",
    "sg": "SGD",
    "com.tw": "TWD",
}


@dataclass(slots=True, frozen=True)
class SubcategoryRank:
    rank: int
    category: str


class Fulfilment(StrEnum):
    """Who sells and ships the featured (Buy Box) offer."""

    AMAZON = "amazon"  # sold by Amazon itself
    FBA = "fba"  # a merchant's offer, fulfilled by Amazon
    FBM = "fbm"  # a merchant's offer, shipped by the merchant


@dataclass(slots=True, frozen=True)
class OfferSeller:
    """A seller with an offer on the listing, as the actor listed it (id or name may be missing)."""

    seller_id: str | None
    name: str | None


@dataclass(slots=True)
class Snapshot:
    """One product as seen at one moment. None always means "unknown", never zero."""

    asin: str
    marketplace: str = "com"
    found: bool = True  # False when the scraper reported the product as not found
    title: str | None = None
    brand: str | None = None
    price: float | None = None
    list_price: float | None = None
    currency: str | None = None
    buy_box_price: float | None = None
    buy_box_seller: str | None = None
    buy_box_seller_id: str | None = None
    fulfilled_by: str | None = None
    availability: Availability = Availability.UNKNOWN
    stock_count: int | None = None
    rating: float | None = None
    review_count: int | None = None
    bsr_rank: int | None = None
    bsr_category: str | None = None
    subcategory_ranks: list[SubcategoryRank] = field(default_factory=list)
    bullet_points: list[str] = field(default_factory=list)
    description: str | None = None
    # The page's product-details / specification table as (name, value) rows, in page order
    # ("Capacity", "32 Fluid Ounces"); features.py reads attributes of any category from it.
    details_table: list[tuple[str, str]] = field(default_factory=list)
    image_urls: list[str] = field(default_factory=list)
    image_count: int = 0
    video_count: int = 0
    variation_count: int = 0
    # Shown on the page but not in the numbers above (None: the actor does not say).
    fulfilment: Fulfilment | None = None
    offer_count: int | None = None  # offers the actor listed (only actors that list them)
    seller_count: int | None = None  # distinct sellers among those offers
    offer_sellers: list[OfferSeller] = field(default_factory=list)
    has_coupon: bool | None = None
    bought_past_month: int | None = None  # "10K+ bought in past month" -> 10000
    is_prime: bool | None = None
    has_deal: bool | None = None
    past_sales: str | None = None
    data_source: str = "apify"  # "sandbox" when it came from the offline stand-in
    # The ASIN the page showed when it is not the one requested (a variation served
    # instead, a redirect, a merged listing); the snapshot still belongs to the requested one.
    served_asin: str | None = None
    parse_warnings: list[str] = field(default_factory=list)

    @property
    def in_stock(self) -> bool | None:
        if self.availability in (Availability.IN_STOCK, Availability.LOW_STOCK):
            return True
        if self.availability is Availability.OUT_OF_STOCK:
            return False
        return None

    @property
    def subcategory_bsr(self) -> int | None:
        """The first (most specific shown first) subcategory rank, the one alerts watch."""
        return self.subcategory_ranks[0].rank if self.subcategory_ranks else None


@dataclass(slots=True)
class HistoryPoint:
    """A stored snapshot's numbers at a time, as comparison and experiments read them."""

    captured_at: datetime
    price: float | None = None
    list_price: float | None = None
    buy_box_price: float | None = None
    buy_box_seller: str | None = None
    bsr_rank: int | None = None
    subcategory_bsr: int | None = None
    rating: float | None = None
    review_count: int | None = None
    in_stock: bool | None = None
    title: str | None = None
    has_deal: bool | None = None  # a deal badge that day (None: not known)


def daily_last(history: Sequence[HistoryPoint]) -> list[HistoryPoint]:
    """The last observation of each calendar day, oldest first (repricers flap intraday)."""
    by_day: dict[date, HistoryPoint] = {}
    for p in sorted(history, key=lambda h: h.captured_at):
        by_day[p.captured_at.date()] = p
    return [by_day[d] for d in sorted(by_day)]

"""Change detection: what moved between a product's previous and new observation,
judged against one seller's thresholds. Pure: no I/O, no clock."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from amazon_pilot.domain.snapshot import Availability, Snapshot


# The one list of alert types: detection raises them, the API lists them as an enum
# (an alert's `type` and the alerts filter), the dashboard offers them.
class AlertType(StrEnum):
    """The kind of change an alert reports."""

    PRICE_CHANGE = "price_change"
    TARGET_PRICE_REACHED = "target_price_reached"
    SUBCATEGORY_BSR_CHANGE = "subcategory_bsr_change"
    BSR_CHANGE = "bsr_change"
    BUY_BOX_LOST = "buy_box_lost"
    BUY_BOX_SELLER_CHANGE = "buy_box_seller_change"
    BUY_BOX_PRICE_CHANGE = "buy_box_price_change"
    OUT_OF_STOCK = "out_of_stock"
    BACK_IN_STOCK = "back_in_stock"
    RATING_CHANGE = "rating_change"
    REVIEW_COUNT_JUMP = "review_count_jump"
    TITLE_CHANGE = "title_change"
    IMAGES_CHANGE = "images_change"
    DELISTED = "delisted"
    LISTING_REDIRECTED = "listing_redirected"


@dataclass(frozen=True)
class Thresholds:
    """A seller's alert settings for one tracked product. Percentages are of the old value."""

    price_change_pct: float = 10.0
    subcategory_bsr_change_pct: float = 30.0
    bsr_change_pct: float = 50.0
    buy_box_price_change_pct: float = 5.0
    rating_change: float = 0.2
    review_count_jump: int = 50  # new reviews between two observations
    target_price: float | None = None  # alert once the price is at or below this
    buy_box: bool = True  # seller changes and Buy Box lost / regained
    stock: bool = True  # out of stock / back in stock
    listing: bool = True  # title and image changes

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Thresholds:
        if not values:
            return DEFAULT_THRESHOLDS
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AlertDraft:
    type: AlertType
    severity: str  # info | warning | critical
    metric: str
    old_value: Any
    new_value: Any
    change_pct: float | None
    threshold: float | None
    message: str


DEFAULT_THRESHOLDS = Thresholds()

# The alert types each setting of Thresholds governs (a delisting is always reported).
GOVERNED_ALERTS: dict[str, tuple[AlertType, ...]] = {
    "price_change_pct": (AlertType.PRICE_CHANGE,),
    "subcategory_bsr_change_pct": (AlertType.SUBCATEGORY_BSR_CHANGE,),
    "bsr_change_pct": (AlertType.BSR_CHANGE,),
    "buy_box_price_change_pct": (AlertType.BUY_BOX_PRICE_CHANGE,),
    "rating_change": (AlertType.RATING_CHANGE,),
    "review_count_jump": (AlertType.REVIEW_COUNT_JUMP,),
    "target_price": (AlertType.TARGET_PRICE_REACHED,),
    "buy_box": (AlertType.BUY_BOX_LOST, AlertType.BUY_BOX_SELLER_CHANGE,
                AlertType.BUY_BOX_PRICE_CHANGE),
    "stock": (AlertType.OUT_OF_STOCK, AlertType.BACK_IN_STOCK),
    "listing": (AlertType.TITLE_CHANGE, AlertType.IMAGES_CHANGE, AlertType.LISTING_REDIRECTED),
}


@dataclass
class LatestValues:
    """What change detection remembers of the previous observation (products.latest)."""

    price: float | None = None
    list_price: float | None = None
    buy_box_price: float | None = None
    buy_box_seller: str | None = None
    availability: str = Availability.UNKNOWN.value
    rating: float | None = None
    review_count: int | None = None
    bsr_rank: int | None = None
    bsr_category: str | None = None
    subcategory_bsr: int | None = None
    subcategory_category: str | None = None
    title: str | None = None
    image_hash: str | None = None
    content_hash: str | None = None
    found: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> LatestValues | None:
        if not values:
            return None
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def of(cls, snap: Snapshot) -> LatestValues:
        sub = snap.subcategory_ranks[0] if snap.subcategory_ranks else None
        return cls(
            price=snap.price,
            list_price=snap.list_price,
            buy_box_price=snap.buy_box_price,
            buy_box_seller=snap.buy_box_seller,
            availability=snap.availability.value,
            rating=snap.rating,
            review_count=snap.review_count,
            bsr_rank=snap.bsr_rank,
            bsr_category=snap.bsr_category,
            subcategory_bsr=sub.rank if sub else None,
            subcategory_category=sub.category if sub else None,
            title=snap.title,
            image_hash=image_hash(snap),
            content_hash=content_hash(snap),
            found=snap.found,
        )

    def to_dict(self) -> dict[str, Any]:
        # flat fields only: dataclasses.asdict deep-copies and is ~20x slower on this path
        return {name: getattr(self, name) for name in _LATEST_FIELDS}


_LATEST_FIELDS = tuple(f for f in LatestValues.__dataclass_fields__ if f != "extra")


def image_hash(snap: Snapshot) -> str | None:
    if not snap.image_urls:
        return None
    return hashlib.blake2s("\n".join(snap.image_urls).encode(), digest_size=8).hexdigest()


def content_hash(snap: Snapshot) -> str:
    """Bullets + images + title: a cheap "the listing was edited" fingerprint."""
    text = "\n".join([snap.title or "", *snap.bullet_points, *snap.image_urls])
    return hashlib.blake2s(text.encode(), digest_size=8).hexdigest()


def pct_change(old: float | None, new: float | None) -> float | None:
    if old is None or new is None or old == 0:
        return None
    return round((new - old) / old * 100.0, 2)


def _in_stock(availability: str) -> bool | None:
    if availability in (Availability.IN_STOCK.value, Availability.LOW_STOCK.value):
        return True
    if availability == Availability.OUT_OF_STOCK.value:
        return False
    return None


def detect_changes(
    previous: LatestValues | None, new: Snapshot, thresholds: Thresholds,
    current: LatestValues | None = None,
) -> list[AlertDraft]:
    """Alerts one seller should get for this new observation. No previous = no alerts:
    a first observation is a baseline, not a change. `current` is LatestValues.of(new)
    when the caller has it already (one product is judged for many sellers)."""
    if previous is None:
        return []
    if not new.found:
        if previous.found:
            return [
                AlertDraft(
                    AlertType.DELISTED,
                    "critical",
                    "found",
                    True,
                    False,
                    None,
                    None,
                    "The product page is no longer found on Amazon",
                )
            ]
        return []
    current = current or LatestValues.of(new)
    drafts: list[AlertDraft] = []
    drafts += _price_alerts(previous, current, thresholds)
    drafts += _rank_alerts(previous, current, thresholds)
    if thresholds.buy_box:
        drafts += _buy_box_alerts(previous, current, thresholds)
    if thresholds.stock:
        drafts += _stock_alerts(previous, current)
    drafts += _review_alerts(previous, current, thresholds)
    if thresholds.listing:
        drafts += _listing_alerts(previous, current)
    return drafts


def _price_alerts(old: LatestValues, new: LatestValues, t: Thresholds) -> list[AlertDraft]:
    out = []
    change = pct_change(old.price, new.price)
    if change is not None and abs(change) > t.price_change_pct:
        severity = "critical" if abs(change) > 2 * t.price_change_pct else "warning"
        direction = "dropped" if change < 0 else "rose"
        out.append(
            AlertDraft(
                AlertType.PRICE_CHANGE,
                severity,
                "price",
                old.price,
                new.price,
                change,
                t.price_change_pct,
                f"Price {direction} {abs(change):.1f}% ({old.price} → {new.price})",
            )
        )
    if (
        t.target_price is not None
        and new.price is not None
        and new.price <= t.target_price
        and (old.price is None or old.price > t.target_price)
    ):
        out.append(
            AlertDraft(
                AlertType.TARGET_PRICE_REACHED,
                "info",
                "price",
                old.price,
                new.price,
                change,
                t.target_price,
                f"Price {new.price} reached the target {t.target_price}",
            )
        )
    return out


def _rank_alerts(old: LatestValues, new: LatestValues, t: Thresholds) -> list[AlertDraft]:
    out = []
    same_sub = old.subcategory_category == new.subcategory_category
    sub_change = pct_change(old.subcategory_bsr, new.subcategory_bsr) if same_sub else None
    if sub_change is not None and abs(sub_change) > t.subcategory_bsr_change_pct:
        better = sub_change < 0  # a smaller rank number is better
        out.append(
            AlertDraft(
                AlertType.SUBCATEGORY_BSR_CHANGE,
                "info" if better else "warning",
                "subcategory_bsr",
                old.subcategory_bsr,
                new.subcategory_bsr,
                sub_change,
                t.subcategory_bsr_change_pct,
                f"{'Improved' if better else 'Fell'} in {new.subcategory_category}: "
                f"#{old.subcategory_bsr} → #{new.subcategory_bsr}",
            )
        )
    same_main = old.bsr_category == new.bsr_category
    main_change = pct_change(old.bsr_rank, new.bsr_rank) if same_main else None
    if main_change is not None and abs(main_change) > t.bsr_change_pct:
        better = main_change < 0
        out.append(
            AlertDraft(
                AlertType.BSR_CHANGE,
                "info" if better else "warning",
                "bsr_rank",
                old.bsr_rank,
                new.bsr_rank,
                main_change,
                t.bsr_change_pct,
                f"Best Sellers Rank {'improved' if better else 'fell'}: "
                f"#{old.bsr_rank} → #{new.bsr_rank} in {new.bsr_category}",
            )
        )
    return out


def _buy_box_alerts(old: LatestValues, new: LatestValues, t: Thresholds) -> list[AlertDraft]:
    out = []
    if old.buy_box_seller and not new.buy_box_seller:
        out.append(
            AlertDraft(
                AlertType.BUY_BOX_LOST,
                "critical",
                "buy_box_seller",
                old.buy_box_seller,
                None,
                None,
                None,
                f"No seller holds the Buy Box any more (was {old.buy_box_seller})",
            )
        )
    elif old.buy_box_seller and new.buy_box_seller and old.buy_box_seller != new.buy_box_seller:
        out.append(
            AlertDraft(
                AlertType.BUY_BOX_SELLER_CHANGE,
                "warning",
                "buy_box_seller",
                old.buy_box_seller,
                new.buy_box_seller,
                None,
                None,
                f"Buy Box seller changed: {old.buy_box_seller} → {new.buy_box_seller}",
            )
        )
    change = pct_change(old.buy_box_price, new.buy_box_price)
    if change is not None and abs(change) > t.buy_box_price_change_pct:
        out.append(
            AlertDraft(
                AlertType.BUY_BOX_PRICE_CHANGE,
                "warning",
                "buy_box_price",
                old.buy_box_price,
                new.buy_box_price,
                change,
                t.buy_box_price_change_pct,
                f"Buy Box price changed {change:+.1f}% ({old.buy_box_price} → {new.buy_box_price})",
            )
        )
    return out


def _stock_alerts(old: LatestValues, new: LatestValues) -> list[AlertDraft]:
    was, now = _in_stock(old.availability), _in_stock(new.availability)
    if was is True and now is False:
        return [
            AlertDraft(
                AlertType.OUT_OF_STOCK,
                "critical",
                "availability",
                old.availability,
                new.availability,
                None,
                None,
                "The product went out of stock",
            )
        ]
    if was is False and now is True:
        return [
            AlertDraft(
                AlertType.BACK_IN_STOCK,
                "info",
                "availability",
                old.availability,
                new.availability,
                None,
                None,
                "The product is back in stock",
            )
        ]
    return []


def _review_alerts(old: LatestValues, new: LatestValues, t: Thresholds) -> list[AlertDraft]:
    out = []
    if old.rating is not None and new.rating is not None:
        delta = round(new.rating - old.rating, 2)
        if abs(delta) >= t.rating_change - 1e-9:
            out.append(
                AlertDraft(
                    AlertType.RATING_CHANGE,
                    "warning" if delta < 0 else "info",
                    "rating",
                    old.rating,
                    new.rating,
                    pct_change(old.rating, new.rating),
                    t.rating_change,
                    f"Rating {'fell' if delta < 0 else 'rose'} {old.rating} → {new.rating}",
                )
            )
    if old.review_count is not None and new.review_count is not None:
        jump = new.review_count - old.review_count
        if jump >= t.review_count_jump:
            out.append(
                AlertDraft(
                    AlertType.REVIEW_COUNT_JUMP,
                    "info",
                    "review_count",
                    old.review_count,
                    new.review_count,
                    pct_change(old.review_count, new.review_count),
                    float(t.review_count_jump),
                    f"{jump} new ratings since the last check",
                )
            )
    return out


def _listing_alerts(old: LatestValues, new: LatestValues) -> list[AlertDraft]:
    out = []
    if old.title and new.title and old.title != new.title:
        out.append(
            AlertDraft(
                AlertType.TITLE_CHANGE,
                "info",
                "title",
                old.title,
                new.title,
                None,
                None,
                "The listing title changed",
            )
        )
    if old.image_hash and new.image_hash and old.image_hash != new.image_hash:
        out.append(
            AlertDraft(
                AlertType.IMAGES_CHANGE,
                "info",
                "images",
                old.image_hash,
                new.image_hash,
                None,
                None,
                "The listing images changed",
            )
        )
    return out

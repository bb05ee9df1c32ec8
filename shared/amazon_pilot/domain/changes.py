"""Change detection: what moved between a product's previous and new observation,
judged against one seller's thresholds. Pure: no I/O, no clock."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from amazon_pilot.domain.seller_identity import (
    NO_IDENTITY,
    SellerIdentity,
    name_key,
    ownership_unknown,
)
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
    BUY_BOX_REGAINED = "buy_box_regained"
    BUY_BOX_SUPPRESSED = "buy_box_suppressed"
    NEW_SELLER_ON_LISTING = "new_seller_on_listing"
    OUT_OF_STOCK = "out_of_stock"
    BACK_IN_STOCK = "back_in_stock"
    RATING_CHANGE = "rating_change"
    REVIEW_COUNT_JUMP = "review_count_jump"
    TITLE_CHANGE = "title_change"
    IMAGES_CHANGE = "images_change"
    DELISTED = "delisted"
    LISTING_REDIRECTED = "listing_redirected"
    KEYWORD_RANK_DROP = "keyword_rank_drop"  # raised by keyword rank tracking (market)


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
    buy_box: bool = True  # Buy Box lost / regained / suppressed, seller changes, new sellers
    stock: bool = True  # out of stock / back in stock
    listing: bool = True  # title and image changes
    # organic places lost on a tracked search term's first page (docs/keywords.md)
    keyword_rank_drop_places: int = 5

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
                AlertType.BUY_BOX_PRICE_CHANGE, AlertType.BUY_BOX_REGAINED,
                AlertType.BUY_BOX_SUPPRESSED, AlertType.NEW_SELLER_ON_LISTING),
    "stock": (AlertType.OUT_OF_STOCK, AlertType.BACK_IN_STOCK),
    "keyword_rank_drop_places": (AlertType.KEYWORD_RANK_DROP,),
    "listing": (AlertType.TITLE_CHANGE, AlertType.IMAGES_CHANGE, AlertType.LISTING_REDIRECTED),
}


@dataclass
class LatestValues:
    """What change detection remembers of the previous observation (products.latest)."""

    price: float | None = None
    list_price: float | None = None
    buy_box_price: float | None = None
    buy_box_seller: str | None = None
    buy_box_seller_id: str | None = None
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
    brand: str | None = None
    offer_count: int | None = None  # offers on the listing, where the actor reports them
    # Buy Box holders seen on this listing (seller_keys), oldest first; None: not
    # remembered yet (a `latest` stored before sellers were remembered)
    seen_sellers: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> LatestValues | None:
        if not values:
            return None
        # What __init__ would set, without its keyword call (a third of the cost, once a
        # product on ingestion): the defaults, then the stored values of known fields, in
        # the fields' order (to_dict relies on it); unknown keys (the display values kept
        # beside them in products.latest) are left out as before.
        fields = _LATEST_DEFAULTS.copy()
        for key, value in values.items():
            if key in fields:
                fields[key] = value
        fields["extra"] = values.get("extra", {})
        out = object.__new__(cls)
        out.__dict__ = fields
        return out

    @classmethod
    def of(cls, snap: Snapshot, previous: LatestValues | None = None) -> LatestValues:
        """The values of this observation; `previous` carries what the listing remembers
        (the Buy Box holders seen on it)."""
        sub = snap.subcategory_ranks[0] if snap.subcategory_ranks else None
        return cls(
            price=snap.price,
            list_price=snap.list_price,
            buy_box_price=snap.buy_box_price,
            buy_box_seller=snap.buy_box_seller,
            buy_box_seller_id=snap.buy_box_seller_id,
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
            brand=snap.brand,
            # a Snapshot field of the actor formats' work; absent, the count is unknown
            offer_count=getattr(snap, "offer_count", None),
            seen_sellers=_remember(previous, [(snap.buy_box_seller_id, snap.buy_box_seller),
                                              *offer_sellers(snap)]),
        )

    def to_dict(self) -> dict[str, Any]:
        # flat fields only: dataclasses.asdict deep-copies and is ~20x slower on this path;
        # the instance dict holds the fields in their order (no slots, nothing else set)
        out = self.__dict__.copy()
        del out["extra"]
        return out


# LatestValues' fields and defaults but `extra` (a fresh dict each), for from_dict.
_LATEST_DEFAULTS: dict[str, Any] = {
    name: f.default for name, f in LatestValues.__dataclass_fields__.items() if name != "extra"}

SEEN_SELLERS_KEPT = 50  # a listing's remembered sellers (the most recent)
Holder = tuple[str | None, str | None]  # (seller id, seller name), either may be missing


def seller_keys(seller_id: str | None, seller_name: str | None) -> list[str]:
    """How a Buy Box holder is remembered: by id and by name (formats without ids give
    the name alone, so either one recognises a seller seen before)."""
    keys = []
    if seller_id and seller_id.strip():
        keys.append("id:" + seller_id.strip().upper())
    if seller_name and seller_name.strip():
        keys.append("name:" + name_key(seller_name))
    return keys


def _seen_before(previous: LatestValues) -> list[str]:
    if previous.seen_sellers is not None:
        return previous.seen_sellers
    return seller_keys(previous.buy_box_seller_id, previous.buy_box_seller)


def _remember(previous: LatestValues | None, holders: list[Holder]) -> list[str]:
    seen = list(_seen_before(previous)) if previous is not None else []
    for holder in holders:
        for key in seller_keys(*holder):
            if key in seen:
                seen.remove(key)
            seen.append(key)
    return seen[-SEEN_SELLERS_KEPT:]


def offer_sellers(snap: Snapshot) -> list[Holder]:
    """The sellers with an offer on the listing, where the actor lists them (the Snapshot
    field comes with the actor formats' work; absent, none are known)."""
    return [(getattr(o, "seller_id", None), getattr(o, "name", None))
            for o in getattr(snap, "offer_sellers", None) or ()]


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


# Enum `.value` is a Python-level descriptor (slow on a path run per snapshot and seller).
_STOCKED = (Availability.IN_STOCK.value, Availability.LOW_STOCK.value)
_OUT_OF_STOCK = Availability.OUT_OF_STOCK.value
_SUPPRESSED = Availability.NO_FEATURED_OFFER.value


def _in_stock(availability: str) -> bool | None:
    # None for unknown and for no_featured_offer (a suppressed Buy Box says nothing about
    # stock): a change to or from either is never a stock-out nor a restock.
    if availability in _STOCKED:
        return True
    if availability == _OUT_OF_STOCK:
        return False
    return None


def detect_changes(
    previous: LatestValues | None, new: Snapshot, thresholds: Thresholds,
    current: LatestValues | None = None, identity: SellerIdentity = NO_IDENTITY,
) -> list[AlertDraft]:
    """Alerts one seller should get for this new observation. No previous = no alerts:
    a first observation is a baseline, not a change. `current` is LatestValues.of(new)
    when the caller has it already (one product is judged for many sellers); `identity`
    is the seller's (their seller ids and brands), which the Buy Box alerts are judged by."""
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
    current = current or LatestValues.of(new, previous)
    drafts: list[AlertDraft] = []
    drafts += _price_alerts(previous, current, thresholds)
    drafts += _rank_alerts(previous, current, thresholds)
    if thresholds.buy_box:
        drafts += _buy_box_alerts(previous, current, thresholds, identity,
                                  offer_sellers(new))
    if thresholds.stock:
        drafts += _stock_alerts(previous, current, identity)
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


# ---------------------------------------------------------------- the Buy Box
# Who holds it, judged per seller: a holder is "you" when its seller id is one of the
# seller's (domain.seller_identity). Without seller ids the alerts say that ownership is
# unknown rather than guess. "Nobody holds it" is never an alert of its own: during a
# stock-out the out_of_stock alert says so, and a page with no featured offer is
# buy_box_suppressed; with no seller reported otherwise, nothing is known to have moved.


def _holder(v: LatestValues) -> Holder | None:
    if v.buy_box_seller_id or v.buy_box_seller:
        return v.buy_box_seller_id, v.buy_box_seller
    return None


def _same_holder(a: Holder, b: Holder) -> bool:
    if a[0] and b[0]:
        return a[0].strip().upper() == b[0].strip().upper()
    return bool(a[1] and b[1]) and name_key(a[1] or "") == name_key(b[1] or "")


def _who(holder: Holder) -> str:
    seller_id, name = holder
    if name and seller_id:
        return f"{name} (seller id {seller_id})"
    return name or f"seller id {seller_id}"


def _label(holder: Holder) -> str:
    return holder[1] or holder[0] or ""


def _buy_box_alerts(old: LatestValues, new: LatestValues, t: Thresholds,
                    me: SellerIdentity, offers: list[Holder]) -> list[AlertDraft]:
    out = []
    was, now = _holder(old), _holder(new)
    suppressed = _SUPPRESSED
    if new.availability == suppressed and old.availability != suppressed:
        out.append(_suppressed(old.availability, was, me))
    elif was is not None and now is not None and not _same_holder(was, now):
        out += _holder_changed(was, now, me, _is_new_seller(old, now))
    elif (old.availability == suppressed and now is not None
          and me.holds(*now) is True):
        out.append(AlertDraft(
            AlertType.BUY_BOX_REGAINED, "info", "buy_box_seller", None, _label(now), None,
            None, "You hold the Buy Box again: Amazon showed no featured offer before"))
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
    out += _new_sellers(old, new, me, offers)
    return out


def _suppressed(before: str, was: Holder | None,
                me: SellerIdentity) -> AlertDraft:
    mine = me.holds(*was) if was is not None else None
    message = ("Amazon shows no featured offer on this page: the Buy Box is suppressed"
               " (buyers see only \"See All Buying Options\"); not out of stock")
    if was is not None:
        held = "you held it" if mine else f"{_who(was)} held it"
        message += f". Before, {held}"
        if mine is None:
            message += f"; {ownership_unknown('whether it was yours')}"
    return AlertDraft(
        AlertType.BUY_BOX_SUPPRESSED, "critical" if mine else "warning", "availability",
        before, Availability.NO_FEATURED_OFFER.value, None, None, message)


def _holder_changed(was: Holder, now: Holder,
                    me: SellerIdentity, first_seen: bool) -> list[AlertDraft]:
    old_label, new_label = _label(was), _label(now)
    newcomer = ", a seller not seen on this listing before" if first_seen else ""
    if not me.known:
        return [AlertDraft(
            AlertType.BUY_BOX_SELLER_CHANGE, "warning", "buy_box_seller", old_label,
            new_label, None, None,
            f"Buy Box seller changed: {_who(was)} → {_who(now)}{newcomer}; "
            + ownership_unknown("whether you lost it or won it"))]
    mine_before, mine_now = me.holds(*was), me.holds(*now)
    if mine_before and not mine_now:
        return [AlertDraft(
            AlertType.BUY_BOX_LOST, "critical", "buy_box_seller", old_label, new_label,
            None, None, f"You lost the Buy Box to {_who(now)}{newcomer}")]
    if mine_now and not mine_before:
        return [AlertDraft(
            AlertType.BUY_BOX_REGAINED, "info", "buy_box_seller", old_label, new_label,
            None, None, f"You won the Buy Box back from {_who(was)}")]
    if mine_now and mine_before:
        return []  # from one of the seller's accounts to another
    return [AlertDraft(
        AlertType.BUY_BOX_SELLER_CHANGE, "info", "buy_box_seller", old_label, new_label,
        None, None,
        f"Buy Box seller changed: {_who(was)} → {_who(now)}{newcomer}; neither is one of"
        " your seller ids")]


def _is_new_seller(old: LatestValues, holder: Holder) -> bool:
    keys = seller_keys(*holder)
    return bool(keys) and not set(keys) & set(_seen_before(old))


def _new_sellers(old: LatestValues, new: LatestValues, me: SellerIdentity,
                 offers: list[Holder]) -> list[AlertDraft]:
    """Sellers not seen before on a listing of the seller's brand: the Buy Box holder (every
    actor format names it), the sellers of its offers (formats that list them, once the
    previous observation listed them too), else more offers than before (formats that only
    count them)."""
    brand = new.brand or old.brand
    if not me.owns_brand(brand):
        return []
    now = _holder(new)
    listed = offers if old.offer_count is not None else []
    newcomers: list[Holder] = []
    for holder in ([now] if now is not None else []) + listed:
        if (seller_keys(*holder) and _is_new_seller(old, holder)
                and me.holds(*holder) is not True
                and not any(_same_holder(holder, h) for h in newcomers)):
            newcomers.append(holder)
    unknown = (f"; {ownership_unknown('whether this seller is you')}" if not me.known else "")
    if newcomers:
        names = ", ".join(_who(h) for h in newcomers[:3])
        if len(newcomers) > 3:
            names += f" and {len(newcomers) - 3} more"
        if now is not None and newcomers[0] is now:
            message = (f"A seller not seen before holds the Buy Box on your {brand} listing: "
                       f"{names}" if len(newcomers) == 1 else
                       f"Sellers not seen before on your {brand} listing, the first holding "
                       f"the Buy Box: {names}")
        else:
            message = (f"{'A seller' if len(newcomers) == 1 else 'Sellers'} not seen before "
                       f"on your {brand} listing: {names}")
        return [AlertDraft(
            AlertType.NEW_SELLER_ON_LISTING, "warning", "buy_box_seller", None,
            ", ".join(_label(h) for h in newcomers), None, None,
            f"{message} (a reseller, or a hijacker){unknown}")]
    if old.offer_count is not None and new.offer_count is not None and (
            new.offer_count > old.offer_count):
        return [AlertDraft(
            AlertType.NEW_SELLER_ON_LISTING, "warning", "offer_count", old.offer_count,
            new.offer_count, pct_change(old.offer_count, new.offer_count), None,
            f"More sellers offer your {brand} listing: {old.offer_count} → "
            f"{new.offer_count} offers{unknown}")]
    return []


def _stock_alerts(old: LatestValues, new: LatestValues, me: SellerIdentity) -> list[AlertDraft]:
    was, now = _in_stock(old.availability), _in_stock(new.availability)
    if was is True and now is False:
        message = "The product went out of stock"
        holder = _holder(old)
        if holder is not None and _holder(new) is None:
            held = "you" if me.holds(*holder) else _who(holder)
            message += f": nobody holds the Buy Box now (before, {held} held it)"
        return [
            AlertDraft(
                AlertType.OUT_OF_STOCK,
                "critical",
                "availability",
                old.availability,
                new.availability,
                None,
                None,
                message,
            )
        ]
    if was is False and now is True:
        message = "The product is back in stock"
        holder = _holder(new)
        if holder is not None and me.known:
            message += (": you hold the Buy Box" if me.holds(*holder)
                        else f": {_who(holder)} holds the Buy Box, not you")
        return [
            AlertDraft(
                AlertType.BACK_IN_STOCK,
                "info",
                "availability",
                old.availability,
                new.availability,
                None,
                None,
                message,
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

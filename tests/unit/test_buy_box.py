"""Who holds the Buy Box, judged per seller: the identity rules, each Buy Box alert rule,
and the Buy Box share. Pure domain: no database, no stack."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta

import pytest

from amazon_pilot.domain.changes import (
    SEEN_SELLERS_KEPT,
    AlertDraft,
    LatestValues,
    Thresholds,
    detect_changes,
    seller_keys,
)
from amazon_pilot.domain.seller_identity import (
    NO_IDENTITY,
    BuyBoxDay,
    IdentityRuleError,
    SellerIdentity,
    buy_box_share,
    normalize_brands,
    normalize_seller_ids,
)
from amazon_pilot.domain.snapshot import Availability, Snapshot

MINE = "A294P4X9EWVXLJ"  # AnkerDirect, the Buy Box seller of the real axesso item
HIJACKER = "A1HJK2CK3R4Q5Z"
RESELLER = "A3RESELL3R0001"
ME = SellerIdentity.of([MINE], ["Soundcore"], "Anker Innovations")
BRAND_ONLY = SellerIdentity.of([], ["Soundcore"], None)


def snap(**overrides: object) -> Snapshot:
    base = Snapshot(
        asin="B0D2XRXNGY", title="Soundcore V20i Open-Ear Headphones", brand="Soundcore",
        price=23.49, buy_box_price=23.49, buy_box_seller="AnkerDirect",
        buy_box_seller_id=MINE, fulfilled_by="Amazon", availability=Availability.IN_STOCK,
    )
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


HIJACKED = {"buy_box_seller": "ShadyCo Deals", "buy_box_seller_id": HIJACKER}
RESOLD = {"buy_box_seller": "BestValue Store", "buy_box_seller_id": RESELLER}
NO_OFFER = {"price": None, "buy_box_price": None, "buy_box_seller": None,
            "buy_box_seller_id": None}


def judge(before: Snapshot | LatestValues, after: Snapshot,
          me: SellerIdentity = ME, thresholds: Thresholds | None = None) -> list[AlertDraft]:
    previous = before if isinstance(before, LatestValues) else LatestValues.of(before)
    return detect_changes(previous, after, thresholds or Thresholds(), identity=me)


def by_type(drafts: list[AlertDraft]) -> dict[str, AlertDraft]:
    out = {str(d.type): d for d in drafts}
    assert len(out) == len(drafts), drafts  # one alert per type and observation
    return out


# ------------------------------------------------------------------ the identity rules


def test_seller_ids_are_trimmed_upper_cased_and_deduplicated() -> None:
    assert normalize_seller_ids([" a294p4x9ewvxlj ", "ATVPDKIKX0DER", "A294P4X9EWVXLJ"]) == [
        "A294P4X9EWVXLJ", "ATVPDKIKX0DER"]
    assert normalize_seller_ids([]) == []


@pytest.mark.parametrize(("values", "field", "words"), [
    (["A294P4X9EWVXLJ", "AnkerDirect"], "seller_ids[1]", "looks like a seller name"),
    (["A29-4P4X9EWVX"], "seller_ids[0]", "is not an Amazon seller id"),
    (["A29 4P4X9EWVXLJ"], "seller_ids[0]", "is not an Amazon seller id"),
    (["SHORT123"], "seller_ids[0]", "10 to 20 letters and digits"),
    (["A" * 21], "seller_ids[0]", "10 to 20 letters and digits"),
    (["   "], "seller_ids[0]", "is empty"),
    ([42], "seller_ids[0]", "must be a string"),
    ([f"A{i:013d}" for i in range(21)], "seller_ids", "at most 20 seller ids"),
])
def test_a_seller_id_that_is_not_one_is_refused_by_its_place(
        values: list[object], field: str, words: str) -> None:
    with pytest.raises(IdentityRuleError) as caught:
        normalize_seller_ids(values)
    assert caught.value.field == field and words in caught.value.message


def test_twenty_distinct_ids_after_deduplication_are_accepted() -> None:
    ids = [f"A{i:013d}" for i in range(20)]
    assert normalize_seller_ids(ids + [i.lower() for i in ids]) == ids


def test_brands_are_trimmed_collapsed_and_deduplicated_regardless_of_case() -> None:
    full_width = "\uff21\uff2e\uff2b\uff25\uff32"  # ANKER as a Japanese keyboard types it
    assert normalize_brands(["  Soundcore ", "soundcore", "Anker   Nebula", full_width]) == [
        "Soundcore", "Anker Nebula", "ANKER"]


@pytest.mark.parametrize(("values", "field", "words"), [
    (["Soundcore", " "], "brands[1]", "is empty"),
    (["x" * 101], "brands[0]", "longer than 100"),
    (["Sound\x00core"], "brands[0]", "control characters"),
    ([None], "brands[0]", "must be a string"),
    ([f"Brand {i}" for i in range(21)], "brands", "at most 20 brands"),
])
def test_a_bad_brand_is_refused_by_its_place(values: list[object], field: str,
                                             words: str) -> None:
    with pytest.raises(IdentityRuleError) as caught:
        normalize_brands(values)
    assert caught.value.field == field and words in caught.value.message


def test_ownership_is_judged_by_seller_id_and_by_name_only_without_an_id() -> None:
    assert ME.known and ME.holds(MINE.lower(), "whatever name") is True
    # an id decides, whatever the name says
    assert ME.holds(HIJACKER, "AnkerDirect") is False
    assert ME.holds(HIJACKER, "Anker Innovations") is False
    # formats that name the seller only: the company name and the brands
    assert ME.holds(None, "  anker   innovations ") is True
    assert ME.holds(None, "Soundcore") is True
    assert ME.holds(None, "ShadyCo Deals") is False
    assert ME.holds(None, None) is None
    # without seller ids nothing is guessed, not even from a matching name
    assert not BRAND_ONLY.known and BRAND_ONLY.holds(None, "Soundcore") is None
    assert NO_IDENTITY.holds(MINE, "AnkerDirect") is None
    assert SellerIdentity.of([], [], None) is NO_IDENTITY


# ------------------------------------------------------------------ lost and regained


def test_buy_box_lost_names_who_holds_it_now() -> None:
    alerts = by_type(judge(snap(), snap(**RESOLD)))
    lost = alerts.pop("buy_box_lost")
    assert lost.severity == "critical" and lost.metric == "buy_box_seller"
    assert lost.old_value == "AnkerDirect" and lost.new_value == "BestValue Store"
    assert lost.message.startswith(
        f"You lost the Buy Box to BestValue Store (seller id {RESELLER})")
    # the reseller is new on this listing of the seller's brand too
    assert set(alerts) == {"new_seller_on_listing"}


def test_buy_box_regained_from_another_seller() -> None:
    alerts = by_type(judge(snap(**RESOLD), snap()))
    regained = alerts["buy_box_regained"]
    assert regained.severity == "info"
    assert regained.message == (
        f"You won the Buy Box back from BestValue Store (seller id {RESELLER})")
    assert "buy_box_lost" not in alerts and "buy_box_seller_change" not in alerts


def test_a_change_between_two_other_sellers_is_a_seller_change_saying_neither_is_you() -> None:
    alerts = by_type(judge(snap(**RESOLD), snap(**HIJACKED)))
    change = alerts["buy_box_seller_change"]
    assert change.severity == "info"
    assert "neither is one of your seller ids" in change.message
    assert "buy_box_lost" not in alerts and "buy_box_regained" not in alerts


def test_a_change_between_two_of_ones_own_accounts_is_no_news() -> None:
    two_accounts = SellerIdentity.of([MINE, RESELLER], [], None)
    assert judge(snap(), snap(**RESOLD), two_accounts) == []


def test_without_seller_ids_the_alert_says_ownership_is_unknown() -> None:
    for me in (NO_IDENTITY, BRAND_ONLY):
        alerts = by_type(judge(snap(), snap(**RESOLD), me))
        change = alerts["buy_box_seller_change"]
        assert change.severity == "warning"
        assert change.message.startswith(
            f"Buy Box seller changed: AnkerDirect (seller id {MINE}) → BestValue Store")
        assert "ownership unknown: you have not told us your Amazon seller ids" in change.message
        assert "whether you lost it or won it" in change.message
        assert "buy_box_lost" not in alerts and "buy_box_regained" not in alerts


def test_the_same_seller_under_another_name_is_not_a_change() -> None:
    renamed = snap(buy_box_seller="Anker Direct US")
    assert judge(snap(), renamed) == []
    assert judge(snap(), renamed, NO_IDENTITY) == []


def test_a_format_without_ids_is_judged_by_name() -> None:
    before = snap(buy_box_seller="Anker Innovations", buy_box_seller_id=None)
    after = snap(buy_box_seller="ShadyCo Deals", buy_box_seller_id=None)
    lost = by_type(judge(before, after))["buy_box_lost"]
    assert lost.message.startswith("You lost the Buy Box to ShadyCo Deals")


# ------------------------------------------------------------------ nobody holds it


def test_no_featured_offer_is_buy_box_suppressed_never_out_of_stock() -> None:
    suppressed = snap(availability=Availability.NO_FEATURED_OFFER, **NO_OFFER)
    alerts = by_type(judge(snap(), suppressed))
    assert set(alerts) == {"buy_box_suppressed"}
    alert = alerts["buy_box_suppressed"]
    assert alert.severity == "critical"  # it was the seller's Buy Box
    assert alert.old_value == "in_stock" and alert.new_value == "no_featured_offer"
    assert "no featured offer" in alert.message and "not out of stock" in alert.message
    assert "Before, you held it" in alert.message
    # someone else's: a warning naming them; no seller ids: ownership unknown
    other = by_type(judge(snap(**RESOLD), suppressed))["buy_box_suppressed"]
    assert other.severity == "warning" and "BestValue Store" in other.message
    unknown = by_type(judge(snap(), suppressed, NO_IDENTITY))["buy_box_suppressed"]
    assert unknown.severity == "warning" and "ownership unknown" in unknown.message
    # once, not at every observation while it lasts; and no stock alert on the way back
    assert judge(suppressed, suppressed) == []
    assert "back_in_stock" not in by_type(judge(suppressed, snap()))


def test_holding_it_again_after_a_suppression_is_regained() -> None:
    suppressed = snap(availability=Availability.NO_FEATURED_OFFER, **NO_OFFER)
    alerts = by_type(judge(suppressed, snap()))
    assert set(alerts) == {"buy_box_regained"}
    assert judge(suppressed, snap(**RESOLD), NO_IDENTITY) == []


def test_nobody_holding_it_during_a_stock_out_is_part_of_the_out_of_stock_alert() -> None:
    gone = snap(availability=Availability.OUT_OF_STOCK, **NO_OFFER)
    alerts = by_type(judge(snap(), gone))
    assert set(alerts) == {"out_of_stock"}  # no second critical alert for the Buy Box
    assert alerts["out_of_stock"].message == (
        "The product went out of stock: nobody holds the Buy Box now (before, you held it)")
    theirs = by_type(judge(snap(**RESOLD), gone, NO_IDENTITY))["out_of_stock"]
    assert theirs.message.endswith(f"(before, BestValue Store (seller id {RESELLER}) held it)")
    back = by_type(judge(gone, snap(**HIJACKED)))
    assert back["back_in_stock"].message == (
        f"The product is back in stock: ShadyCo Deals (seller id {HIJACKER}) holds the "
        "Buy Box, not you")
    assert by_type(judge(gone, snap()))["back_in_stock"].message.endswith("you hold the Buy Box")


def test_no_seller_reported_is_no_change() -> None:
    # the reduced junglee export names no seller: nothing is known to have moved
    unreported = snap(buy_box_seller=None, buy_box_seller_id=None)
    assert judge(snap(), unreported) == []
    assert judge(unreported, snap()) == []


# ------------------------------------------------------------------ new sellers


def test_a_seller_never_seen_on_ones_brand_listing_is_new_seller_on_listing() -> None:
    previous = LatestValues.of(snap(**RESOLD), LatestValues.of(snap()))
    assert previous.seen_sellers == [*seller_keys(MINE, "AnkerDirect"),
                                     *seller_keys(RESELLER, "BestValue Store")]
    alerts = by_type(judge(previous, snap(**HIJACKED)))
    new = alerts["new_seller_on_listing"]
    assert new.severity == "warning" and new.new_value == "ShadyCo Deals"
    assert new.message.startswith(
        "A seller not seen before holds the Buy Box on your Soundcore listing: "
        f"ShadyCo Deals (seller id {HIJACKER})")
    assert "a seller not seen on this listing before" in alerts["buy_box_seller_change"].message
    # a seller seen before is no news; nor is one on a brand that is not the seller's
    seen = LatestValues.of(snap(**HIJACKED), previous)
    assert "new_seller_on_listing" not in by_type(judge(seen, snap(**RESOLD)))
    assert "new_seller_on_listing" not in by_type(
        judge(previous, snap(brand="Generic", **HIJACKED)))
    # nor the seller themself
    assert "new_seller_on_listing" not in by_type(
        judge(previous, snap(buy_box_seller="Anker Outlet", buy_box_seller_id=MINE)))


def test_a_brand_owner_without_seller_ids_hears_of_new_sellers_with_ownership_unknown() -> None:
    new = by_type(judge(snap(), snap(**HIJACKED), BRAND_ONLY))["new_seller_on_listing"]
    assert "ownership unknown" in new.message and "whether this seller is you" in new.message
    assert "new_seller_on_listing" not in by_type(judge(snap(), snap(**HIJACKED), NO_IDENTITY))


def test_a_listing_remembered_before_sellers_were_is_seeded_with_its_last_holder() -> None:
    stored_before = {k: v for k, v in LatestValues.of(snap(**RESOLD)).to_dict().items()
                     if k not in ("seen_sellers", "buy_box_seller_id")}
    previous = LatestValues.from_dict(stored_before)
    assert previous is not None and previous.seen_sellers is None
    assert judge(previous, snap(**RESOLD)) == []  # the holder it knew is not new
    assert "new_seller_on_listing" in by_type(judge(previous, snap(**HIJACKED)))
    assert LatestValues.of(snap(**HIJACKED), previous).seen_sellers == [
        "name:bestvalue store", *seller_keys(HIJACKER, "ShadyCo Deals")]


def test_a_listing_remembers_its_most_recent_sellers() -> None:
    values = LatestValues.of(snap())
    for i in range(SEEN_SELLERS_KEPT + 5):
        values = LatestValues.of(snap(buy_box_seller=None, buy_box_seller_id=f"A{i:013d}"),
                                 values)
    assert values.seen_sellers is not None and len(values.seen_sellers) == SEEN_SELLERS_KEPT
    assert values.seen_sellers[-1] == f"id:A{SEEN_SELLERS_KEPT + 4:013d}"
    # a seller seen again moves to the end, not in twice
    again = LatestValues.of(snap(buy_box_seller=None, buy_box_seller_id=f"A{10:013d}"), values)
    assert again.seen_sellers is not None and again.seen_sellers.count(f"id:A{10:013d}") == 1
    assert again.seen_sellers[-1] == f"id:A{10:013d}"


def test_more_offers_on_ones_brand_listing_is_new_seller_on_listing() -> None:
    before = replace(LatestValues.of(snap()), offer_count=2)
    after = replace(LatestValues.of(snap(), before), offer_count=3)
    alerts = detect_changes(before, snap(), Thresholds(), after, ME)
    new = by_type(alerts)["new_seller_on_listing"]
    assert new.metric == "offer_count" and (new.old_value, new.new_value) == (2, 3)
    assert new.message == "More sellers offer your Soundcore listing: 2 → 3 offers"
    fewer = replace(after, offer_count=1)
    assert detect_changes(before, snap(), Thresholds(), fewer, ME) == []


@dataclass
class Listed(Snapshot):
    """A snapshot of an actor format that lists the offers (Snapshot gains these fields
    with the actor formats' work; the detection reads them where they are)."""

    offer_count: int | None = None
    offer_sellers: list[OfferSeller] = field(default_factory=list)


@dataclass(frozen=True)
class OfferSeller:
    seller_id: str | None
    name: str | None


def listed(*sellers: tuple[str | None, str | None], **overrides: object) -> Listed:
    base = Listed(**{f.name: getattr(snap(), f.name) for f in fields(Snapshot)})
    base.offer_sellers = [OfferSeller(*s) for s in sellers]
    base.offer_count = len(sellers)
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


def test_a_new_seller_among_the_listed_offers_is_new_seller_on_listing() -> None:
    mine, reseller = (MINE, "AnkerDirect"), (RESELLER, "BestValue Store")
    before = LatestValues.of(listed(mine, reseller))
    assert before.offer_count == 2
    assert "id:" + RESELLER in (before.seen_sellers or [])
    newcomer = (None, "Cheap Earbuds 4U")  # a format that names the seller only
    alerts = by_type(judge(before, listed(mine, reseller, newcomer)))
    new = alerts.pop("new_seller_on_listing")
    assert new.metric == "buy_box_seller" and new.new_value == "Cheap Earbuds 4U"
    assert new.message == ("A seller not seen before on your Soundcore listing: Cheap Earbuds "
                           "4U (a reseller, or a hijacker)")
    assert alerts == {}  # one alert, not a second one for the count
    # the sellers listed the first time are the baseline, not news
    first = LatestValues.of(snap())
    assert first.offer_count is None
    assert "new_seller_on_listing" not in by_type(judge(first, listed(mine, reseller)))
    # a hijacker taking the Buy Box among new offers: named first, holding it
    hijacker = (HIJACKER, "ShadyCo Deals")
    taken = by_type(judge(before, listed(mine, hijacker, newcomer, **HIJACKED)))
    assert taken["new_seller_on_listing"].message.startswith(
        "Sellers not seen before on your Soundcore listing, the first holding the Buy Box: "
        f"ShadyCo Deals (seller id {HIJACKER}), Cheap Earbuds 4U")
    assert "buy_box_lost" in taken


def test_the_buy_box_setting_silences_every_buy_box_alert() -> None:
    off = Thresholds(buy_box=False)
    suppressed = snap(availability=Availability.NO_FEATURED_OFFER, **NO_OFFER)
    for before, after in ((snap(), snap(**HIJACKED)), (snap(**RESOLD), snap()),
                          (snap(), suppressed), (suppressed, snap())):
        assert judge(before, after, thresholds=off) == []


# ------------------------------------------------------------------ the share


def test_the_buy_box_share_counts_days_with_a_known_holder() -> None:
    start = date(2026, 9, 1)
    days = [
        BuyBoxDay(start, MINE, "AnkerDirect", False),
        BuyBoxDay(start + timedelta(days=1), HIJACKER, "ShadyCo Deals", False),
        BuyBoxDay(start + timedelta(days=2), None, None, True),  # out of stock: nobody
        BuyBoxDay(start + timedelta(days=3), None, None, False),  # no seller reported
        BuyBoxDay(start + timedelta(days=4), None, "Anker Innovations", False),
    ]
    share = buy_box_share(days, ME)
    assert (share.days, share.held, share.unknown_days, share.share) == (4, 2, 1, 0.5)
    assert share.held_on == [start, start + timedelta(days=4)]
    recent = buy_box_share(days, ME, since=start + timedelta(days=1))
    assert (recent.days, recent.held) == (3, 1)
    unknown = buy_box_share(days, NO_IDENTITY)
    assert (unknown.days, unknown.held, unknown.share) == (4, None, None)
    assert buy_box_share([], ME).share is None

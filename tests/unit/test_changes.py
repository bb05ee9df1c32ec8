"""Change detection against a seller's thresholds."""

from __future__ import annotations

from dataclasses import fields, replace

from amazon_pilot.domain.changes import (
    GOVERNED_ALERTS,
    AlertType,
    LatestValues,
    Thresholds,
    detect_changes,
)
from amazon_pilot.domain.snapshot import Availability, Snapshot, SubcategoryRank


def snap(**overrides: object) -> Snapshot:
    base = Snapshot(
        asin="B0C33XXS56", title="Soundcore P40i Earbuds", price=49.99, list_price=59.99,
        buy_box_price=49.99, buy_box_seller="Anker Direct", availability=Availability.IN_STOCK,
        rating=4.4, review_count=1200, bsr_rank=120, bsr_category="Electronics",
        subcategory_ranks=[SubcategoryRank(10, "Earbud Headphones")],
        image_urls=["https://m.media-amazon.com/images/I/a.jpg"],
    )
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


def types(previous: Snapshot, new: Snapshot, thresholds: Thresholds | None = None) -> set[str]:
    drafts = detect_changes(LatestValues.of(previous), new, thresholds or Thresholds())
    return {d.type for d in drafts}


def test_first_observation_is_a_baseline_not_an_alert() -> None:
    assert detect_changes(None, snap(), Thresholds()) == []


def test_price_moves_past_ten_percent_by_default() -> None:
    assert types(snap(), snap(price=44.0, buy_box_price=49.99)) == {"price_change"}
    assert types(snap(), snap(price=45.5, buy_box_price=49.99)) == set()  # -9 %
    draft = detect_changes(LatestValues.of(snap()), snap(price=39.99, buy_box_price=49.99),
                           Thresholds())[0]
    assert draft.change_pct == -20.0 and draft.threshold == 10.0
    assert draft.old_value == 49.99 and draft.new_value == 39.99


def test_each_seller_threshold_decides() -> None:
    tight = Thresholds(price_change_pct=2.0)
    assert "price_change" in types(snap(), snap(price=48.0, buy_box_price=49.99), tight)
    assert types(snap(), snap(price=48.0, buy_box_price=49.99)) == set()


def test_subcategory_bsr_moves_past_thirty_percent() -> None:
    worse = snap(subcategory_ranks=[SubcategoryRank(14, "Earbud Headphones")])
    assert "subcategory_bsr_change" in types(snap(), worse)
    slight = snap(subcategory_ranks=[SubcategoryRank(12, "Earbud Headphones")])
    assert "subcategory_bsr_change" not in types(snap(), slight)
    # a rank in another subcategory is not comparable
    other = snap(subcategory_ranks=[SubcategoryRank(90, "Over-Ear Headphones")])
    assert "subcategory_bsr_change" not in types(snap(), other)


def test_buy_box_seller_change_without_identity() -> None:
    # who holds it is judged per seller (tests/unit/test_buy_box.py); without one's
    # seller ids a new holder is a seller change, and no seller reported is no change
    assert types(snap(), snap(buy_box_seller="CheapDeals")) == {"buy_box_seller_change"}
    assert types(snap(), snap(buy_box_seller=None)) == set()
    assert types(snap(), snap(buy_box_seller="CheapDeals"), Thresholds(buy_box=False)) == set()


def test_stock_transitions() -> None:
    out = snap(availability=Availability.OUT_OF_STOCK, price=None, buy_box_price=None)
    assert "out_of_stock" in types(snap(), out)
    assert "back_in_stock" in types(out, snap())
    low = snap(availability=Availability.LOW_STOCK, stock_count=3)
    assert types(snap(), low) == set()  # low stock is still in stock


def test_rating_reviews_and_listing_edits() -> None:
    assert "rating_change" in types(snap(), snap(rating=4.2))
    assert "rating_change" not in types(snap(), snap(rating=4.3))
    assert "review_count_jump" in types(snap(), snap(review_count=1260))
    assert "title_change" in types(snap(), snap(title="Soundcore P40i, new"))
    assert "images_change" in types(snap(), snap(image_urls=["https://x/b.jpg"]))


def test_unknown_values_never_fire() -> None:
    unknown = snap(price=None, rating=None, review_count=None, subcategory_ranks=[],
                   bsr_rank=None, availability=Availability.UNKNOWN)
    assert types(snap(), unknown) <= {"buy_box_price_change"}


def test_target_price_fires_once_when_crossed() -> None:
    t = Thresholds(target_price=45.0)
    assert "target_price_reached" in types(snap(), snap(price=44.0), t)
    assert "target_price_reached" not in types(snap(price=44.0), snap(price=43.5), t)


def test_delisting() -> None:
    gone = replace(snap(), found=False)
    assert types(snap(), gone) == {"delisted"}


def test_each_setting_governs_the_alert_types_it_names() -> None:
    assert set(GOVERNED_ALERTS) == {f.name for f in fields(Thresholds)}
    governed = {kind for kinds in GOVERNED_ALERTS.values() for kind in kinds}
    assert governed == set(AlertType) - {AlertType.DELISTED}  # a delisting is always news
    changed = snap(buy_box_seller="Other Seller", buy_box_price=30.0, title="New title",
                   availability=Availability.OUT_OF_STOCK, image_urls=["https://x/b.jpg"])
    everything = types(snap(), changed)
    for switch in ("buy_box", "stock", "listing"):
        silenced = everything - types(snap(), changed, Thresholds(**{switch: False}))
        assert silenced and silenced <= set(GOVERNED_ALERTS[switch]), switch
    drafts = detect_changes(LatestValues.of(snap()), changed, Thresholds())
    assert all(isinstance(d.type, AlertType) for d in drafts)


def test_latest_read_back_is_what_was_stored():
    """products.latest read back gives the values it was written from: the stored fields,
    in their order (to_dict writes them so), the display values beside them left out, the
    defaults for a field an older `latest` lacks."""
    values = LatestValues.of(snap(), LatestValues(seen_sellers=["name:old seller"]))
    stored = {**values.to_dict(), "currency": "USD", "in_stock": True, "image_count": 1}
    back = LatestValues.from_dict(stored)
    assert back == values
    assert list(back.to_dict()) == list(values.to_dict())
    older = {"price": 10.0, "title": "Old", "currency": "USD"}  # before most fields existed
    assert LatestValues.from_dict(older) == LatestValues(price=10.0, title="Old")
    assert LatestValues.from_dict({}) is None and LatestValues.from_dict(None) is None
    one, two = LatestValues.from_dict(older), LatestValues.from_dict(older)
    assert one is not None and two is not None
    one.extra["note"] = 1
    assert two.extra == {}  # each its own

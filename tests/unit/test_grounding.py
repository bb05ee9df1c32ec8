"""The grounding rule: what a title, bullet or description suggestion may add."""

from __future__ import annotations

from datetime import date

import pytest

from amazon_pilot.domain import grounding
from amazon_pilot.domain.keywords import high_value_keywords, phrases
from amazon_pilot.domain.listing_score import score_listing
from amazon_pilot.domain.normalize import normalize_item
from amazon_pilot.domain.snapshot import Snapshot
from amazon_pilot.domain.suggestions import (
    ListingCopy,
    llm_copy_messages,
    suggest,
    unchanged_notes,
)
from amazon_pilot.optimization.service import rule_suggestions
from pilot_dev.standins.apify_catalog import CATEGORIES, demo_asins, item_for
from pilot_dev.standins.openai_server import ChatRequest, listing_copy

OURS = Snapshot(
    asin="B0SONIX001",
    brand="Sonix",
    title="Sonix Wireless Earbuds, Bluetooth 5.3 Headphones",
    bullet_points=[
        "30H PLAYTIME: the charging case gives 30 hours of music on one charge.",
        "IPX7 WATERPROOF: sweat and rain proof for the gym and running.",
    ],
    description="Sonix earbuds pair in one step and fit small ears.",
    bsr_rank=900,
)


def rival(i: int) -> Snapshot:
    return Snapshot(
        asin=f"B0RIVAL00{i}",
        brand=f"Rival{i}",
        title=f"Rival{i} Wireless Earbuds 48H Playtime, Noise Cancelling Earphones",
        bullet_points=[
            "Long battery: the charge gives you hours going through the day.",
            "Stay connected away from the phone.",
        ],
        bsr_rank=100 * i,
    )


RIVALS = [rival(i) for i in range(1, 4)]


def test_specs_are_normalised() -> None:
    got = grounding.specs("30H Playtime, IPX7, Bluetooth 5.3, 2-Pack, 500ml, 18 fl. oz, 48-Hour")
    assert got == {"30 h", "ipx7", "v 5.3", "2 pack", "500 ml", "18 oz", "48 h"}
    assert grounding.specs("30 hours") == grounding.specs("30H")


def test_a_rivals_spec_is_not_ours() -> None:
    src = grounding.sources(OURS, RIVALS)
    g = grounding.check(OURS.title + " - 48H Playtime", src, OURS.title)
    assert not g.ok and g.foreign_specs == ["48H"]
    # "cancelling" is fine: three rival titles use it.
    g = grounding.check(OURS.title + " - Noise Cancelling", src, OURS.title)
    assert g.ok and g.term_sources["cancelling"] == "competitor titles (3)"
    own = grounding.check(OURS.title + " - 30H Playtime, IPX7 Waterproof", src, OURS.title)
    assert own.ok and own.term_sources["waterproof"] == "own bullets"


def test_terms_need_the_listing_or_two_competitor_titles() -> None:
    src = grounding.sources(OURS, RIVALS)
    g = grounding.check("Sonix Wireless Earbuds, Battery Life, Charging Case", src, "")
    assert g.ungrounded == ["battery", "life"]  # rivals say it in bullets only
    assert g.term_sources["charging"] == "own bullets"
    # A rival's brand never counts, however many titles show it.
    two = [rival(1), Snapshot(asin="B0X", brand="Other", title="Rival1 fan earbuds")]
    assert "rival1" in grounding.check("Rival1", grounding.sources(OURS, two), "").ungrounded


def test_fragments_are_not_keywords() -> None:
    keys = {s for s, _ in phrases("The charge gives you hours going through the day")}
    assert not any(k.endswith(("give", "going", "through")) for k in keys)
    kws = {disp for _, disp, _, _ in high_value_keywords(RIVALS, frozenset({"rival1"}))}
    assert not kws & {"charge gives", "going through", "away", "charge"}
    # No phrase spans two bullets ("day stay").
    assert "day stay" not in kws


def test_title_suggestion_never_gains_a_rivals_spec() -> None:
    score = score_listing(OURS, RIVALS)
    title = next(s for s in suggest(OURS, RIVALS, score, []) if s.type == "title")
    new = title.evidence["suggested_title"]
    assert "48" not in new
    assert "30H Playtime" in new  # our own spec, from our bullets
    assert "48h playtime" in title.evidence["keywords_not_grounded"]
    src = grounding.sources(OURS, RIVALS)
    check = grounding.check(new, src, OURS.title)
    assert check.ok and set(check.term_sources) == set(title.evidence["term_sources"])


def test_repair_drops_only_the_ungrounded_segments() -> None:
    src = grounding.sources(OURS, RIVALS)
    got = grounding.repair_title(
        "Sonix Wireless Earbuds - 48H Playtime, IPX7 Waterproof, Hi-Fi Bass", src, OURS.title
    )
    assert got == "Sonix Wireless Earbuds - IPX7 Waterproof"
    prose = grounding.repair_prose(
        "Sonix earbuds fit small ears. They offer studio grade sound. 30 hours of music.",
        src, "",
    )
    assert prose == "Sonix earbuds fit small ears. 30 hours of music."


def test_non_latin_words_are_words() -> None:
    jp = Snapshot(asin="B0JP", brand="ソニックス", title="ソニックス ワイヤレスイヤホン 30時間")
    src = grounding.sources(jp, [])
    assert grounding.check("ソニックス ワイヤレスイヤホン", src, "").ok
    de = Snapshot(asin="B0DE", brand="Kühl", title="Kühl Kühlbox 24 Liter, Blau")
    src = grounding.sources(de, [])
    assert grounding.check("Kühl Kühlbox Blau, 24 Liter", src, "").ok
    assert not grounding.check("Kühl Kühlbox 30 Liter", src, "").ok


def test_the_rules_title_reads_as_a_title() -> None:
    bare = Snapshot(asin="B0SONIX002", brand="Sonix", title="Sonix Earbuds", bsr_rank=4000)
    score = score_listing(bare, RIVALS)
    title = next(s for s in suggest(bare, RIVALS, score, []) if s.type == "title")
    # The market's phrase joined where it belongs, the loose "noise" joined to its phrase.
    assert title.evidence["suggested_title"] == (
        "Sonix Wireless Earbuds, Noise Cancelling Earphones"
    )
    assert title.evidence["term_sources"]["noise"] == "competitor titles (3)"


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("marketplace", ["com", "de", "co.jp"])
def test_catalog_products_get_grounded_copy_that_changes_something(
    category: str, marketplace: str
) -> None:
    """The stand-in catalog's products (the demo's) in every category and locale: no title
    or bullet suggestion repeats the listing, every added term has a source, and the
    offline model's copy passes the same rule."""
    day = date(2026, 11, 30)
    snaps = [normalize_item(item_for(a, marketplace, day), marketplace=marketplace)
             for a in demo_asins(category, 5)]
    for i, product in enumerate(snaps):
        rivals = snaps[:i] + snaps[i + 1:]
        ranked = rule_suggestions(product, rivals, []).suggestions
        src = grounding.sources(product, rivals)
        for s in ranked:
            if s.type == "title":
                new = s.evidence["suggested_title"]
                assert not grounding.same_text(new, product.title)
                check = grounding.check(new, src, product.title)
                assert check.ok, (new, check.problems())
                assert set(check.term_sources) <= set(s.evidence["term_sources"])
            if s.type == "description" and s.evidence["suggested_bullets"]:
                assert [grounding.norm(b) for b in s.evidence["suggested_bullets"]] != [
                    grounding.norm(b) for b in product.bullet_points]
                assert all(grounding.check(b, src, "").ok for b in s.evidence["suggested_bullets"])
        messages = llm_copy_messages(product, ranked)
        if not any(s.type in ("title", "description") for s in ranked):
            continue
        copy = ListingCopy.model_validate(listing_copy(ChatRequest(
            model="m", messages=messages, body={}, user_text=messages[1]["content"])))
        assert grounding.check(copy.title, src, "").ok, copy.title
        for b in copy.bullets:
            assert grounding.check(b, src, "").ok, b
        assert grounding.check(copy.description, src, "").ok


def test_the_details_table_grounds_terms_and_specs() -> None:
    bottle = Snapshot(asin="B0BOTTLE01", brand="HydroPeak", title="HydroPeak Water Bottle",
                      details_table=[("Capacity", "750 ml"), ("Material", "Stainless Steel")])
    src = grounding.sources(bottle, [])
    g = grounding.check("HydroPeak Water Bottle, Stainless Steel, 750 ml", src, bottle.title)
    assert g.ok and g.term_sources == {"stainless": "own details", "steel": "own details"}
    assert not grounding.check("HydroPeak Water Bottle, 1 l", src, bottle.title).ok
    score = score_listing(bottle, [])
    title = next(s for s in suggest(bottle, [], score, []) if s.type == "title")
    assert "750 ml" in title.evidence["suggested_title"]


def test_weight_rows_stay_out_of_the_title_and_books_keep_theirs() -> None:
    bottle = Snapshot(asin="B0BOTTLE02", brand="HydroPeak", title="HydroPeak Water Bottle",
                      details_table=[("Item Weight", "9.6 ounces"), ("Capacity", "40 oz")])
    title = next(s for s in suggest(bottle, [], score_listing(bottle, []), [])
                 if s.type == "title")
    assert "9.6" not in title.evidence["suggested_title"]
    assert "40 oz" in title.evidence["suggested_title"]
    book = Snapshot(asin="0000000001", brand="Harper Perennial", title="Lanterns: A Novel",
                    details_table=[("Paperback", "316 pages"), ("ISBN-10", "470332890X")])
    score = score_listing(book, RIVALS)
    got = suggest(book, RIVALS, score, [])
    assert "title" not in {s.type for s in got}
    assert "a book's title is the work's name" in unchanged_notes(book, score, got)[0]

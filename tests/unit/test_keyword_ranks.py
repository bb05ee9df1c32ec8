"""Search-result cards read as organic and sponsored positions, first-page share, and
when a position counts as a drop; and the stand-in's pages the integration tests use."""

from __future__ import annotations

from datetime import date

import pytest

from amazon_pilot.domain import keyword_ranks as kr
from pilot_dev.standins.apify_search_catalog import PAGE_SIZE, family_for, search_items


def card(asin: str, position: int, sponsored: bool = False, **extra: object) -> dict[str, object]:
    return {"keyword": "Water Bottle", "asin": asin, "position": position,
            "isSponsored": sponsored, **extra}


def test_terms_are_normalized_and_bounded() -> None:
    assert kr.normalize_term("  Insulated   WATER bottle ") == "insulated water bottle"
    with pytest.raises(kr.InvalidTerm):
        kr.normalize_term(" a ")
    with pytest.raises(kr.InvalidTerm):
        kr.normalize_term("x" * 81)


def test_every_actor_spelling_of_a_card_is_read() -> None:
    a = kr.read_search_item(card("b0aaaaaaaa", 3, True))
    b = kr.read_search_item({"searchTerm": "water bottle", "productAsin": "B0AAAAAAAA",
                             "rankPosition": "3", "pageNumber": 1, "sponsoredListing": "true"})
    c = kr.read_search_item({"query": "water bottle", "asin": "B0AAAAAAAA",
                             "searchResultPosition": 3, "pageIndex": 1, "sponsored": True})
    assert a == b == c == kr.SearchCard("water bottle", "B0AAAAAAAA", 3, 1, True)


@pytest.mark.parametrize("item", [
    "<html>robot check</html>", {"type": "summary", "keyword": "x y", "resultCount": 48},
    card("NOTANASIN!", 1), card("B0AAAAAAAA", 0), {"asin": "B0AAAAAAAA", "position": 1},
])
def test_items_that_are_no_card_are_skipped(item: object) -> None:
    assert kr.read_search_item(item) is None


def test_organic_and_sponsored_positions_count_their_own_kind() -> None:
    cards = [kr.read_search_item(c) for c in (
        card("B0SPONSOR1", 1, True), card("B0ORGANIC1", 2), card("B0MINE00001"[:10], 3),
        card("B0MINE0000", 4, True), card("B0ORGANIC2", 5), card("B0ORGANIC3", 6, page=2))]
    pages = kr.pages_by_term([c for c in cards if c is not None])
    page = pages["water bottle"]
    assert page.size == 5  # the second page is not the first page
    mine = page.placement("B0MINE0000")
    assert (mine.organic_position, mine.sponsored_position, mine.position) == (2, 2, 3)
    assert page.placement("B0ORGANIC3").organic_position is None
    assert kr.first_page_share(page, ["B0MINE0000", "B0ORGANIC1"]) == (3, 5, 0.6)


@pytest.mark.parametrize(("old", "new", "drop"), [
    (3, 8, True), (3, 7, False), (8, 3, False), (3, None, True), (None, 40, False),
    (None, None, False),
])
def test_a_drop_is_five_places_or_falling_off_the_page(old: int | None, new: int | None,
                                                       drop: bool) -> None:
    assert (kr.rank_drop("t", old, new) is not None) is drop


def test_the_alert_message_names_each_term() -> None:
    text = kr.drop_message([kr.RankDrop("a b", 3, 9, 6), kr.RankDrop("c d", 4, None, None)])
    assert '"a b": #3 → #9' in text and '"c d": off the first page (was #4)' in text


def test_the_stand_in_serves_the_same_page_for_a_day_and_another_the_next() -> None:
    day, next_day = date(2026, 11, 2), date(2026, 11, 3)
    items = search_items(["wireless earbuds"], "com", day)
    assert items == search_items(["wireless earbuds"], "com", day)
    cards = [kr.read_search_item(i) for i in items]
    assert sum(c is not None for c in cards) == PAGE_SIZE and cards[-1] is None  # summary row
    page = kr.pages_by_term(c for c in cards if c is not None)["wireless earbuds"]
    assert sum(c.sponsored for c in page.cards) == 8
    assert items != search_items(["wireless earbuds"], "com", next_day)
    assert family_for("insulated water bottle") == "drinkware"

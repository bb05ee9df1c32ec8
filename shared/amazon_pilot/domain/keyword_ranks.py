"""Search-result pages read as positions: keyword rank tracking (docs/keywords.md).

A search actor returns one item per result card, in the page's order. Actors in the Apify
Store name the same facts differently (their published output schemas, docs/keywords.md
"Fields"): the ASIN (``asin``, ``productAsin``), the term (``keyword``, ``searchTerm``,
``query``), the absolute position (``position``, ``rankPosition``, ``searchResultPosition``),
the page (``page``, ``pageNumber``, ``pageIndex``) and the paid-placement flag
(``isSponsored``, ``sponsored``, ``sponsoredListing``). ``read_search_item`` accepts each.

Positions are 1-based over the whole first page. The organic position counts organic
cards only (what rank trackers call "organic rank"); the sponsored position is the
card's position among the sponsored cards.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_TERM_LENGTH = 80
FIRST_PAGE = 1
RANK_DROP_POSITIONS = 5  # an organic drop of at least this many places raises an alert
NOT_RANKED_PENALTY = True  # falling off the first page counts as a drop

_ASIN_RE = re.compile(r"^[A-Z0-9]{10}$")
_SPACES = re.compile(r"\s+")


class InvalidTerm(ValueError):
    pass


def normalize_term(text: str) -> str:
    """The term as searched: trimmed, single-spaced, lower-cased (Amazon's search is not
    case-sensitive), 2..80 characters."""
    term = _SPACES.sub(" ", text).strip().lower()
    if len(term) < 2:
        raise InvalidTerm("a search term needs at least 2 characters")
    if len(term) > MAX_TERM_LENGTH:
        raise InvalidTerm(f"a search term has at most {MAX_TERM_LENGTH} characters")
    return term


@dataclass(frozen=True)
class SearchCard:
    term: str
    asin: str
    position: int  # 1-based, over the page(s) the actor read
    page: int
    sponsored: bool


def _first(item: dict[str, object], *names: str) -> object:
    for name in names:
        if name in item and item[name] is not None:
            return item[name]
    return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "sponsored")
    return False


def read_search_item(item: object) -> SearchCard | None:
    """One result card, or None for an item that is not one (an error item, a summary row
    some actors add per search, a card without ASIN or position)."""
    if not isinstance(item, dict):
        return None
    asin = _first(item, "asin", "productAsin", "ASIN")
    term = _first(item, "keyword", "searchTerm", "query", "searchKeyword")
    position = _int(_first(item, "position", "rankPosition", "searchResultPosition"))
    if not isinstance(asin, str) or not isinstance(term, str) or position is None:
        return None
    asin = asin.strip().upper()
    if not _ASIN_RE.match(asin) or position < 1:
        return None
    page = _int(_first(item, "page", "pageNumber", "pageIndex")) or 1
    sponsored = _bool(_first(item, "isSponsored", "sponsored", "sponsoredListing"))
    try:
        normalized = normalize_term(term)
    except InvalidTerm:
        return None
    return SearchCard(normalized, asin, position, page, sponsored)


@dataclass(frozen=True)
class Placement:
    """Where one ASIN stood on one term's first page (None: not there)."""

    organic_position: int | None
    sponsored_position: int | None
    position: int | None  # first appearance, any kind


@dataclass(frozen=True)
class SearchPage:
    term: str
    cards: tuple[SearchCard, ...]  # first page, in position order

    @property
    def size(self) -> int:
        return len(self.cards)

    def placement(self, asin: str) -> Placement:
        organic = sponsored = first = None
        organic_seen = sponsored_seen = 0
        for card in self.cards:
            if card.sponsored:
                sponsored_seen += 1
            else:
                organic_seen += 1
            if card.asin != asin:
                continue
            first = first or card.position
            if card.sponsored and sponsored is None:
                sponsored = sponsored_seen
            if not card.sponsored and organic is None:
                organic = organic_seen
        return Placement(organic, sponsored, first)


def pages_by_term(cards: Iterable[SearchCard]) -> dict[str, SearchPage]:
    """The first page of each term, cards in position order, each position once."""
    grouped: dict[str, dict[int, SearchCard]] = {}
    for card in cards:
        if card.page != FIRST_PAGE:
            continue
        grouped.setdefault(card.term, {}).setdefault(card.position, card)
    return {term: SearchPage(term, tuple(by_pos[p] for p in sorted(by_pos)))
            for term, by_pos in grouped.items()}


def first_page_share(page: SearchPage, asins: Sequence[str]) -> tuple[int, int, float]:
    """(cards of these ASINs, cards on the page, share 0..1) of a term's first page."""
    wanted = set(asins)
    mine = sum(1 for card in page.cards if card.asin in wanted)
    return mine, page.size, (mine / page.size if page.size else 0.0)


@dataclass(frozen=True)
class RankDrop:
    term: str
    old: int | None
    new: int | None
    places: int | None  # None: fell off the first page


def rank_drop(term: str, old: int | None, new: int | None,
              min_places: int = RANK_DROP_POSITIONS) -> RankDrop | None:
    """An organic position that got worse by at least ``min_places``, or fell off the
    first page; None when it held, rose, or was not ranked before."""
    if old is None:
        return None
    if new is None:
        return RankDrop(term, old, None, None) if NOT_RANKED_PENALTY else None
    if new - old >= min_places:
        return RankDrop(term, old, new, new - old)
    return None


def drop_message(drops: Sequence[RankDrop]) -> str:
    parts = []
    for d in drops:
        if d.new is None:
            parts.append(f'"{d.term}": off the first page (was #{d.old})')
        else:
            parts.append(f'"{d.term}": #{d.old} → #{d.new}')
    return "Organic search rank dropped: " + "; ".join(parts)

"""Deterministic Amazon search-result pages for the Apify stand-in (keyword rank tracking).

A term's first page on a day is a pure function of (term, marketplace, day): the term
picks a catalog family (its words against the family names, else a hash), the family's
demo products (`demo_asins`, the ones `pilot demo` and the tests track) are ordered by
that day's sales rank with a term-specific jitter, the best 40 fill the organic slots, and
8 sponsored slots (positions 1-2, 9-10, 17-18, 33-34, as Amazon interleaves ads) go to
products picked by a daily hash, which may also rank organically, as on Amazon.

Items follow the output of keyword search actors in the Apify Store (docs/keywords.md
"Fields"): one row per card with ``keyword``, ``asin``, ``position`` (absolute, 1-based),
``page``, ``isSponsored``, ``title``, ``url``, ``price``; then one summary row per search
(``type: "summary"``) that is no card. Everything carries ``sandbox: true``.
"""

from __future__ import annotations

import hashlib
import math
from datetime import date
from typing import Any

from amazon_pilot.domain.keyword_ranks import InvalidTerm, normalize_term
from pilot_dev.standins.apify_catalog import (
    _EPOCH,
    CATEGORIES,
    _day_state,
    _profile,
    demo_asins,
    item_for,
)

POOL = 60  # demo products of the family competing for the page
ORGANIC_SLOTS = 40
SPONSORED_POSITIONS = (1, 2, 9, 10, 17, 18, 33, 34)
PAGE_SIZE = ORGANIC_SLOTS + len(SPONSORED_POSITIONS)


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def family_for(term: str) -> str:
    """The catalog family a term searches: most shared words, else a stable pick."""
    words = set(term.split())
    best, score = None, 0
    for name in CATEGORIES:
        shared = len(words & set(name.split())) + sum(
            1 for w in words for n in name.split() if len(w) > 3 and (w in n or n in w))
        if shared > score:
            best, score = name, shared
    return best or CATEGORIES[_h("family", term) % len(CATEGORIES)]


def _day_rank(asin: str, day: date) -> float:
    """The product's main-category sales rank that day, as its product page shows it."""
    return float(_day_state(_profile(asin), (day - _EPOCH).days).rank)


def search_page(term: str, marketplace: str, day: date) -> list[dict[str, Any]]:
    """The first page's cards, in position order."""
    try:
        term = normalize_term(term)
    except InvalidTerm:
        return []
    pool = demo_asins(family_for(term), POOL)
    scored = []
    for asin in pool:
        jitter = ((_h(term, asin, day.isoformat()) % 2001) - 1000) / 1000  # -1..1
        affinity = ((_h(term, asin) % 2001) - 1000) / 1000  # steady per term and product
        score = math.log(max(1.0, _day_rank(asin, day))) + 0.35 * jitter + 0.8 * affinity
        scored.append((score, asin))
    organic = [asin for _, asin in sorted(scored)[:ORGANIC_SLOTS]]
    ads = sorted(pool, key=lambda a: _h("ad", term, a, day.isoformat()))[:len(SPONSORED_POSITIONS)]
    cards: list[dict[str, Any]] = []
    organic_iter = iter(organic)
    ad_iter = iter(ads)
    for position in range(1, PAGE_SIZE + 1):
        sponsored = position in SPONSORED_POSITIONS
        asin = next(ad_iter) if sponsored else next(organic_iter)
        cards.append(_card(term, marketplace, asin, position, sponsored, day))
    return cards


def _card(term: str, marketplace: str, asin: str, position: int, sponsored: bool,
          day: date) -> dict[str, Any]:
    item = item_for(asin, marketplace, day) or {}
    return {
        "keyword": term,
        "asin": asin,
        "position": position,
        "page": 1,
        "isSponsored": sponsored,
        "title": item.get("title"),
        "url": f"https://www.amazon.{marketplace}/dp/{asin}",
        "price": item.get("price"),
        "sandbox": True,
    }


def search_items(terms: list[str], marketplace: str, day: date) -> list[dict[str, Any]]:
    """A run's dataset: each term's cards, then its summary row."""
    items: list[dict[str, Any]] = []
    for term in terms:
        cards = search_page(term, marketplace, day)
        items.extend(cards)
        items.append({"type": "summary", "keyword": term, "resultCount": len(cards),
                      "pagesRead": 1, "sandbox": True})
    return items

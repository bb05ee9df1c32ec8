"""Monthly unit and revenue estimates from a best-seller rank (docs/sales-estimates.md).

Amazon publishes ranks, not sales. Every study that had both found the same shape: units
sold fall as a power of the rank, ``units = a * rank ** -b``. The one published,
peer-reviewed fit is for books (Brynjolfsson, Hu & Smith, "Consumer Surplus in the
Digital Economy", Management Science 49(11), 2003, appendix: weekly units =
exp(10.526 - 0.871 ln rank), exponents of four studies 2001-2005 between 0.855 and 0.91).
For other top-level categories no peer-reviewed fit exists; the table below keeps the
book exponent's range and scales each category by its size relative to Books, which is
our assumption, stated as such in every answer (``basis``). A sub-category rank is read
with a flatter, smaller curve: a sub-category holds far fewer products, so rank 1 there
sells much less than rank 1 of the whole category.

The error is large and stated: a factor of ``ERROR_FACTOR`` either way for a category
curve, more for the sub-category fallback. The page's "bought in past month" badge
("1K+") is a lower bound Amazon shows for popular listings; ``badge_check`` compares it
with the estimate.

Pure: no I/O. Ranks and prices in, numbers out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DAYS_PER_MONTH = 30.44  # mean Gregorian month
WEEKS_PER_MONTH = DAYS_PER_MONTH / 7

# Books: weekly units = exp(10.526) * rank ** -0.871 (Brynjolfsson, Hu & Smith 2003)
_BOOKS_MONTHLY_SCALE = 37_223.0 * WEEKS_PER_MONTH  # exp(10.526) = 37 223
_BOOKS_EXPONENT = 0.871

ERROR_FACTOR = 2.5  # stated error of a category curve: true value within /2.5 .. x2.5
SUBCATEGORY_ERROR_FACTOR = 4.0  # the sub-category fallback is rougher


@dataclass(frozen=True)
class Curve:
    """``units_per_month = scale * rank ** -exponent`` for one category."""

    key: str
    scale: float
    exponent: float
    basis: str

    def units(self, rank: int) -> float:
        return self.scale * rank ** -self.exponent


_PUBLISHED = "published fit for books (Brynjolfsson, Hu & Smith 2003)"
_ASSUMED = ("book exponent range (0.855-0.91, four studies 2001-2005); scale relative to"
            " Books is our assumption")

# Category key -> curve. Scales relative to Books reflect how many more (or fewer) units a
# product of equal rank sells in a larger (or smaller) store category; exponents stay
# within the published range.
CURVES: dict[str, Curve] = {
    "books": Curve("books", _BOOKS_MONTHLY_SCALE, _BOOKS_EXPONENT, _PUBLISHED),
    # x3: the one real page with both figures we hold (Electronics #73, "10K+ bought in
    # past month", docs/sales-estimates.md "Checked against") is a lower bound x1.6 missed
    "electronics": Curve("electronics", _BOOKS_MONTHLY_SCALE * 3.0, 0.88, _ASSUMED),
    "home_kitchen": Curve("home_kitchen", _BOOKS_MONTHLY_SCALE * 2.2, 0.87, _ASSUMED),
    "toys_games": Curve("toys_games", _BOOKS_MONTHLY_SCALE * 1.2, 0.87, _ASSUMED),
    "sports_outdoors": Curve("sports_outdoors", _BOOKS_MONTHLY_SCALE * 1.0, 0.86, _ASSUMED),
    "cell_phones": Curve("cell_phones", _BOOKS_MONTHLY_SCALE * 1.3, 0.88, _ASSUMED),
    "clothing": Curve("clothing", _BOOKS_MONTHLY_SCALE * 2.0, 0.9, _ASSUMED),
    "tools": Curve("tools", _BOOKS_MONTHLY_SCALE * 0.9, 0.86, _ASSUMED),
    "beauty": Curve("beauty", _BOOKS_MONTHLY_SCALE * 1.5, 0.87, _ASSUMED),
    "health": Curve("health", _BOOKS_MONTHLY_SCALE * 1.5, 0.87, _ASSUMED),
    "grocery": Curve("grocery", _BOOKS_MONTHLY_SCALE * 1.0, 0.86, _ASSUMED),
    "pet_supplies": Curve("pet_supplies", _BOOKS_MONTHLY_SCALE * 0.8, 0.86, _ASSUMED),
    "baby": Curve("baby", _BOOKS_MONTHLY_SCALE * 0.6, 0.86, _ASSUMED),
    "office": Curve("office", _BOOKS_MONTHLY_SCALE * 0.7, 0.86, _ASSUMED),
    "automotive": Curve("automotive", _BOOKS_MONTHLY_SCALE * 0.8, 0.86, _ASSUMED),
}
# Any other category: the median of the table (Sports & Outdoors' curve).
DEFAULT_CURVE = Curve("default", _BOOKS_MONTHLY_SCALE * 1.0, 0.87,
                      "category not in the table: the table's median curve")
# A sub-category rank: rank 1 of a sub-category sells roughly what rank ~200 of its
# parent sells (assumption), and the curve is flatter.
SUBCATEGORY_CURVE = Curve("subcategory", DEFAULT_CURVE.units(200), 0.75,
                          "sub-category rank (no main-category rank): assumed curve")

# Words of a category name (any marketplace's language the stand-in and real pages
# use) -> curve key. Matched against the lower-cased name; first match wins.
_ALIASES: tuple[tuple[str, str], ...] = (
    ("book", "books"), ("bücher", "books"), ("本", "books"), ("kindle", "books"),
    ("cell phone", "cell_phones"), ("handy", "cell_phones"),
    ("electronic", "electronics"), ("elektronik", "electronics"), ("家電", "electronics"),
    ("computer", "electronics"),
    ("kitchen", "home_kitchen"), ("küche", "home_kitchen"), ("ホーム", "home_kitchen"),
    ("home & garden", "home_kitchen"),
    ("toy", "toys_games"), ("spielzeug", "toys_games"), ("おもちゃ", "toys_games"),
    ("sport", "sports_outdoors"), ("スポーツ", "sports_outdoors"),
    ("clothing", "clothing"), ("bekleidung", "clothing"), ("fashion", "clothing"),
    ("ファッション", "clothing"),
    ("tools", "tools"), ("baumarkt", "tools"), ("工具", "tools"),
    ("beauty", "beauty"), ("health", "health"), ("grocery", "grocery"),
    ("pet", "pet_supplies"), ("baby", "baby"), ("office", "office"),
    ("automotive", "automotive"),
)


def curve_for(category: str | None) -> Curve:
    """The curve of a main category by its name as the page shows it; unknown: default."""
    if category:
        name = re.sub(r"\s+", " ", category).strip().lower()
        for word, key in _ALIASES:
            if word in name:
                return CURVES[key]
    return DEFAULT_CURVE


@dataclass(frozen=True)
class SalesEstimate:
    units_per_month: int
    units_low: int
    units_high: int
    revenue_per_month: float | None  # units x price, in the price's currency
    rank: int
    rank_kind: str  # "category" | "subcategory"
    curve: str
    basis: str
    error_factor: float


def estimate(bsr_rank: int | None, bsr_category: str | None,
             subcategory_rank: int | None = None,
             price: float | None = None) -> SalesEstimate | None:
    """The estimate from the main-category rank, else from the sub-category rank; None
    when there is no rank (never a guess without one)."""
    if bsr_rank is not None and bsr_rank >= 1:
        curve, rank, kind, error = curve_for(bsr_category), bsr_rank, "category", ERROR_FACTOR
    elif subcategory_rank is not None and subcategory_rank >= 1:
        curve, rank, kind = SUBCATEGORY_CURVE, subcategory_rank, "subcategory"
        error = SUBCATEGORY_ERROR_FACTOR
    else:
        return None
    units = curve.units(rank)
    revenue = round(units * price, 2) if price is not None and price > 0 else None
    return SalesEstimate(
        units_per_month=max(0, round(units)),
        units_low=max(0, round(units / error)),
        units_high=max(0, round(units * error)),
        revenue_per_month=revenue,
        rank=rank,
        rank_kind=kind,
        curve=curve.key,
        basis=curve.basis,
        error_factor=error,
    )


def badge_check(units_per_month: int | None, bought_past_month: int | None) -> str | None:
    """The estimate against the page's "N+ bought in past month" lower bound.

    ``below_badge``: the estimate is under what Amazon says at least sold (an
    underestimate, by at least estimate/badge); ``consistent``: at or above it;
    None: no badge (Amazon shows it only for listings past a threshold) or no estimate.
    """
    if units_per_month is None or not bought_past_month:
        return None
    return "consistent" if units_per_month >= bought_past_month else "below_badge"

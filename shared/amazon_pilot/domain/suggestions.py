"""Deterministic, rule-based listing suggestions, ranked by impact over effort.

Each suggestion rests on numbers it carries (`evidence`) and cites (`reason`). An LLM may
rewrite the copy of title and description suggestions (`llm_copy_messages`,
`apply_llm_copy`), but the scoring and the ranking stay ours: the model only writes text,
and text that breaks the title rules is rejected.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from amazon_pilot.domain import grounding
from amazon_pilot.domain.currency import currency_of, money, split_by_currency
from amazon_pilot.domain.elasticity import Elasticity, estimate
from amazon_pilot.domain.features import display_name, features_from_snapshot
from amazon_pilot.domain.image_angles import ANGLE_LABELS, image_total
from amazon_pilot.domain.keywords import (
    STOPWORDS,
    brand_tokens,
    drop_bridges,
    phrases,
    shingles,
    stem,
    terms,
)
from amazon_pilot.domain.listing_score import (
    ACRONYMS,
    BULLET_NORM,
    BULLET_SWEET,
    PROMO_RE,
    TITLE_MAX,
    TITLE_SPECIAL_CHARS,
    TITLE_SWEET,
    ListingScore,
    caps_words,
    starts_with_brand,
)
from amazon_pilot.domain.snapshot import HistoryPoint, Snapshot

SuggestionType = Literal["title", "pricing", "description", "images"]
Level = Literal["high", "medium", "low"]
SuggestionSource = Literal["rules", "llm"]

# Points (of the 100-point score) a suggestion must win back to count as full impact.
IMPACT_FULL_POINTS = 15.0
MIN_POINTS = 0.5  # below this a rule gap is not worth a suggestion
PRICE_BAND = 0.10  # within +/-10% of the median the price is "in line"
EFFORT_FLOOR = 0.05  # keeps impact/effort finite
TYPE_ORDER: dict[str, int] = {"pricing": 0, "title": 1, "description": 2, "images": 3}

TITLE_RULES = ("title_length", "title_structure", "keyword_coverage")
COPY_RULES = ("bullet_count", "bullet_length", "description")
IMAGE_RULES = ("image_count", "image_angles", "video")


@dataclass(slots=True)
class Suggestion:
    type: SuggestionType
    change: str  # the concrete edit
    reason: str  # the data it rests on, with numbers
    evidence: dict[str, Any]
    impact: Level
    impact_score: float  # 0..1
    effort: Level
    effort_score: float  # 0..1
    priority: int = 0  # 1 = do first; set by rank()
    source: SuggestionSource = "rules"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "change": self.change,
            "reason": self.reason,
            "evidence": self.evidence,
            "impact": self.impact,
            "impact_score": round(self.impact_score, 4),
            "effort": self.effort,
            "effort_score": round(self.effort_score, 4),
            "priority": self.priority,
            "source": self.source,
        }


def impact_level(score: float) -> Level:
    return "high" if score >= 0.6 else "medium" if score >= 0.3 else "low"


def effort_level(score: float) -> Level:
    return "low" if score < 0.35 else "medium" if score < 0.65 else "high"


def rank_key(s: Suggestion) -> tuple[float, float, int, str]:
    """impact_score / max(effort_score, 0.05), highest first; ties by higher impact, then a
    fixed type order (pricing, title, description, images), then the change text."""
    ratio = s.impact_score / max(s.effort_score, EFFORT_FLOOR)
    return (-round(ratio, 9), -round(s.impact_score, 9), TYPE_ORDER.get(s.type, 9), s.change)


def rank(suggestions: Sequence[Suggestion]) -> list[Suggestion]:
    """Order by impact over effort and number them 1..n (new objects; inputs untouched)."""
    ordered = sorted(suggestions, key=rank_key)
    return [replace(s, priority=i) for i, s in enumerate(ordered, start=1)]


def _lost(score: ListingScore, rule_ids: Sequence[str]) -> float:
    return sum(r.weight - r.points for r in score.rules if r.rule_id in rule_ids and r.applicable)


def _make(
    type_: SuggestionType,
    change: str,
    reason: str,
    evidence: dict[str, Any],
    impact: float,
    effort: float,
) -> Suggestion:
    impact = min(1.0, max(0.0, impact))
    effort = min(1.0, max(0.0, effort))
    return Suggestion(
        type=type_,
        change=change,
        reason=reason,
        evidence=evidence,
        impact=impact_level(impact),
        impact_score=impact,
        effort=effort_level(effort),
        effort_score=effort,
    )


# --------------------------------------------------------------------------- title


def _display(term: str) -> str:
    def word(w: str) -> str:
        if w.upper() in ACRONYMS:
            return w.upper()
        return w if any(c.isdigit() for c in w) else w.capitalize()

    return " ".join(word(w) for w in term.split())


def _prefer_phrases(keywords: Sequence[str]) -> list[str]:
    """Replace a loose word by a missing phrase that contains it ("straw" -> "straw lid"),
    keeping the first position; a phrase reads better and covers both words."""
    out: list[str] = []
    for kw in keywords:
        if " " not in kw:
            kw = next((p for p in keywords if " " in p and kw in p.split()), kw)
        if kw not in out:
            out.append(kw)
    return out


def _dedupe_segments(title: str) -> str:
    """Drop a comma/dash/bar segment that repeats an earlier one (keyword stuffing); the
    first segment may carry the brand in front of the repeated words."""
    parts = re.split(r"(\s*,\s*|\s+-\s+|\s*\|\s*)", title)
    seen: set[str] = set()
    out: list[str] = []
    for i in range(0, len(parts), 2):
        key = " ".join(parts[i].lower().split())
        if key and any(k == key or k.endswith(" " + key) for k in seen):
            continue
        seen.add(key)
        if out:
            out.append(parts[i - 1])
        out.append(parts[i])
    return "".join(out)


_SPECIAL_TO_SPACE = str.maketrans(dict.fromkeys(TITLE_SPECIAL_CHARS, " "))


@functools.lru_cache(maxsize=4096)  # read by the score and the title suggestion alike
def clean_title(title: str, brand: str | None) -> str:
    """The title with promotional wording, banned characters and shouting removed and the
    brand moved to the front."""
    t = PROMO_RE.sub(" ", title)
    t = t.translate(_SPECIAL_TO_SPACE)
    for word in caps_words(t, brand):
        t = re.sub(rf"\b{re.escape(word)}\b", word.capitalize(), t)
    if brand and starts_with_brand(t, brand) and t[: len(brand)].lower() == brand.lower():
        t = brand + t[len(brand) :]  # the brand's own casing, not "HYDROPEAK"
    elif brand and not starts_with_brand(t, brand):
        t = re.sub(rf"\b{re.escape(brand)}\b", " ", t, flags=re.IGNORECASE)
        t = f"{brand} {t}"
    t = re.sub(r"\s+", " ", t)
    # "Skillet by EMBERLINE" loses the brand above: drop the "by" it leaves behind.
    t = re.sub(r"\s+(?:by|from)(?=\s*[,|-]|\s*$)", "", t, flags=re.IGNORECASE)
    t = _dedupe_segments(t)
    # Separators left dangling by the removals: ", ," / "- ," / trailing " -".
    t = re.sub(r"\s*([,|-])(\s*[,|-])+", r"\1", t)
    t = re.sub(r"\s+,", ",", t)
    return t.strip(" ,|-")


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,|-")


def shorten_title(title: str, limit: int) -> str:
    """Cut at the last separator (", ", " - ", " | ") that keeps it within `limit`, else at
    a word: a long title loses its trailing keyword segments first."""
    if len(title) <= limit:
        return title
    head = title[: limit + 1]
    cuts = [head.rfind(sep) for sep in (", ", " - ", " | ", "; ")]
    cut = max(cuts)
    if cut >= limit // 2:
        return head[:cut].rstrip(" ,|-;")
    return _truncate(title, limit)


_NEXT_WORD_RE = re.compile(r"\s*-?\s*([^\W\d_][^\W_]*)")


_NOT_TITLE_ROW_RE = re.compile(
    r"weight|dimension|size|length|width|height|depth|isbn|model|date|rank|pages|gewicht|"
    r"abmessung|重量|寸法", re.IGNORECASE)
_BOOK_ROW_RE = re.compile(r"^(isbn-1[03]|paperback|hardcover|taschenbuch|gebundene ausgabe|"
                          r"単行本|文庫)$", re.IGNORECASE)


def is_book(product: Snapshot) -> bool:
    """A book's title is the work's name (and its "brand" the publisher): not rewritten."""
    rows = getattr(product, "details_table", None) or []
    return any(_BOOK_ROW_RE.match(str(n).strip()) for n, _ in rows)


def own_spec_phrases(product: Snapshot) -> list[tuple[str, str]]:
    """(spec key, "30H Playtime") for the number-and-unit facts the bullet headers and the
    details table state and the title does not, with the word after the number when it
    names it. Only headers: "a 10-minute charge gives 2 hours" in a bullet's body is a
    detail, "30H PLAYTIME:" is what the seller sells on."""
    in_title = grounding.specs(product.title)
    out: list[tuple[str, str]] = []
    seen: set[str] = set(in_title)
    heads = [b.split(":", 1)[0] for b in product.bullet_points if 0 < b.find(":") <= 60]
    # Weight and dimensions rows are facts for the details page, not title specs.
    rows = [f"{v} {n}" for n, v in getattr(product, "details_table", None) or []
            if v and not _NOT_TITLE_ROW_RE.search(n)]
    for text in [*heads, *rows]:
        for m in grounding._SPEC_RE.finditer(text or ""):
            keys = grounding.specs(m.group(0))
            if not keys or keys <= seen:
                continue
            seen |= keys
            phrase = m.group(0).strip()
            nxt = _NEXT_WORD_RE.match(text, m.end())
            if nxt and nxt.group(1).lower() not in STOPWORDS and len(nxt.group(1)) >= 3:
                phrase = f"{phrase} {nxt.group(1)}"
            out.append((sorted(keys)[0], phrase))
    return out


def rewrite_title(
    title: str, brand: str | None, add: Sequence[str], specs: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """Clean the title (brand first, no promo words or banned characters), cut it to the
    sweet spot when it runs past it, then append the product's own specs the title lacks
    and the missing keywords (best first) while it stays within the sweet spot; never over
    TITLE_MAX. Returns (title, terms actually added)."""
    t, added = _rewritten_title(title, brand, tuple(add), tuple(specs))
    return t, list(added)


# The title, its keywords and specs come back unchanged on most re-runs (only ranks moved).
@functools.lru_cache(maxsize=4096)
def _rewritten_title(title: str, brand: str | None, add: tuple[str, ...],
                     specs: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    t = shorten_title(clean_title(title, brand), TITLE_SWEET[1])
    have = {s for s, _ in terms(t)}
    added: list[str] = []
    # The market's search phrases first (they name the product type), then own specs.
    for kw in _prefer_phrases(add):
        key = [stem(w) for w in kw.split()]
        if all(k in have for k in key):
            continue
        candidate = t + (", " if added else " - ") + _display(kw)
        words = kw.split()
        if len(words) == 2 and key[0] not in have and key[1] in have:
            # "wireless earbuds" into "Sonix Earbuds": "Sonix Wireless Earbuds", not a
            # second "Earbuds" at the end.
            m = re.search(rf"\b{re.escape(words[1])}", t, flags=re.IGNORECASE)
            if m:
                candidate = f"{t[: m.start()]}{_display(words[0])} {t[m.start() :]}"
        if len(candidate) > TITLE_SWEET[1]:
            continue  # a shorter keyword further down may still fit
        t = candidate
        added.append(kw)
        have.update(key)
    for spec in specs:
        candidate = t + (", " if added else " - ") + _display_spec(spec)
        if len(candidate) <= TITLE_SWEET[1]:
            t = candidate
            added.append(spec)
            have.update(s for s, _ in terms(spec))
    return t, tuple(added)


def _display_spec(phrase: str) -> str:
    """ "30H PLAYTIME" -> "30H Playtime", "5 mm base" -> "5 mm Base": units stay as written."""

    def word(w: str) -> str:
        if w.upper() in ACRONYMS or any(c.isdigit() for c in w):
            return w.upper() if w.upper() in ACRONYMS else w
        if w.lower() in grounding.UNIT_WORDS:
            return w.lower()
        return w.capitalize()

    return " ".join(word(w) for w in phrase.split())


def _title_segments(titles: Sequence[str | None]) -> list[list[str]]:
    """Competitor titles as stemmed word runs between separators."""
    out = []
    for title in titles:
        for seg in re.split(r"[,;:|/()\[\]]|\s-\s", (title or "").lower()):
            words = [stem(w) for w in grounding.words(seg)]
            if words:
                out.append(words)
    return out


def _title_phrases(
    keywords: Sequence[str], competitors: Sequence[Snapshot]
) -> tuple[list[str], dict[str, str]]:
    """Join keywords that competitor titles run together ("noise" + "cancelling earphones"
    -> "noise cancelling earphones"), and leave out a lone word that competitor titles never
    end a phrase with: on its own it is a fragment ("noise")."""
    kws, fragments = _phrases_of(tuple(keywords), tuple(c.title for c in competitors))
    return list(kws), dict(fragments)


@functools.lru_cache(maxsize=1024)
def _phrases_of(keywords: tuple[str, ...], titles: tuple[str | None, ...]
                ) -> tuple[tuple[str, ...], dict[str, str]]:
    """_title_phrases by content: a product's keywords and its rivals' titles change less
    often than the ranks and prices a re-run reads (≈ a third of suggest() otherwise)."""
    segs = _title_segments(titles)
    # per length: in how many title segments each word run occurs (a run counted once a
    # segment), so a pair of keywords is one look-up, not a pass over the segments
    held: dict[int, Counter[tuple[str, ...]]] = {}

    def runs_of(n: int) -> Counter[tuple[str, ...]]:
        counts = held.get(n)
        if counts is None:  # the runs chained in C, not yielded one by one
            counts = held[n] = Counter(itertools.chain.from_iterable(
                set(zip(*(seg[i:] for i in range(n)), strict=False)) for seg in segs))
        return counts

    def runs(words: tuple[str, ...]) -> int:
        """How many competitor title segments hold `words` in a row."""
        return runs_of(len(words)).get(words, 0)  # not [words]: Counter.__missing__ is Python

    stems_of: dict[str, tuple[str, ...]] = {}  # keyword -> its words' stems

    def stems(kw: str) -> tuple[str, ...]:
        found = stems_of.get(kw)
        if found is None:
            found = stems_of[kw] = tuple(stem(w) for w in kw.split())
        return found

    return _without_fragments(_joined(list(keywords), stems, runs, runs_of(2)), segs)


def _without_fragments(kws: list[str], segs: Sequence[Sequence[str]]
                       ) -> tuple[tuple[str, ...], dict[str, str]]:
    """The joined keywords, a lone word that competitor titles always continue left out
    (with its reason)."""
    out, fragments = [], {}
    # the words a title segment ends a phrase with: its last, or one before a stopword
    ends = {w for seg in segs for w, after in zip(seg, [*seg[1:], ""], strict=True)
            if not after or after in STOPWORDS}
    in_titles = {w for seg in segs for w in seg}
    for kw in kws:
        if " " not in kw:
            st = stem(kw)
            if segs and st not in ends and st in in_titles:
                fragments[kw] = "a fragment: competitor titles always continue it"
                continue
        out.append(kw)
    return tuple(out), fragments


def _joined(kws: list[str], stems: Callable[[str], tuple[str, ...]],
            runs: Callable[[tuple[str, ...]], int], pairs: Counter[tuple[str, ...]]
            ) -> list[str]:
    """Keywords joined, a pair at a time, while some pair's words run on in enough titles."""
    # A run of a's and b's words is in a segment only if a's last word and b's first are
    # next to each other there: a pair in fewer segments than needed is not looked up.
    enough = grounding.MIN_COMPETITOR_TITLES
    merged = True
    while merged:
        merged = False
        for a in kws:
            sa = stems(a)
            for b in kws:
                if a == b:
                    continue
                sb = stems(b)
                if sa and sb and pairs.get((sa[-1], sb[0]), 0) < enough:
                    continue
                if runs(sa + sb) >= enough:
                    joined = f"{a} {b}"
                    kws[kws.index(a)] = joined
                    kws.remove(b)
                    merged = True
                    break
            if merged:
                break
    return kws


def _title_suggestion(
    product: Snapshot,
    competitors: list[Snapshot],
    score: ListingScore,
    read_sources: Callable[[], grounding.Sources] | None = None,
) -> Suggestion | None:
    lost = _lost(score, TITLE_RULES)
    title = product.title or ""
    if (lost < MIN_POINTS and len(title) <= TITLE_SWEET[1]) or is_book(product):
        return None
    src = read_sources() if read_sources else grounding.sources(product, competitors)
    # Only keywords the grounding rule accepts: a rival's spec or a bullet fragment is not
    # a search term of ours.
    grounded, skipped = [], {}
    for kw in score.missing_keywords:
        g = grounding.check(kw, src, title)
        if g.ok:
            grounded.append(kw)
        else:
            skipped[kw] = "; ".join(g.problems())
    grounded, fragments = _title_phrases(grounded, competitors)
    skipped.update(fragments)
    specs = [phrase for _, phrase in own_spec_phrases(product)]
    new_title, added = rewrite_title(title, product.brand, grounded, specs)
    check = grounding.check(new_title, src, title)
    if not check.ok:  # cannot happen with grounded inputs; never ship it if it does
        new_title = grounding.repair_title(new_title, src, title)
        check = grounding.check(new_title, src, title)
    if not new_title.strip() or grounding.same_text(new_title, title):
        return None
    cov = score.rule("keyword_coverage")
    coverage = cov.evidence.get("coverage")
    parts = [
        f"title scores {sum(score.rule(r).points for r in TITLE_RULES):.1f}/"
        f"{sum(score.rule(r).weight for r in TITLE_RULES):.0f} points"
    ]
    if coverage is not None:
        parts.append(
            f"covers {coverage:.0%} of the weight of {len(score.keywords)} keywords that "
            f">= 2 competitors use (missing: {', '.join(score.missing_keywords[:6]) or 'none'})"
        )
    for rid in ("title_length", "title_structure"):
        r = score.rule(rid)
        if r.score < 1.0:
            parts.append(f"{r.name.lower()}: {r.detail}")
    if len(title) > TITLE_SWEET[1]:
        parts.append(
            f"cut from {len(title.strip())} to {len(new_title)} characters: Amazon allows at most "
            f"{TITLE_MAX} and most categories recommend {TITLE_SWEET[0]}-{TITLE_SWEET[1]}"
        )
    change = (
        f"Add: {', '.join(added)}. " if added else ""
    ) + f'Rewritten title ({len(new_title)} chars): "{new_title}"'
    evidence = {
        "brand": product.brand,
        "current_title": title,
        "current_length": len(title),
        "suggested_title": new_title,
        "suggested_length": len(new_title),
        "keywords_added": added,
        "missing_keywords": list(score.missing_keywords),
        "keywords_not_grounded": skipped,
        "term_sources": check.term_sources,
        "keyword_coverage": coverage,
        "points_lost": round(lost, 2),
    }
    # Title edits are a text field in Seller Central: cheap.
    impact = max(lost, 1.0) / IMPACT_FULL_POINTS
    return _make("title", change, "; ".join(parts) + ".", evidence, impact, 0.2)


# --------------------------------------------------------------------------- pricing
# Pricing reads two sources: the product's own history (domain.elasticity: how its rank
# answered its own price changes) and, with a group, the same-currency competitors' prices
# and the features only the product (or it and one rival) has. Every price says its
# currency; competitors in another currency are listed as left out, never compared.

# Revenue direction needs sales, and the history has rank: with the usual approximation
# that sales scale as 1 / BSR, revenue elasticity to price is about 1 - b (b: BSR elasticity).
REVENUE_PIVOT = 1.0
HISTORY_STEP = 0.05  # a history-led move is a test step of about 5%, not a jump


def _lead(product: Snapshot, competitors: list[Snapshot]) -> bool:
    ratings = [c.rating for c in competitors if c.rating is not None]
    reviews = [c.review_count for c in competitors if c.review_count is not None]
    return bool(
        (product.rating is not None and ratings and product.rating >= max(ratings))
        or (product.review_count is not None and reviews and product.review_count >= max(reviews))
    )


def feature_advantages(product: Snapshot, competitors: Sequence[Snapshot]) -> list[dict[str, Any]]:
    """Features (not measurements: stating a weight is no advantage) the product states
    that at most one of the competitors does."""
    if not competitors:
        return []
    main = features_from_snapshot(product)
    comps = [features_from_snapshot(c) for c in competitors]
    out = []
    for name, feat in main.features.items():
        if feat.kind == "number":
            continue
        rivals = [c.asin for c in comps if c.has(name)]
        if len(rivals) <= 1:
            out.append({"feature": display_name(name), "label": feat.label, "rivals": rivals})
    return out


def _history_direction(el: Elasticity) -> str | None:
    if not el.usable or el.interval is None:
        return None
    lo, hi = el.interval
    if hi < REVENUE_PIVOT:
        return "raise"
    if lo > REVENUE_PIVOT:
        return "cut"
    return None


def _history_view(el: Elasticity) -> str:
    d = _history_direction(el)
    if d == "raise":
        return (f"own history: {el.reason}; the rank reacts less than in proportion to price, so"
                " (if sales scale as 1/BSR) a higher price should raise revenue")
    if d == "cut":
        return (f"own history: {el.reason}; the rank reacts more than in proportion to price, so"
                " (if sales scale as 1/BSR) a lower price should raise revenue")
    if el.usable:
        return (f"own history: {el.reason}; the interval straddles the point where revenue is"
                " flat, so it does not say which way to move")
    return f"own history: no price elasticity estimate ({el.reason})"


@dataclass(slots=True)
class PricingAssessment:
    """The pricing verdict for a product: advice (with its suggestion), hold, or none."""

    status: Literal["advice", "hold", "no_assessment"]
    reason: str
    currency: str | None
    price: float | None
    history: Elasticity
    market: dict[str, Any] | None = None
    suggestion: Suggestion | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "currency": self.currency,
            "price": self.price,
            "history": self.history.to_dict(),
            "market": self.market,
        }


def _market(product: Snapshot, competitors: list[Snapshot]) -> tuple[dict[str, Any] | None, str]:
    """Same-currency comparison (or why there is none) and its sentence."""
    if not competitors:
        return None, "no competitor group, so the price is judged from its own history only"
    split = split_by_currency(product, competitors)
    cur, ours = split.currency, float(product.price or 0.0)
    market: dict[str, Any] = {"currency": cur, "compared": [c.asin for c in split.compared],
                              "left_out": split.left_out}
    if not split.compared:
        unpriced = [x["asin"] for x in split.left_out if x["reason"] == "no price"]
        other = [x for x in split.left_out if x["reason"] != "no price"]
        if not other:  # every rival out of stock or without a featured offer: nothing to read
            return market, ("no competitor has a price today (out of stock or no featured"
                            f" offer: {', '.join(unpriced)}), so there is nothing to compare")
        names = ", ".join(f"{x['asin']} ({x['currency'] or 'unknown'}, amazon.{x['marketplace']})"
                          for x in other)
        return market, (f"cannot compare prices in different currencies: no competitor is"
                        f" priced in {cur or 'a known currency'} ({names})")
    prices = sorted(float(c.price or 0.0) for c in split.compared)
    median = float(statistics.median(prices))
    position = 1 + sum(1 for p in prices if p < ours)
    market.update({
        "median": round(median, 2), "cheapest": prices[0], "highest": prices[-1],
        "premium": round(ours / median - 1.0, 4), "position": position,
        "group_size": len(prices) + 1, "lead": _lead(product, competitors),
        "advantages": feature_advantages(product, split.compared),
        "rival_prices": {c.asin: c.price for c in split.compared},
    })
    text = (f"price {money(ours, cur)} is #{position} of {len(prices) + 1} from cheapest among"
            f" {cur} listings, {ours / median - 1.0:+.0%} vs their median {money(median, cur)}"
            f" (cheapest {money(prices[0], cur)})")
    if split.left_out:
        text += f"; left out: {split.describe_left_out()}"
    return market, text


def _hold_why(market: dict[str, Any] | None) -> str:
    if market is None or "median" not in market:
        return "nothing in the data says to move the price"
    premium = float(market["premium"])
    if premium > PRICE_BAND:
        return "the rating or review lead justifies the premium: keep the price"
    if premium < -PRICE_BAND:
        return "the price is below the median, but without a rating or review lead to ask more"
    return f"the price is within {PRICE_BAND:.0%} of the median: keep it"


def assess_pricing(
    product: Snapshot, competitors: Sequence[Snapshot], history: Sequence[HistoryPoint]
) -> PricingAssessment:
    """The pricing assessment: own history (elasticity) plus, with a group, same-currency
    competitors' prices and feature advantages."""
    el = estimate(history)
    cur = currency_of(product)
    ours = product.price
    comps = [c for c in competitors if c.found and c.asin != product.asin]
    if ours is None or ours <= 0:
        split = split_by_currency(product, comps)
        left = (f"; left out of any comparison: {split.describe_left_out()}"
                if split.left_out else "")
        return PricingAssessment("no_assessment", "the listing shows no price now (out of"
                                 " stock or no featured offer), so there is nothing to price"
                                 + left, cur, None, el)
    market, market_text = _market(product, comps)
    hist_dir, hist_text = _history_direction(el), _history_view(el)
    comparable = market is not None and "median" in market
    parts = [market_text, hist_text]
    low = high = None
    action = why = ""
    impact = 0.4
    if comparable:
        assert market is not None
        median, premium = float(market["median"]), float(market["premium"])
        adv = market["advantages"]
        if premium > PRICE_BAND and not market["lead"]:
            if hist_dir == "raise":
                why = ("the group's median is lower, but the rank barely answers price, so a cut"
                       " would give up margin for little rank: hold the price")
            elif adv:
                # Keep half the premium, or the price of the one rival with the same feature.
                sharing = [market["rival_prices"][a["rivals"][0]] for a in adv if a["rivals"]]
                floor = max([median * (1 + premium / 2), *[p for p in sharing if p]])
                low, high = round(min(floor, ours * 0.97), 2), round(ours * 0.97, 2)
                gives = ", ".join(f"{a['feature']} ({a['label']}"
                                  + (f"; only {a['rivals'][0]} also has it" if a["rivals"]
                                     else "; no competitor has it") + ")" for a in adv)
                action = (f"Trim the price to {money(low, cur)}-{money(high, cur)}, not to the"
                          f" median {money(median, cur)}")
                why = (f"a {premium:+.0%} premium without a rating or review lead, but the"
                       f" listing has what the median rivals lack: {gives}; cutting to the"
                       " median would give that premium up")
            else:
                low, high = round(max(market["cheapest"], median * 0.95), 2), round(median, 2)
                action = (f"Lower the price to {money(low, cur)}-{money(high, cur)}"
                          " (the same-currency median band)")
                why = "no rating or review lead and no feature the rivals lack to justify it"
            impact = min(1.0, premium / 0.3)
        elif premium < -PRICE_BAND and (market["lead"] or hist_dir == "raise"):
            if hist_dir == "cut":
                why = "the price is below the median, but the rank answers price strongly: hold"
            else:
                low, high = round(ours * 1.05, 2), round(min(median, ours * 1.15), 2)
                action = f"Raise the price to {money(low, cur)}-{money(high, cur)}"
                why = ("a rating or review lead" if market["lead"] else
                       "a rank that barely reacts to price") + " supports a higher price"
                impact = min(1.0, -premium / 0.3)
    if low is None and not why and hist_dir is not None:
        step = HISTORY_STEP if hist_dir == "raise" else -HISTORY_STEP
        target = ours * (1 + step)
        low, high = sorted((round(ours * (1 + step / 2), 2), round(target, 2)))
        verb = "Raise" if hist_dir == "raise" else "Lower"
        action = f"{verb} the price to {money(low, cur)}-{money(high, cur)} as a test"
        why = f"the product's own price history points that way ({money(ours, cur)} now)"
    if low is None or high is None:
        if why:
            reason = f"{'; '.join(parts)}; {why}."
            return PricingAssessment("hold", reason, cur, ours, el, market)
        if el.usable or comparable:
            return PricingAssessment("hold", f"{'; '.join(parts)}; {_hold_why(market)}.", cur,
                                     ours, el, market)
        return PricingAssessment("no_assessment", "; ".join(parts) + ".", cur, ours, el, market)
    target = high if low < ours * 0.999 and high < ours else low
    evidence: dict[str, Any] = {
        "currency": cur,
        "price": ours,
        "suggested_range": [low, high],
        "history": el.to_dict(),
        "market": market,
    }
    forecast = ""
    moved = el.bsr_change(target / ours) if el.usable else None
    if moved is not None:
        central, lo_c, hi_c = moved
        evidence["expected_bsr_change"] = round(central, 4)
        evidence["expected_bsr_change_interval"] = [round(lo_c, 4), round(hi_c, 4)]
        forecast = (f"; at {money(target, cur)} the BSR should move by about {central:+.0%}"
                    f" ({lo_c:+.0%} to {hi_c:+.0%})")
    reason = f"{'; '.join(parts)}; {why}{forecast}."
    # A price is one field, but it touches margin: low effort, not zero.
    suggestion = _make("pricing", action + ".", reason, evidence, impact, 0.15)
    return PricingAssessment("advice", reason, cur, ours, el, market, suggestion)


# --------------------------------------------------------------------------- description


def _feature_names(items: Any) -> list[str]:
    out = []
    for it in items or []:
        if isinstance(it, str):
            out.append(it)
        elif isinstance(it, dict):
            name = it.get("feature") or it.get("name") or it.get("term")
            if name:
                out.append(str(name))
    return out


def _top_phrases(counts: Counter[str], keys: set[str], top: int) -> list[str]:
    """Most used first; a word inside an already chosen phrase is not listed again."""
    chosen: list[str] = []
    for k in sorted(keys, key=lambda k: (-counts[k], -k.count(" "), k)):
        words = set(k.split())
        if any(words <= set(c.split()) for c in chosen):
            continue
        chosen = [c for c in chosen if not set(c.split()) <= words] + [k]
        if len(chosen) == top:
            break
    return chosen


def bullet_gaps(
    product: Snapshot, competitors: list[Snapshot], top: int = 5
) -> dict[str, list[str]]:
    """Fallback feature comparison on bullet keywords and phrases: what our bullets say and
    no competitor's title or bullets do, and what >= 2 competitors' bullets say and our
    listing (title, bullets, description) does not."""
    exclude = brand_tokens([product.brand] + [c.brand for c in competitors])
    surface: dict[str, str] = {}
    ours_bullets: Counter[str] = Counter()
    for k, surf in phrases(" | ".join(product.bullet_points), exclude):
        surface.setdefault(k, surf)
    # "HEADER: body" bullets name their selling point in the header; prose bodies mostly
    # yield incidental words, so read headers when most bullets have one.
    heads = [b.split(":", 1)[0] for b in product.bullet_points if 0 < b.find(":") <= 60]
    source = heads if len(heads) * 2 >= len(product.bullet_points) > 0 else product.bullet_points
    for k, _ in phrases(" | ".join(source), exclude):
        ours_bullets[k] += 1
    ours_all = set(surface) | {
        k for k, _ in phrases(f"{product.title or ''}. {product.description or ''}", exclude)
    }
    mentioned: set[str] = set()
    bullet_users: Counter[str] = Counter()
    for c in competitors:
        bullet_terms = phrases(" | ".join(c.bullet_points), exclude)
        for k, surf in bullet_terms:
            surface.setdefault(k, surf)
        bullet_users.update({k for k, _ in bullet_terms})
        mentioned |= {k for k, _ in bullet_terms} | {k for k, _ in phrases(c.title, exclude)}
    # "TRUE CAST IRON HEAT" holds "cast iron", which rivals say too; "true cast" and
    # "iron heat" only straddle it and are no differentiator.
    shared = [k.split() for k in set(ours_bullets) & mentioned if " " in k]
    only_keys = {
        k for k in set(ours_bullets) - mentioned
        if " " not in k
        or not any(k.split()[-1] == sh[0] or k.split()[0] == sh[-1] for sh in shared)
    }
    only = _top_phrases(ours_bullets, only_keys, top)
    missing_keys = {k for k, n in bullet_users.items() if n >= 2 and k not in ours_all}
    # A phrase whose words all appear somewhere in our listing is said, just differently.
    missing_keys = drop_bridges(
        {k for k in missing_keys if not set(k.split()) <= ours_all}, bullet_users
    )
    missing = _top_phrases(bullet_users, missing_keys, top)
    return {"only_main": [surface[k] for k in only], "missing": [surface[k] for k in missing]}


_SENTENCE_RE = re.compile(r"(?<=[.!?。])\s+")
_HEADER_RE = re.compile(r"^[^:\n]{2,60}:\s")


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a sentence end when one is far enough in."""
    if len(text) <= limit:
        return text
    out = ""
    for sent in _SENTENCE_RE.split(text):
        if len(out) + len(sent) + 1 > limit:
            break
        out = f"{out} {sent}".strip()
    return out if len(out) >= limit // 2 else _truncate(text, limit)


def _with_header(bullet: str) -> str:
    """A "30H PLAYTIME: ..." header from the bullet's own first spec, when it has none."""
    if _HEADER_RE.match(bullet):
        return bullet
    found = grounding.spec_surfaces(bullet)
    if not found:
        return bullet
    spec = found[0][1]
    nxt = _NEXT_WORD_RE.match(bullet, bullet.find(spec) + len(spec))
    if nxt and nxt.group(1).lower() not in STOPWORDS and len(nxt.group(1)) >= 3:
        spec = f"{spec} {nxt.group(1)}"
    return f"{spec.upper()}: {bullet[0].upper()}{bullet[1:]}"


def rewrite_bullets(product: Snapshot, lead: Sequence[str] = ()) -> list[str]:
    """Bullets built from the product's own facts only: the current bullets tightened to
    the length sweet spot and headed by their own spec, then description sentences the
    bullets do not already say, grouped into bullets, up to 5; the bullets that state a
    differentiator (`lead`) first. [] when the listing has nothing to build them from."""
    return list(_rewritten_bullets(tuple(product.bullet_points), product.description,
                                   tuple(lead)))


@functools.lru_cache(maxsize=4096)  # the listing's own text: unchanged on most re-runs
def _rewritten_bullets(bullet_points: tuple[str, ...], description: str | None,
                       lead: tuple[str, ...]) -> tuple[str, ...]:
    lo, hi = BULLET_SWEET
    out = [_with_header(_clip(" ".join(b.split()), hi)) for b in bullet_points if b.strip()]
    said = shingles(" ".join(out))
    chunk = ""
    for sent in _SENTENCE_RE.split(" ".join((description or "").split())):
        if len(out) >= BULLET_NORM:
            break
        sh = shingles(sent)
        if not sent or (sh and len(sh & said) * 2 > len(sh)) or len(sent) > hi:
            continue  # said already, or too long to stand as one bullet
        chunk = f"{chunk} {sent}".strip() if len(chunk) + len(sent) < hi else chunk
        if len(chunk) >= lo:
            out.append(_with_header(chunk))
            chunk = ""
    if chunk and len(out) < BULLET_NORM and len(chunk) >= 40:
        out.append(_with_header(chunk))
    lead_words = [set(term.lower().split()) for term in lead]

    def leads(b: str) -> bool:
        low = set(grounding.words(b))
        return any(w and w <= low for w in lead_words)

    return tuple(sorted(out[:BULLET_NORM], key=lambda b: not leads(b)))


def _description_suggestion(
    product: Snapshot,
    competitors: list[Snapshot],
    score: ListingScore,
    feature_gaps: dict[str, Any] | None,
    read_sources: Callable[[], grounding.Sources] | None = None,
) -> Suggestion | None:
    gaps = (
        {
            "only_main": _feature_names(feature_gaps.get("only_main")),
            "missing": _feature_names(feature_gaps.get("missing")),
        }
        if feature_gaps is not None
        else bullet_gaps(product, competitors)
    )
    only, missing = gaps["only_main"], gaps["missing"]
    lost = _lost(score, COPY_RULES)
    # Unstated differentiators and unanswered competitor claims cost conversions the score
    # cannot see: up to 2 and 4 points.
    extra = min(2.0, 0.5 * len(only)) + min(4.0, 1.0 * len(missing))
    if lost < MIN_POINTS and not missing:
        return None
    changes, reasons = [], []
    if only:
        changes.append(f"Lead the bullets with your differentiators: {', '.join(only)}")
        reasons.append(f"{len(only)} feature(s) no competitor states")
    if missing:
        changes.append(
            "If your product has them, answer what competitors state and you do not: "
            + ", ".join(missing)
        )
        reasons.append(f"{len(missing)} feature(s) competitors state that you do not")
    for rid in COPY_RULES:
        r = score.rule(rid)
        if r.applicable and r.score < 1.0:
            changes.append(r.advice.rstrip("."))
            reasons.append(f"{r.name.lower()}: {r.detail} ({r.points:.1f}/{r.weight:.0f} points)")
    bullets = rewrite_bullets(product, only)
    current = [b for b in product.bullet_points if b.strip()]
    src = read_sources() if read_sources else grounding.sources(product, competitors)
    checks = [grounding.check(b, src, " | ".join(current)) for b in bullets]
    bullets = [b for b, g in zip(bullets, checks, strict=True) if g.ok]
    same = [grounding.norm(b) for b in bullets] == [grounding.norm(b) for b in current]
    if bullets and not same:
        changes.append("Rewrite the bullets from the listing's own facts:\n"
                       + "\n".join(f"- {b}" for b in bullets) + "\n")
    elif not bullets:
        reasons.append("no bullets or description to build bullets from: write them from "
                       "the product's specifications")
    evidence = {
        "suggested_bullets": bullets if not same else [],
        "term_sources": grounding.merge_sources(checks),
        "differentiators": only,
        "missing_features": missing,
        "feature_source": "feature_gaps" if feature_gaps is not None else "bullet keywords",
        "bullet_count": len([b for b in product.bullet_points if b.strip()]),
        "description_length": len((product.description or "").strip()),
        "points_lost": round(lost, 2),
    }
    change = ". ".join(c.rstrip(".") if not c.endswith("\n") else c.rstrip() for c in changes)
    change = change if change.endswith((".", ":")) else change + "."
    return _make(
        "description",
        change,
        "; ".join(reasons) + ".",
        evidence,
        (lost + extra) / IMPACT_FULL_POINTS,
        0.5,
    )


# --------------------------------------------------------------------------- images


def _images_suggestion(
    product: Snapshot, competitors: list[Snapshot], score: ListingScore
) -> Suggestion | None:
    lost = _lost(score, IMAGE_RULES)
    if lost < MIN_POINTS:
        return None
    n = image_total(product)
    angles = score.missing_angles
    need_video = product.video_count == 0
    with_video = sum(1 for c in competitors if c.video_count > 0)
    comp_counts = [image_total(c) for c in competitors]
    comp_mean = statistics.fmean(comp_counts) if comp_counts else None
    target = max(7, n + len(angles))
    changes, reasons = [], [f"{n} images"]
    if comp_mean is not None:
        reasons[0] += f" vs the competitors' average {comp_mean:.1f}"
    if angles:
        changes.append(
            f"Add {max(len(angles), target - n)} image(s) ({n} -> {target}) showing: "
            + ", ".join(ANGLE_LABELS[a] for a in angles)
        )
        reasons.append(
            f"{len(angles)} of 6 standard angles not found ({score.rule('image_angles').detail})"
        )
    elif n < 7:
        changes.append(f"Add {7 - n} image(s) ({n} -> 7)")
    if need_video:
        changes.append("Add a 30-60 s product video")
        reasons.append(f"no video; {with_video} of {len(competitors)} competitors have one")
    evidence = {
        "image_count": n,
        "competitor_mean_images": None if comp_mean is None else round(comp_mean, 2),
        "missing_angles": list(angles),
        "video": product.video_count,
        "competitors_with_video": with_video,
        "points_lost": round(lost, 2),
    }
    # A photo shoot costs more per angle; a video more again.
    effort = 0.4 + 0.08 * len(angles) + (0.25 if need_video else 0.0)
    if not changes:
        return None
    return _make(
        "images",
        ". ".join(changes) + ".",
        "; ".join(reasons) + ".",
        evidence,
        lost / IMPACT_FULL_POINTS,
        min(0.95, effort),
    )


# --------------------------------------------------------------------------- entry points


def suggest(
    product: Snapshot,
    competitors: list[Snapshot],
    score: ListingScore,
    history: list[HistoryPoint],
    feature_gaps: dict[str, Any] | None = None,
    pricing: PricingAssessment | None = None,
) -> list[Suggestion]:
    """Every suggestion the data calls for, ranked (priority 1 = do first); ``pricing`` is
    ``assess_pricing``'s answer when the caller already has it."""
    others = [c for c in competitors if c.found and c.asin != product.asin]
    # The title and the bullets are grounded in the same words: read them once, if asked.
    read_sources = functools.cache(lambda: grounding.sources(product, others))
    candidates = [
        _title_suggestion(product, others, score, read_sources),
        (pricing or assess_pricing(product, others, history)).suggestion,
        _description_suggestion(product, others, score, feature_gaps, read_sources),
        _images_suggestion(product, others, score),
    ]
    return rank([s for s in candidates if s is not None])


def unchanged_notes(
    product: Snapshot, score: ListingScore, suggestions: Sequence[Suggestion]
) -> list[str]:
    """What the run leaves alone and the score that shows why: a listing without a title
    or copy suggestion is told so, never handed its own text back."""
    types = {s.type for s in suggestions}
    notes = []
    title_pts = sum(score.rule(r).points for r in TITLE_RULES)
    title_max = sum(score.rule(r).weight for r in TITLE_RULES if score.rule(r).applicable)
    if "title" not in types and is_book(product):
        notes.append("title left as it is: a book's title is the work's name, and search "
                     "phrases of other books' titles do not belong in it")
    elif "title" not in types:
        notes.append(
            f"title left as it is: it scores {title_pts:.1f}/{title_max:.0f} points and no "
            "grounded keyword or own spec is missing from it"
        )
    if "description" not in types:
        copy_pts = sum(score.rule(r).points for r in COPY_RULES)
        copy_max = sum(score.rule(r).weight for r in COPY_RULES if score.rule(r).applicable)
        notes.append(f"bullets and description left as they are: {copy_pts:.1f}/{copy_max:.0f}"
                     " points and no competitor claim unanswered")
    if not suggestions:
        notes.append(f"nothing worth changing: the listing scores {score.total:.1f}/100 "
                     f"(grade {score.grade})")
    return notes


class ListingCopy(BaseModel):
    """What the model may return: copy only, no scores."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=TITLE_MAX)
    bullets: list[Annotated[str, Field(max_length=500)]] = Field(max_length=5)
    description: str


def llm_copy_messages(product: Snapshot, suggestions: Sequence[Suggestion]) -> list[dict[str, str]]:
    """Chat messages asking a model to rewrite the title and bullets along our suggestions."""
    wanted = [
        {"type": s.type, "change": s.change, "reason": s.reason}
        for s in suggestions
        if s.type in ("title", "description")
    ]
    listing = {
        "asin": product.asin,
        "brand": product.brand,
        "title": product.title,
        "bullets": product.bullet_points,
        "description": product.description,
    }
    system = (
        "You write Amazon listing copy. Follow Amazon's style rules: the title starts with "
        f"the brand and has at most {TITLE_MAX} characters (aim for {TITLE_SWEET[0]}-"
        f"{TITLE_SWEET[1]}); no promotional claims (best, #1, sale, free shipping), no "
        "ALL CAPS words, none of the characters ! $ ? _ { } ^ ~. At most 5 bullets of "
        "100-250 characters, one benefit each, leading with what only this product offers. "
        "A description of 500+ characters that does not repeat the bullets. Never invent "
        "features, certifications or numbers that the listing or suggestions do not state. "
        "Reply with one JSON object matching this schema and nothing else:\n"
        + json.dumps(ListingCopy.model_json_schema())
    )
    user = (
        "Current listing:\n"
        + json.dumps(listing, ensure_ascii=False, indent=1)
        + "\n\nApply these suggestions:\n"
        + json.dumps(wanted, ensure_ascii=False, indent=1)
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def title_problems(title: str, brand: str | None) -> list[str]:
    problems = []
    if not title.strip():
        problems.append("empty title")
    if len(title) > TITLE_MAX:
        problems.append(f"title is {len(title)} characters (limit {TITLE_MAX})")
    if brand and not starts_with_brand(title, brand):
        problems.append(f"title does not start with the brand '{brand}'")
    if PROMO_RE.search(title):
        problems.append("promotional wording")
    return problems


def _llm_title(
    s: Suggestion, title: str, src: grounding.Sources, current: str
) -> Suggestion:
    problems = title_problems(title, s.evidence.get("brand"))
    if problems:
        return replace(s, evidence={**s.evidence, "llm_rejected": problems})
    check = grounding.check(title, src, current)
    repaired: list[str] = []
    if not check.ok:
        repaired = check.problems()
        title = grounding.repair_title(title, src, current)
        check = grounding.check(title, src, current)
        again = title_problems(title, s.evidence.get("brand")) if title else ["empty title"]
        if not check.ok or again:
            return replace(s, evidence={**s.evidence, "llm_rejected": repaired + again})
    if grounding.same_text(title, current):
        why = "model title is the current title"
        if repaired:
            why += " once repaired (" + "; ".join(repaired) + ")"
        return replace(s, evidence={**s.evidence, "llm_rejected": [why]})
    evidence = {**s.evidence, "llm_title": title, "term_sources": check.term_sources}
    if repaired:
        evidence["llm_repaired"] = ["dropped ungrounded title segments: " + p for p in repaired]
    change = f'Rewritten title ({len(title)} chars): "{title}"'
    return replace(s, change=change, source="llm", evidence=evidence)


def _repeats(text: str, others: Sequence[str]) -> bool:
    """True when `text` mostly says what `others` already say (4-word shingles)."""
    sh = shingles(text)
    said = shingles(" ".join(others))
    return bool(sh) and len(sh & said) * 2 > len(sh)


def _llm_copy(
    s: Suggestion, copy: ListingCopy, product: Snapshot, src: grounding.Sources
) -> Suggestion:
    current = [b.strip() for b in product.bullet_points if b.strip()]
    notes: list[str] = []
    bullets: list[str] = []
    checks: list[grounding.Grounding] = []
    for b in (b.strip() for b in copy.bullets if b.strip()):
        g = grounding.check(b, src, "")
        if not g.ok:
            fixed = grounding.repair_prose(b, src, "")
            notes.append(f"bullet repaired ({'; '.join(g.problems())})" if fixed
                         else f"bullet dropped ({'; '.join(g.problems())})")
            b = fixed
            g = grounding.check(b, src, "")
        if b and len(b) <= 500:
            bullets.append(b)
            checks.append(g)
    if [grounding.norm(b) for b in bullets] == [grounding.norm(b) for b in current]:
        notes.append("model bullets are the current bullets")
        bullets = []
    description = copy.description.strip()
    if description:
        g = grounding.check(description, src, "")
        if not g.ok:
            notes.append(f"description repaired ({'; '.join(g.problems())})")
            description = grounding.repair_prose(description, src, "")
            g = grounding.check(description, src, "")
        if grounding.same_text(description, product.description):
            notes.append("model description is the current description")
            description = ""
        elif _repeats(description, [product.title or "", *current, *bullets]):
            notes.append("model description repeats the title and bullets")
            description = ""
        else:
            checks.append(g)
    if not bullets and not description:
        return replace(s, evidence={**s.evidence, "llm_rejected": notes or ["no usable copy"]})
    change = ("Bullets:\n" + "\n".join(f"- {b}" for b in bullets) if bullets else "") + (
        ("\n" if bullets else "") + f"Description:\n{description}" if description else "")
    evidence = {**s.evidence, "term_sources": grounding.merge_sources(checks)}
    if notes:
        evidence["llm_repaired"] = notes
    return replace(s, change=change, source="llm", evidence=evidence)


def apply_llm_copy(
    suggestions: Sequence[Suggestion],
    copy: ListingCopy,
    product: Snapshot,
    competitors: Sequence[Snapshot] = (),
) -> list[Suggestion]:
    """Put the model's copy into the title/description suggestions' `change`; scores, order
    and priorities stay as ranked. The copy is held to the rules' title policy and to the
    grounding rule: a draft with ungrounded terms or foreign specs is repaired (the
    offending title segments or sentences dropped) or rejected, so the rules text stays;
    evidence says which and why. Copy that repeats the current listing is never used."""
    src = grounding.sources(product, competitors)
    out = []
    for s in suggestions:
        if s.type == "title":
            out.append(_llm_title(s, copy.title, src, product.title or ""))
        elif s.type == "description":
            out.append(_llm_copy(s, copy, product, src))
        else:
            out.append(s)
    return out

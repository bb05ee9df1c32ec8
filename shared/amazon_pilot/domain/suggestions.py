"""Deterministic, rule-based listing suggestions, ranked by impact over effort.

Each suggestion rests on numbers it carries (`evidence`) and cites (`reason`). An LLM may
rewrite the copy of title and description suggestions (`llm_copy_messages`,
`apply_llm_copy`), but the scoring and the ranking stay ours: the model only writes text,
and text that breaks the title rules is rejected.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from amazon_pilot.domain.currency import currency_of, money, split_by_currency
from amazon_pilot.domain.elasticity import Elasticity, estimate
from amazon_pilot.domain.features import display_name, features_from_snapshot
from amazon_pilot.domain.image_angles import ANGLE_LABELS, image_total
from amazon_pilot.domain.keywords import brand_tokens, drop_bridges, phrases, stem, terms
from amazon_pilot.domain.listing_score import (
    ACRONYMS,
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


def clean_title(title: str, brand: str | None) -> str:
    """The title with promotional wording, banned characters and shouting removed and the
    brand moved to the front."""
    t = PROMO_RE.sub(" ", title)
    t = "".join(" " if c in TITLE_SPECIAL_CHARS else c for c in t)
    for word in caps_words(t, brand):
        t = re.sub(rf"\b{re.escape(word)}\b", word.capitalize(), t)
    if brand and starts_with_brand(t, brand) and t[: len(brand)].lower() == brand.lower():
        t = brand + t[len(brand) :]  # the brand's own casing, not "HYDROPEAK"
    elif brand and not starts_with_brand(t, brand):
        t = re.sub(rf"\b{re.escape(brand)}\b", " ", t, flags=re.IGNORECASE)
        t = f"{brand} {t}"
    t = re.sub(r"\s+", " ", t)
    # Separators left dangling by the removals: ", ," / "- ," / trailing " -".
    t = re.sub(r"\s*([,|-])(\s*[,|-])+", r"\1", t)
    t = re.sub(r"\s+,", ",", t)
    return t.strip(" ,|-")


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,|-")


def rewrite_title(title: str, brand: str | None, add: Sequence[str]) -> tuple[str, list[str]]:
    """Clean the title, then append missing keywords (best first) while it stays within the
    length sweet spot; never over TITLE_MAX. Returns (title, keywords actually added)."""
    t = _truncate(clean_title(title, brand), TITLE_MAX)
    have = {s for s, _ in terms(t)}
    added: list[str] = []
    for kw in _prefer_phrases(add):
        key = [stem(w) for w in kw.split()]
        if all(k in have for k in key):
            continue
        candidate = t + (", " if added else " - ") + _display(kw)
        if len(candidate) > TITLE_SWEET[1]:
            continue  # a shorter keyword further down may still fit
        t = candidate
        added.append(kw)
        have.update(key)
    return t, added


def _title_suggestion(product: Snapshot, score: ListingScore) -> Suggestion | None:
    lost = _lost(score, TITLE_RULES)
    if lost < MIN_POINTS:
        return None
    title = product.title or ""
    new_title, added = rewrite_title(title, product.brand, score.missing_keywords)
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
    change = (
        f"Add keywords: {', '.join(added)}. " if added else ""
    ) + f'Rewritten title ({len(new_title)} chars): "{new_title}"'
    evidence = {
        "brand": product.brand,
        "current_title": title,
        "current_length": len(title),
        "suggested_title": new_title,
        "suggested_length": len(new_title),
        "keywords_added": added,
        "missing_keywords": list(score.missing_keywords),
        "keyword_coverage": coverage,
        "points_lost": round(lost, 2),
    }
    # Title edits are a text field in Seller Central: cheap.
    return _make("title", change, "; ".join(parts) + ".", evidence, lost / IMPACT_FULL_POINTS, 0.2)


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
        names = ", ".join(f"{x['asin']} ({x['currency'] or 'unknown'}, amazon.{x['marketplace']})"
                          for x in split.left_out)
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
    for k, surf in phrases(" ".join(product.bullet_points), exclude):
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
        bullet_terms = phrases(" ".join(c.bullet_points), exclude)
        for k, surf in bullet_terms:
            surface.setdefault(k, surf)
        bullet_users.update({k for k, _ in bullet_terms})
        mentioned |= {k for k, _ in bullet_terms} | {k for k, _ in phrases(c.title, exclude)}
    only = _top_phrases(ours_bullets, set(ours_bullets) - mentioned, top)
    missing_keys = {k for k, n in bullet_users.items() if n >= 2 and k not in ours_all}
    # A phrase whose words all appear somewhere in our listing is said, just differently.
    missing_keys = drop_bridges(
        {k for k in missing_keys if not set(k.split()) <= ours_all}, bullet_users
    )
    missing = _top_phrases(bullet_users, missing_keys, top)
    return {"only_main": [surface[k] for k in only], "missing": [surface[k] for k in missing]}


def _description_suggestion(
    product: Snapshot,
    competitors: list[Snapshot],
    score: ListingScore,
    feature_gaps: dict[str, Any] | None,
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
        changes.append(f"Answer what competitors state and you do not: {', '.join(missing)}")
        reasons.append(f"{len(missing)} feature(s) competitors state that you do not")
    for rid in COPY_RULES:
        r = score.rule(rid)
        if r.applicable and r.score < 1.0:
            changes.append(r.advice.rstrip("."))
            reasons.append(f"{r.name.lower()}: {r.detail} ({r.points:.1f}/{r.weight:.0f} points)")
    evidence = {
        "differentiators": only,
        "missing_features": missing,
        "feature_source": "feature_gaps" if feature_gaps is not None else "bullet keywords",
        "bullet_count": len([b for b in product.bullet_points if b.strip()]),
        "description_length": len((product.description or "").strip()),
        "points_lost": round(lost, 2),
    }
    change = ". ".join(changes) + "."
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
    candidates = [
        _title_suggestion(product, score),
        (pricing or assess_pricing(product, others, history)).suggestion,
        _description_suggestion(product, others, score, feature_gaps),
        _images_suggestion(product, others, score),
    ]
    return rank([s for s in candidates if s is not None])


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


def apply_llm_copy(suggestions: Sequence[Suggestion], copy: ListingCopy) -> list[Suggestion]:
    """Put the model's copy into the title/description suggestions' `change`; scores, order
    and priorities stay as ranked. A title that breaks the rules is rejected (the rules text
    stays, and evidence says why)."""
    out = []
    for s in suggestions:
        if s.type == "title":
            problems = title_problems(copy.title, s.evidence.get("brand"))
            if problems:
                out.append(replace(s, evidence={**s.evidence, "llm_rejected": problems}))
                continue
            change = f'Rewritten title ({len(copy.title)} chars): "{copy.title}"'
            out.append(
                replace(
                    s, change=change, source="llm", evidence={**s.evidence, "llm_title": copy.title}
                )
            )
        elif s.type == "description":
            bullets = [b.strip() for b in copy.bullets if b.strip()]
            if not bullets or len(bullets) > 5 or any(len(b) > 500 for b in bullets):
                out.append(replace(s, evidence={**s.evidence, "llm_rejected": ["bad bullets"]}))
                continue
            change = (
                "Bullets:\n"
                + "\n".join(f"- {b}" for b in bullets)
                + (
                    f"\nDescription:\n{copy.description.strip()}"
                    if copy.description.strip()
                    else ""
                )
            )
            out.append(replace(s, change=change, source="llm"))
        else:
            out.append(s)
    return out

"""Rule-based listing score: every rule is visible with its weight, what it measured and
what would raise it.

The rules follow Amazon's listing style guide (title length and characters, bullets,
images) and what seller tools (ZonGuru, DataHawk) score: keyword match against the
competition, photo count, video, rating band and review-count tier. Pure functions over
Snapshots; no I/O.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from amazon_pilot.domain.currency import money, split_by_currency
from amazon_pilot.domain.image_angles import ANGLE_LABELS, ANGLE_ORDER, image_total, infer_angles
from amazon_pilot.domain.keywords import (
    KEYWORD_MIN_COMPETITORS,
    STOPWORDS,
    brand_tokens,
    covers,
    high_value_keywords,
    shingles,
    terms,
    tokens,
)
from amazon_pilot.domain.snapshot import Snapshot

# rule_id -> weight. They sum to 100, so a weight reads directly as "points at stake".
WEIGHTS: dict[str, float] = {
    "title_length": 8.0,
    "title_structure": 8.0,
    "keyword_coverage": 14.0,
    "bullet_count": 7.0,
    "bullet_length": 7.0,
    "description": 7.0,
    "image_count": 10.0,
    "image_angles": 7.0,
    "video": 5.0,
    "rating": 12.0,
    "review_count": 10.0,
    "price_position": 5.0,
}

RULE_NAMES: dict[str, str] = {
    "title_length": "Title length",
    "title_structure": "Title structure",
    "keyword_coverage": "Keyword coverage in title",
    "bullet_count": "Bullet count",
    "bullet_length": "Bullet length",
    "description": "Description",
    "image_count": "Image count",
    "image_angles": "Image angles",
    "video": "Video",
    "rating": "Rating band",
    "review_count": "Review count",
    "price_position": "Price position",
}

# A rule "passes" at 70% of its points: below that it is worth acting on.
PASS_THRESHOLD = 0.7
GRADES: tuple[tuple[float, str], ...] = ((85.0, "A"), (70.0, "B"), (55.0, "C"))

TITLE_MAX = 200  # Amazon suppresses titles over 200 characters in most categories
TITLE_SWEET = (80, 150)
TITLE_MIN = 40
BULLET_NORM = 5
BULLET_SWEET = (100, 250)
BULLET_MAX = 500
DESCRIPTION_MIN = 500
IMAGES_IDEAL = 7
# Covering 70% of the weighted keywords earns full marks: the rest belongs in bullets.
KEYWORD_COVERAGE_FULL = 0.7


_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-]*")
PROMO_RE = re.compile(
    r"(?<![a-z0-9])(best[- ]?sell(?:er|ing)|top[- ]?(?:rated|seller)|best|#\s*1|no\.\s*1"
    r"|number one|free shipping|free delivery|on sale|hot sale|hot item|sale|cheapest|cheap"
    r"|discount(?:ed)?|deals?|guaranteed|100% satisfaction|limited time)(?![a-z0-9])",
    re.IGNORECASE,
)
# Characters Amazon's title policy rejects (plus "~", common in keyword-stuffed titles).
TITLE_SPECIAL_CHARS = frozenset("!$?_{}^¬¦~")
# All-caps words Amazon accepts: short acronyms and common technical ones.
ACRONYMS = frozenset(
    {
        "HDMI",
        "HEPA",
        "NASA",
        "ANSI",
        "IPX",
        "IPX7",
        "IPX8",
        "QLED",
        "OLED",
        "BPA",
        "USB",
        "LED",
        "LCD",
        "UV",
        "FDA",
        "NSF",
        "RGB",
        "WIFI",
        "XXL",
        "XXXL",
        "PVC",
        "ABS",
        "TPU",
    }
)
_HTML_RE = re.compile(r"<[^>]{1,200}>|&[a-z]{2,6};|&#\d+;")
_URL_RE = re.compile(r"https?://|www\.|\S+@\S+\.\w+")
_REPEAT_RE = re.compile(r"([!?.*#=\-_])\1{2,}|(\w)\2{4,}")
# The same two tests, split so the cheap part answers first (a description is read cold
# once a product): a link needs "://" or "www.", an e-mail address an "@" (the \S+ around
# it backtracks at every word); three punctuation marks in a row are found apart from
# five word characters, and a run of five or more holds a run of exactly five.
_LINK_RE = re.compile(r"https?://|www\.")
_EMAIL_RE = re.compile(r"\S+@\S+\.\w+")
_REPEAT_MARK_RE = re.compile(r"([!?.*#=\-_])\1\1")
_REPEAT_CHAR_RE = re.compile(r"(\w)\1\1\1\1")


def _has_link(text: str) -> bool:
    """_URL_RE.search(text) is not None."""
    if ("://" in text or "www." in text) and _LINK_RE.search(text):
        return True
    return "@" in text and _EMAIL_RE.search(text) is not None


def _has_repeat(text: str) -> bool:
    """_REPEAT_RE.search(text) is not None."""
    return bool(_REPEAT_MARK_RE.search(text) or _REPEAT_CHAR_RE.search(text))


@dataclass(slots=True, frozen=True)
class RuleResult:
    rule_id: str
    name: str
    weight: float
    score: float  # 0..1
    points: float  # weight * score
    passed: bool
    detail: str  # what was measured
    advice: str  # what would raise it; "" when maxed or not applicable
    applicable: bool = True  # False when the data to judge it is missing: left out of the total
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "name": self.name,
            "weight": self.weight,
            "score": round(self.score, 4),
            "points": round(self.points, 3),
            "passed": self.passed,
            "applicable": self.applicable,
            "detail": self.detail,
            "advice": self.advice,
            "evidence": self.evidence,
        }


@dataclass(slots=True, frozen=True)
class Keyword:
    term: str  # display form, as competitors most often write it
    stem: str
    weight: float  # sum of competitor strengths, title mentions count double
    competitors: int  # how many competitors use it
    in_title: bool  # present in our title

    def to_dict(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "weight": round(self.weight, 4),
            "competitors": self.competitors,
            "in_title": self.in_title,
        }


@dataclass(slots=True)
class ListingScore:
    asin: str
    total: float  # 0..100
    grade: str  # A / B / C / D
    rules: list[RuleResult]
    keywords: list[Keyword] = field(default_factory=list)
    missing_keywords: list[str] = field(default_factory=list)  # by weight, best first
    missing_angles: list[str] = field(default_factory=list)  # ANGLE_ORDER ids

    def rule(self, rule_id: str) -> RuleResult:
        for r in self.rules:
            if r.rule_id == rule_id:
                return r
        raise KeyError(rule_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "asin": self.asin,
            "total": round(self.total, 1),
            "grade": self.grade,
            "rules": [r.to_dict() for r in self.rules],
            "keywords": [k.to_dict() for k in self.keywords],
            "missing_keywords": list(self.missing_keywords),
            "missing_angles": list(self.missing_angles),
        }


# --------------------------------------------------------------------------- title checks


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def starts_with_brand(title: str, brand: str) -> bool:
    nb = _norm(brand)
    return bool(nb) and _norm(title).startswith(nb)


def promo_phrases(title: str) -> list[str]:
    return [m.group(0) for m in PROMO_RE.finditer(title)]


def caps_words(title: str, brand: str | None) -> list[str]:
    """Words in ALL CAPS that are not acronyms (short, known, or part of the brand)."""
    skip = {w.upper() for w in _WORD_RE.findall(brand or "")}
    out = []
    for w in _WORD_RE.findall(title):
        if not w.isupper():  # a lower-case letter, or none with a case: not shouting
            continue
        letters = [c for c in w if c.isalpha()]
        if len(letters) < 5 or not all(c.isupper() for c in letters):
            continue
        if w.upper() in skip or w.replace("-", "") in ACRONYMS:
            continue
        out.append(w)
    return out


# --------------------------------------------------------------------------- rules


def _sentence(parts: list[str]) -> str:
    """Join advice fragments into one sentence (str.capitalize would lowercase brands)."""
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _rule(
    rule_id: str,
    score: float,
    detail: str,
    advice: str,
    evidence: dict[str, Any] | None = None,
    applicable: bool = True,
) -> RuleResult:
    weight = WEIGHTS[rule_id]
    score = min(1.0, max(0.0, score)) if applicable else 0.0
    maxed = score >= 0.999 or not applicable
    return RuleResult(
        rule_id=rule_id,
        name=RULE_NAMES[rule_id],
        weight=weight,
        score=score,
        points=weight * score,
        passed=(score >= PASS_THRESHOLD) or not applicable,
        detail=detail,
        advice="" if maxed else advice,
        applicable=applicable,
        evidence=evidence or {},
    )


def _title_length(product: Snapshot) -> RuleResult:
    n = len((product.title or "").strip())
    lo, hi = TITLE_SWEET
    if n == 0:
        score = 0.0
    elif n < TITLE_MIN:
        score = 0.4 * n / TITLE_MIN
    elif n < lo:
        score = 0.6 + 0.4 * (n - TITLE_MIN) / (lo - TITLE_MIN)
    elif n <= hi:
        score = 1.0
    elif n <= TITLE_MAX:
        score = 1.0 - 0.3 * (n - hi) / (TITLE_MAX - hi)
    else:
        score = 0.0  # over the limit: Amazon may suppress the listing
    if n > TITLE_MAX:
        advice = f"Cut the title to at most {TITLE_MAX} characters (ideally {lo}-{hi})."
    elif n > hi:
        advice = f"Trim the title toward {hi} characters; long titles get truncated on mobile."
    else:
        advice = f"Lengthen the title to {lo}-{hi} characters with the key search terms."
    detail = f"title is {n} characters (sweet spot {lo}-{hi}, limit {TITLE_MAX})"
    return _rule("title_length", score, detail, advice, {"length": n})


def _title_structure(product: Snapshot) -> RuleResult:
    title = (product.title or "").strip()
    if not title:
        return _rule(
            "title_structure",
            0.0,
            "no title",
            "Write a title that starts with the brand.",
            {"length": 0},
        )
    brand_ok = starts_with_brand(title, product.brand) if product.brand else None
    caps = caps_words(title, product.brand)
    promo = promo_phrases(title)
    special = sorted({c for c in title if c in TITLE_SPECIAL_CHARS})
    # Brand placement matters most (it anchors the listing); the others share the rest.
    parts = [(0.2, not caps), (0.2, not promo), (0.2, not special)]
    if brand_ok is not None:
        parts.append((0.4, brand_ok))
    score = sum(w for w, ok in parts if ok) / sum(w for w, _ in parts)
    problems, fixes = [], []
    if brand_ok is False:
        problems.append(f"does not start with the brand '{product.brand}'")
        fixes.append(f"start the title with '{product.brand}'")
    if caps:
        problems.append(f"ALL CAPS words {caps}")
        fixes.append("write words in title case")
    if promo:
        problems.append(f"promotional wording {promo}")
        fixes.append("remove promotional claims")
    if special:
        problems.append(f"special characters {special}")
        fixes.append("remove " + " ".join(special))
    brand_note = "brand unknown, not checked" if brand_ok is None else "brand first"
    detail = "; ".join(problems) if problems else f"clean title ({brand_note}, no caps/promo)"
    evidence = {"brand_first": brand_ok, "caps_words": caps, "promo": promo, "special": special}
    return _rule("title_structure", score, detail, _sentence(fixes), evidence)


def _keyword_coverage(
    product: Snapshot,
    competitors: list[Snapshot],
    category_keywords: list[str] | None,
) -> tuple[RuleResult, list[Keyword]]:
    exclude = brand_tokens([product.brand] + [c.brand for c in competitors])
    found = high_value_keywords(competitors, exclude, category_keywords)
    title_stems = {s for s, _ in terms(product.title, frozenset())}
    keywords = [
        Keyword(term=disp, stem=s, weight=w, competitors=n, in_title=covers(s, title_stems))
        for s, disp, w, n in found
    ]
    if not keywords:
        why = (
            f"no term is shared by >= {KEYWORD_MIN_COMPETITORS} competitors"
            if len(competitors) >= KEYWORD_MIN_COMPETITORS
            else f"needs >= {KEYWORD_MIN_COMPETITORS} competitors or category keywords"
        )
        return _rule("keyword_coverage", 0.0, f"not scored: {why}", "", {}, False), []
    total = sum(k.weight for k in keywords)
    covered = sum(k.weight for k in keywords if k.in_title)
    coverage = covered / total if total else 0.0
    missing = [k.term for k in keywords if not k.in_title]
    present = [k.term for k in keywords if k.in_title]
    detail = (
        f"title covers {coverage:.0%} of the weight of {len(keywords)} high-value "
        f"keywords from {len(competitors)} competitors ({len(present)} present)"
    )
    advice = f"Add to the title: {', '.join(missing[:6])}."
    evidence = {"coverage": round(coverage, 4), "present": present, "missing": missing}
    score = coverage / KEYWORD_COVERAGE_FULL
    return _rule("keyword_coverage", score, detail, advice, evidence), keywords


def _bullets(product: Snapshot) -> list[str]:
    return [b.strip() for b in product.bullet_points if b and b.strip()]


def _bullet_count(product: Snapshot) -> RuleResult:
    n = len(_bullets(product))
    score = min(n, BULLET_NORM) / BULLET_NORM
    detail = f"{n} bullet points (norm {BULLET_NORM})"
    advice = f"Add {BULLET_NORM - n} bullet(s): one benefit per bullet, {BULLET_NORM} in all."
    return _rule("bullet_count", score, detail, advice, {"count": n})


def _one_bullet_score(n: int) -> float:
    lo, hi = BULLET_SWEET
    if n < 40:
        return 0.3 * n / 40
    if n < lo:
        return 0.3 + 0.7 * (n - 40) / (lo - 40)
    if n <= hi:
        return 1.0
    if n <= BULLET_MAX:
        return 1.0 - 0.3 * (n - hi) / (BULLET_MAX - hi)
    return 0.0


def _bullet_length(product: Snapshot) -> RuleResult:
    bullets = _bullets(product)
    lo, hi = BULLET_SWEET
    if not bullets:
        return _rule(
            "bullet_length",
            0.0,
            "no bullet points",
            f"Write bullets of {lo}-{hi} characters each.",
            {"lengths": []},
        )
    lengths = [len(b) for b in bullets]
    score = sum(_one_bullet_score(n) for n in lengths) / len(lengths)
    short = [i + 1 for i, n in enumerate(lengths) if n < lo]
    long_ = [i + 1 for i, n in enumerate(lengths) if n > hi]
    detail = f"bullet lengths {lengths} (sweet spot {lo}-{hi}, max {BULLET_MAX})"
    fixes = []
    if short:
        fixes.append(f"expand bullet(s) {short} to at least {lo} characters")
    if long_:
        fixes.append(f"tighten bullet(s) {long_} to at most {hi} characters")
    advice = _sentence(fixes) if fixes else ""
    return _rule("bullet_length", score, detail, advice, {"lengths": lengths})



def description_noise(text: str) -> list[str]:
    """Markup, links, shouting or keyword stuffing left in a description."""
    noise = []
    if _HTML_RE.search(text):
        noise.append("html markup")
    if _has_link(text):
        noise.append("links or emails")
    if _has_repeat(text):
        noise.append("repeated characters")
    letters = list(filter(str.isalpha, text))
    if len(letters) > 50 and sum(map(str.isupper, letters)) / len(letters) > 0.5:
        noise.append("mostly capitals")
    words = tokens(text)
    if len(words) >= 40:
        top = Counter(w for w in words if w not in STOPWORDS).most_common(1)
        if top and top[0][1] / len(words) > 0.08:
            noise.append(f"keyword stuffing ('{top[0][0]}' x{top[0][1]})")
    return noise


@functools.lru_cache(maxsize=4096)  # the listing's own text: unchanged on most re-runs
def _description_reading(text: str, bullets: tuple[str, ...]) -> tuple[float, tuple[str, ...]]:
    """The share of the description's 4-word runs the bullets repeat, and its noise."""
    desc_sh = shingles(text)
    bullet_sh = shingles(" ".join(bullets))
    dup = len(desc_sh & bullet_sh) / len(desc_sh) if desc_sh else 0.0
    return dup, tuple(description_noise(text))


def _description(product: Snapshot) -> RuleResult:
    text = (product.description or "").strip()
    if not text:
        return _rule(
            "description",
            0.0,
            "no description",
            f"Write a description of at least "
            f"{DESCRIPTION_MIN} characters telling the product's story.",
            {"length": 0},
        )
    n = len(text)
    dup, found = _description_reading(text, tuple(_bullets(product)))
    noise = list(found)
    # Length matters most; copying the bullets or leaving markup in costs the rest.
    score = 0.6 * min(1.0, n / DESCRIPTION_MIN) + 0.25 * (1.0 - dup) + 0.15 * (not noise)
    detail = f"{n} characters, {dup:.0%} repeated from bullets" + (
        f", noise: {', '.join(noise)}" if noise else ", clean"
    )
    fixes = []
    if n < DESCRIPTION_MIN:
        fixes.append(f"expand to at least {DESCRIPTION_MIN} characters (now {n})")
    if dup > 0.2:
        fixes.append("say something the bullets do not (use cases, care, story)")
    if noise:
        fixes.append(f"remove {', '.join(noise)}")
    advice = _sentence(fixes) if fixes else ""
    evidence = {"length": n, "duplicate_share": round(dup, 3), "noise": noise}
    return _rule("description", score, detail, advice, evidence)



_IMAGE_SCORES = (0.0, 0.1, 0.2, 0.35, 0.5, 0.65, 0.85, 1.0)


def _image_count(product: Snapshot, competitors: list[Snapshot]) -> RuleResult:
    n = image_total(product)
    score = _IMAGE_SCORES[min(n, IMAGES_IDEAL)]
    comp = [image_total(c) for c in competitors]
    comp_note = f"; competitors average {statistics.fmean(comp):.1f}" if comp else ""
    detail = f"{n} images (ideal >= {IMAGES_IDEAL}, 6 acceptable){comp_note}"
    advice = f"Add {IMAGES_IDEAL - n} image(s) to reach {IMAGES_IDEAL}."
    return _rule("image_count", score, detail, advice, {"count": n})


def _image_angles(product: Snapshot, competitors: list[Snapshot]) -> RuleResult:
    info = infer_angles(product, competitors)
    named = ", ".join(ANGLE_LABELS[a] for a in info["detected"]) or "none"
    if info["status"] != "named":
        # Opaque image URLs say nothing about the shots; the count is scored by image_count.
        detail = (
            f"angles unknown: {info['unknown_images']} of {image_total(product)} images name no "
            f"shot type in their image data (named: {named}); image count is scored on its own"
        )
        return _rule("image_angles", 0.0, detail, "", info, applicable=False)
    missing = info["missing"]
    score = 1.0 - len(missing) / len(ANGLE_ORDER)
    detail = (
        f"{len(ANGLE_ORDER) - len(missing)}/{len(ANGLE_ORDER)} angles shown, every image named "
        f"in its image data ({named})"
        # Without competitors there is no average to cite ("competitors average 0.0").
        + (f"; competitors average {info['competitor_mean_images']} images" if competitors
           else "")
    )
    advice = "Add images showing: " + ", ".join(ANGLE_LABELS[a] for a in missing) + "."
    return _rule("image_angles", score, detail, advice, info)


def _video(product: Snapshot, competitors: list[Snapshot]) -> RuleResult:
    with_video = sum(1 for c in competitors if c.video_count > 0)
    comp_note = f"; {with_video}/{len(competitors)} competitors have one" if competitors else ""
    has = product.video_count > 0
    detail = f"{product.video_count} video(s){comp_note}"
    advice = "Add a product video (30-60 s showing the product in use)."
    evidence = {"videos": product.video_count, "competitors_with_video": with_video}
    return _rule("video", 1.0 if has else 0.0, detail, advice, evidence)


def rating_band(rating: float) -> tuple[str, float]:
    if rating >= 4.5:
        return ">=4.5", 1.0
    if rating >= 4.0:
        return "4.0-4.4", 0.75
    if rating >= 3.5:
        return "3.5-3.9", 0.45
    return "<3.5", 0.15


def _rating(product: Snapshot, competitors: list[Snapshot]) -> RuleResult:
    if product.rating is None:
        return _rule("rating", 0.0, "not scored: no rating yet", "", {}, False)
    band, score = rating_band(product.rating)
    comp = [c.rating for c in competitors if c.rating is not None]
    comp_note = f"; competitors' median {statistics.median(comp):.1f}" if comp else ""
    detail = f"rating {product.rating:.1f} in band {band}{comp_note}"
    advice = (
        "Raise the rating: fix the top complaints in 1-3 star reviews, clarify the listing "
        "where expectations miss, and follow up with buyers (Request a Review)."
    )
    return _rule("rating", score, detail, advice, {"rating": product.rating, "band": band})


REVIEW_TIERS: tuple[tuple[int, float, str], ...] = (
    (0, 0.0, "0"),
    (49, 0.25, "<50"),
    (499, 0.5, "<500"),
    (4999, 0.75, "<5000"),
)


def review_tier(count: int) -> tuple[str, float]:
    for upper, score, label in REVIEW_TIERS:
        if count <= upper:
            return label, score
    return ">=5000", 1.0


def _review_count(product: Snapshot, competitors: list[Snapshot]) -> RuleResult:
    if product.review_count is None:
        return _rule("review_count", 0.0, "not scored: review count unknown", "", {}, False)
    n = product.review_count
    tier, absolute = review_tier(n)
    comp = [c.review_count for c in competitors if c.review_count is not None]
    evidence: dict[str, Any] = {"reviews": n, "tier": tier}
    if comp:
        med = statistics.median(comp)
        # Log ratio: 100 vs 1,000 reviews is as far behind as 1,000 vs 10,000.
        relative = 1.0 if med <= 0 else min(1.0, math.log1p(n) / math.log1p(med))
        score = 0.5 * absolute + 0.5 * relative
        detail = f"{n} reviews (tier {tier}); competitors' median {med:.0f}"
        evidence["competitor_median"] = med
    else:
        score = absolute
        detail = f"{n} reviews (tier {tier}); no competitor counts"
    advice = "Grow reviews: Amazon Vine for new listings, Request a Review on every order."
    return _rule("review_count", score, detail, advice, evidence)


def _has_lead(product: Snapshot, competitors: list[Snapshot]) -> bool:
    ratings = [c.rating for c in competitors if c.rating is not None]
    reviews = [c.review_count for c in competitors if c.review_count is not None]
    rating_lead = product.rating is not None and bool(ratings) and product.rating >= max(ratings)
    review_lead = (
        product.review_count is not None and bool(reviews) and product.review_count >= max(reviews)
    )
    return rating_lead or review_lead


def _price_position(product: Snapshot, competitors: list[Snapshot]) -> RuleResult:
    # Only same-currency competitors are ranked against; the others are named, not converted.
    split = split_by_currency(product, competitors)
    cur = split.currency
    if product.price is None or product.price <= 0:
        return _rule("price_position", 0.0, "not scored: the listing shows no price", "", {},
                     False)
    if not split.compared:
        why = (f"not scored: cannot compare prices in different currencies ({cur} vs "
               + ", ".join(f"{x['asin']} {x['currency']}" for x in split.left_out) + ")"
               if split.left_out else "not scored: no competitor price to compare")
        shown: dict[str, Any] = ({"currency": cur, "left_out": split.left_out}
                                 if split.left_out else {})
        return _rule("price_position", 0.0, why, "", shown, False)
    prices = [float(c.price or 0.0) for c in split.compared]
    med = statistics.median(prices)
    premium = product.price / med - 1.0
    highest = product.price > max(prices)
    lead = _has_lead(product, competitors)
    if lead or premium <= 0.2:
        score = 1.0
    elif highest:
        score = 0.2
    else:
        score = 0.6
    rank = 1 + sum(1 for p in prices if p < product.price)
    detail = (
        f"price {money(product.price, cur)} is #{rank} of {len(prices) + 1} from cheapest, "
        f"{premium:+.0%} vs median {money(med, cur)}"
        + ("; rating or review lead justifies it" if lead else "; no rating or review lead")
        + (f"; left out: {split.describe_left_out()}" if split.left_out else "")
    )
    advice = f"Without a rating or review lead, price near the median ({money(med, cur)})."
    evidence: dict[str, Any] = {
        "currency": cur,
        "left_out": split.left_out,
        "price": product.price,
        "median": med,
        "cheapest": min(prices),
        "premium": round(premium, 4),
        "highest": highest,
        "lead": lead,
    }
    return _rule("price_position", score, detail, advice, evidence)


def grade_for(total: float) -> str:
    for floor, grade in GRADES:
        if total >= floor:
            return grade
    return "D"


def score_listing(
    product: Snapshot,
    competitors: list[Snapshot],
    category_keywords: list[str] | None = None,
) -> ListingScore:
    """Score one listing against its competitors (0..100 with grade and per-rule detail).

    Rules whose inputs are unknown (no rating yet, no prices to compare...) are marked not
    applicable and left out of both sides of sum(points) / sum(weights).
    """
    others = [c for c in competitors if c.found and c.asin != product.asin]
    kw_rule, keywords = _keyword_coverage(product, others, category_keywords)
    angles = _image_angles(product, others)
    rules = [
        _title_length(product),
        _title_structure(product),
        kw_rule,
        _bullet_count(product),
        _bullet_length(product),
        _description(product),
        _image_count(product, others),
        angles,
        _video(product, others),
        _rating(product, others),
        _review_count(product, others),
        _price_position(product, others),
    ]
    applicable = [r for r in rules if r.applicable]
    weight = sum(r.weight for r in applicable)
    total = 100.0 * sum(r.points for r in applicable) / weight if weight else 0.0
    return ListingScore(
        asin=product.asin,
        total=total,
        grade=grade_for(total),
        rules=rules,
        keywords=keywords,
        missing_keywords=[k.term for k in keywords if not k.in_title],
        missing_angles=list(angles.evidence.get("missing", [])),
    )

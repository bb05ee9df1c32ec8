"""Rule-based suggestions: each type when the data calls for it, ranking, LLM copy guard."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from amazon_pilot.domain.listing_score import score_listing
from amazon_pilot.domain.snapshot import HistoryPoint, Snapshot
from amazon_pilot.domain.suggestions import (
    ListingCopy,
    Suggestion,
    apply_llm_copy,
    llm_copy_messages,
    rank,
    rewrite_title,
    suggest,
)

IMG = "https://m.media-amazon.com/images/I/{}._AC_SL1500_.jpg"

BULLETS = [
    "TRUE CAST IRON HEAT: the 5 mm base holds heat for searing steaks, so a cold ribeye does "
    "not drop the pan below 400 degrees the moment it lands.",
    "PRE-SEASONED WITH FLAXSEED OIL: three oven-baked coats give a slick surface out of the "
    "box; cornbread releases on the first bake without extra butter.",
    "HELPER HANDLE AND POUR SPOUTS: a second handle and two spouts make a 7 lb skillet "
    "easy to lift out of the oven and drain without a splash.",
    "OVEN, GRILL AND CAMPFIRE SAFE: no plastic or wood parts, so the skillet goes from "
    "induction hob to a 500 degree oven to the coals of a campfire.",
    "MADE TO OUTLAST YOU: a lifetime warranty covers cracks and warping; re-season it with any "
    "cooking oil and it keeps getting better with use.",
]

DESCRIPTION = (
    "Emberline skillets are poured in a single piece in a foundry that has cast iron since "
    "1921. After casting, each pan is machined smooth on the cooking surface, which is why "
    "eggs slide on it once the seasoning builds. We season with flaxseed oil in three thin "
    "coats at 450 degrees rather than spraying one thick layer, so there is nothing to flake "
    "into your food. Use it for a weeknight smash burger, a Sunday dutch baby, or a skillet "
    "cookie on a camping trip. To clean, rinse with hot water and a brush while it is warm, "
    "dry it on the burner, and wipe on a drop of oil. If it ever rusts, scrub it back and "
    "re-season: cast iron forgives."
)


def product(**changes: object) -> Snapshot:
    base = Snapshot(
        asin="B0EMBER012",
        brand="Emberline",
        title=(
            "Emberline Cast Iron Skillet 12 Inch, Pre-Seasoned Frying Pan with Helper Handle "
            "and Pour Spouts, Oven Safe, Induction Compatible"
        ),
        price=39.99,
        currency="USD",
        rating=4.7,
        review_count=6120,
        bsr_rank=410,
        bullet_points=list(BULLETS),
        description=DESCRIPTION,
        image_urls=[IMG.format(f"81em{i}") for i in range(8)],
        image_count=8,
        video_count=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def rivals() -> list[Snapshot]:
    specs = [
        ("B0FORGE001", "Forgewell", 34.99, 4.6, 21800, 150, 9, 1),
        ("B0HEARTH02", "Hearthstone", 36.50, 4.5, 5400, 880, 7, 1),
        ("B0CAMPC003", "CampChef Pro", 42.00, 4.4, 3100, 2400, 8, 0),
        ("B0IRONW004", "Ironwood", 38.00, 4.3, 1450, 6100, 6, 0),
    ]
    out = []
    for asin, brand, price, rating, reviews, bsr, images, video in specs:
        out.append(
            Snapshot(
                asin=asin,
                brand=brand,
                title=f"{brand} Cast Iron Skillet 12 Inch, Pre-Seasoned Frying Pan, Oven Safe, "
                "Induction Compatible, Helper Handle",
                price=price,
                rating=rating,
                review_count=reviews,
                bsr_rank=bsr,
                bullet_points=[
                    "Pre-seasoned cast iron skillet, ready to use.",
                    "Easy care: rinse, dry, oil. Non-toxic and PFAS free.",
                    "Even heat distribution for searing, baking and frying.",
                ],
                image_count=images,
                video_count=video,
            )
        )
    return out


def history(changes: dict[int, float], bsr_by_day: dict[int, int], days: int = 60) -> list:
    t0 = datetime(2026, 3, 1, 14, 30)
    price, bsr, points = 39.99, 400, []
    for d in range(days):
        price = changes.get(d, price)
        bsr = bsr_by_day.get(d, bsr)
        points.append(HistoryPoint(captured_at=t0 + timedelta(days=d), price=price, bsr_rank=bsr))
    return points


def run(p: Snapshot, hist: list | None = None, gaps: dict | None = None) -> list[Suggestion]:
    comps = rivals()
    return suggest(p, comps, score_listing(p, comps), hist or [], gaps)


def by_type(items: list[Suggestion]) -> dict[str, Suggestion]:
    return {s.type: s for s in items}


def test_optimized_listing_needs_little() -> None:
    got = by_type(run(product()))
    assert "images" not in got and "pricing" not in got
    # A clean title that already carries the market's title phrases: nothing to change,
    # and no suggestion that repeats the current title.
    assert "title" not in got


def test_title_suggestion_adds_keywords_and_keeps_brand_first() -> None:
    p = product(title="Skillet by EMBERLINE - BEST Frying Pan!!")
    s = by_type(run(p))["title"]
    new_title = s.evidence["suggested_title"]
    assert new_title.startswith("Emberline ")
    assert len(new_title) <= 200
    assert "!" not in new_title and "BEST" not in new_title
    for kw in ("cast iron", "oven safe", "induction compatible"):
        assert kw in s.evidence["keywords_added"]
        assert kw in new_title.lower()
    assert f"Rewritten title ({len(new_title)} chars)" in s.change
    # The reason carries the numbers: points, coverage, length.
    assert "/30 points" in s.reason and "% of the weight" in s.reason
    assert f"title is {len(p.title or '')} characters" in s.reason
    assert s.impact == "high" and s.effort == "low"


def test_rewrite_title_stays_within_limit() -> None:
    long_title = "Emberline " + "Cast Iron Skillet Frying Pan Oven Safe " * 8
    title, added = rewrite_title(long_title, "Emberline", ["campfire cookware"])
    assert len(title) <= 200 and title.startswith("Emberline")
    assert added == []  # no room left within the sweet spot


def test_description_suggestion_from_feature_gaps() -> None:
    gaps = {
        "only_main": ["flaxseed seasoning", "pour spouts"],
        "missing": ["PFAS free", {"feature": "even heat distribution"}],
    }
    p = product(bullet_points=BULLETS[:3], description="Great skillet.")
    s = by_type(run(p, gaps=gaps))["description"]
    assert "differentiators: flaxseed seasoning, pour spouts" in s.change
    assert "PFAS free, even heat distribution" in s.change
    assert "Add 2 bullet" in s.change and "at least 500 characters (now 14)" in s.change
    assert "3 bullet points" in s.reason and "14 characters" in s.reason
    assert s.evidence["feature_source"] == "feature_gaps"


def test_description_suggestion_falls_back_to_bullet_keywords() -> None:
    s = by_type(run(product()))["description"]
    assert s.evidence["feature_source"] == "bullet keywords"
    assert "pfas free" in s.evidence["missing_features"]
    assert "heat distribution" in s.evidence["missing_features"]
    assert {"flaxseed oil", "pour spouts", "campfire safe"} <= set(s.evidence["differentiators"])
    # Fragments of "TRUE CAST IRON HEAT" around the shared "cast iron" are no differentiator.
    assert not {"true cast", "iron heat"} & set(s.evidence["differentiators"])


def test_images_suggestion_lists_angles_and_video() -> None:
    p = product(image_urls=[IMG.format(f"a{i}") for i in range(4)], image_count=4, video_count=0)
    s = by_type(run(p))["images"]
    # Opaque image URLs: no angle is claimed missing, the advice is about the count.
    assert s.evidence["missing_angles"] == []
    assert "(4 -> 7)" in s.change and "showing" not in s.change and "video" in s.change
    assert "4 images vs the competitors' average 7.5" in s.reason
    assert "2 of 4 competitors have one" in s.reason
    assert s.effort == "high"


def _s(type_: str, impact: float, effort: float, change: str = "x") -> Suggestion:
    return Suggestion(
        type=type_,  # type: ignore[arg-type]
        change=change,
        reason="r",
        evidence={},
        impact="low",
        impact_score=impact,
        effort="low",
        effort_score=effort,
    )


def test_rank_orders_by_impact_over_effort_deterministically() -> None:
    items = [
        _s("images", 0.9, 0.9),  # ratio 1.0
        _s("title", 0.6, 0.2),  # ratio 3.0
        _s("description", 0.8, 0.5),  # ratio 1.6
        _s("pricing", 0.3, 0.1),  # ratio 3.0, lower impact than title
        _s("description", 0.5, 0.5, "b"),  # ratio 1.0, ties with images: lower impact
    ]
    expected = [
        ("title", 0.6),
        ("pricing", 0.3),
        ("description", 0.8),
        ("images", 0.9),
        ("description", 0.5),
    ]
    for seed in range(5):
        shuffled = items[:]
        random.Random(seed).shuffle(shuffled)
        ranked = rank(shuffled)
        assert [(s.type, s.impact_score) for s in ranked] == expected
        assert [s.priority for s in ranked] == [1, 2, 3, 4, 5]
    assert all(s.priority == 0 for s in items)  # inputs untouched


def test_rank_tie_broken_by_type_order() -> None:
    ranked = rank([_s("images", 0.5, 0.5), _s("title", 0.5, 0.5), _s("pricing", 0.5, 0.5)])
    assert [s.type for s in ranked] == ["pricing", "title", "images"]


def test_suggest_returns_ranked_json_ready_output() -> None:
    p = product(
        title="Skillet by EMBERLINE - BEST Frying Pan!!",
        price=47.99,
        rating=4.4,
        review_count=1200,
        image_count=4,
        image_urls=[],
        video_count=0,
    )
    got = run(p)
    assert {s.type for s in got} == {"title", "pricing", "description", "images"}
    assert [s.priority for s in got] == list(range(1, len(got) + 1))
    ratios = [s.impact_score / max(s.effort_score, 0.05) for s in got]
    assert ratios == sorted(ratios, reverse=True)
    payload = [s.to_dict() for s in got]
    assert json.loads(json.dumps(payload)) == payload
    assert all(d["source"] == "rules" for d in payload)


WEAK = product(title="Skillet by EMBERLINE - BEST Frying Pan!!", description="Great.")


def _weak_listing_suggestions() -> list[Suggestion]:
    return run(WEAK)


def test_llm_copy_messages_carry_listing_and_suggestions() -> None:
    p = product(title="Skillet by EMBERLINE - BEST Frying Pan!!")
    msgs = llm_copy_messages(p, run(p))
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "200 characters" in msgs[0]["content"] and '"title"' in msgs[0]["content"]
    assert "Skillet by EMBERLINE" in msgs[1]["content"]
    assert "Rewritten title" in msgs[1]["content"]
    assert '"type": "images"' not in msgs[1]["content"]


def test_apply_llm_copy_fills_text_and_keeps_ranking() -> None:
    before = _weak_listing_suggestions()
    title = (
        "Emberline Cast Iron Skillet, Pre-Seasoned Frying Pan with Helper Handle, Oven "
        "Safe and Induction Compatible"
    )
    copy = ListingCopy(title=title, bullets=BULLETS[::-1], description=DESCRIPTION)
    after = apply_llm_copy(before, copy, WEAK, rivals())
    assert [(s.type, s.priority, s.impact_score, s.effort_score) for s in after] == [
        (s.type, s.priority, s.impact_score, s.effort_score) for s in before
    ]
    got = by_type(after)
    assert got["title"].source == "llm" and title in got["title"].change
    assert got["description"].source == "llm" and BULLETS[0] in got["description"].change
    assert got["title"].evidence["term_sources"]["iron"] == "own bullets"
    for t in ("pricing", "images"):
        if t in got:
            assert got[t].source == "rules"


def test_apply_llm_copy_rejects_long_or_brandless_title() -> None:
    before = _weak_listing_suggestions()
    rules_change = by_type(before)["title"].change
    too_long = ListingCopy.model_construct(
        title="Emberline " + "Cast Iron Skillet " * 12, bullets=BULLETS, description=DESCRIPTION
    )
    got = by_type(apply_llm_copy(before, too_long, WEAK, rivals()))["title"]
    assert got.change == rules_change and got.source == "rules"
    assert "limit 200" in got.evidence["llm_rejected"][0]
    no_brand = ListingCopy(title="Cast Iron Skillet 12 Inch", bullets=[], description="")
    got = by_type(apply_llm_copy(before, no_brand, WEAK, rivals()))["title"]
    assert got.change == rules_change
    assert "brand" in got.evidence["llm_rejected"][0]


def test_listing_copy_schema_is_strict() -> None:
    with pytest.raises(ValidationError):
        ListingCopy(title="x" * 201, bullets=[], description="")
    with pytest.raises(ValidationError):
        ListingCopy(title="ok", bullets=["b"] * 6, description="")
    with pytest.raises(ValidationError):
        ListingCopy(title="ok", bullets=["b" * 501], description="")
    with pytest.raises(ValidationError):
        ListingCopy.model_validate({"title": "ok", "bullets": [], "description": "", "score": 99})


def test_apply_llm_copy_holds_the_model_to_the_grounding_rule() -> None:
    before = _weak_listing_suggestions()
    rules_title = by_type(before)["title"]
    # "12 Inch" is not stated by this listing; "Lifetime Nonstick Coating" by nobody.
    drafted = ListingCopy(
        title="Emberline Cast Iron Skillet, Oven Safe, 12 Inch, Lifetime Nonstick Coating",
        bullets=[*BULLETS[:2], "Rated 5 stars by chefs. It holds 2 quarts."],
        description=f"{BULLETS[0]} {BULLETS[1]} {WEAK.title}",
    )
    got = by_type(apply_llm_copy(before, drafted, WEAK, rivals()))
    title = got["title"]
    assert title.source == "llm"
    assert title.evidence["llm_title"] == "Emberline Cast Iron Skillet, Oven Safe"
    assert any("12 Inch" in r for r in title.evidence["llm_repaired"])
    desc = got["description"]
    assert "quarts" not in desc.change and "chefs" not in desc.change
    # The description that only repeats the bullets and title is not used.
    assert "Description:" not in desc.change
    assert "model description repeats the title and bullets" in desc.evidence["llm_repaired"]
    # A draft that is the current listing is no suggestion at all.
    same = ListingCopy(title=WEAK.title or "", bullets=list(WEAK.bullet_points),
                       description=WEAK.description or "")
    got = by_type(apply_llm_copy(before, same, WEAK, rivals()))
    assert got["title"].change == rules_title.change and got["title"].source == "rules"
    assert got["description"].source == "rules"

"""Listing score rules on hand-built listings (an insulated water bottle and its rivals)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from amazon_pilot.domain.image_angles import ANGLE_ORDER
from amazon_pilot.domain.listing_score import (
    WEIGHTS,
    ListingScore,
    grade_for,
    score_listing,
)
from amazon_pilot.domain.snapshot import Availability, Snapshot

IMG = "https://m.media-amazon.com/images/I/{}._AC_SL1500_.jpg"

GOOD_BULLETS = [
    "ALL-DAY TEMPERATURE CONTROL: double wall vacuum insulation keeps water ice cold for 24 "
    "hours and coffee hot for 12, so the first sip at 5 pm tastes like the one at 8 am.",
    "LEAK PROOF STRAW LID: the twist-lock straw lid seals with a silicone gasket, so the "
    "bottle can ride sideways in a backpack next to a laptop without a drop escaping.",
    "18/8 STAINLESS STEEL, BPA-FREE: food-grade steel inside and out with no plastic "
    "touching your drink; no metallic taste and no lingering smell from yesterday's tea.",
    "FITS CUP HOLDERS: the 32 oz body tapers to 2.9 inches at the base and slips into most "
    "car cup holders, gym bag pockets and bike cages while still holding a full liter.",
    "DISHWASHER SAFE POWDER COAT: the sweat-free powder coat grips in wet hands, survives "
    "the top rack, and comes with a 30-day no-questions return and a lifetime warranty.",
]

GOOD_DESCRIPTION = (
    "We started HydroPeak after one too many trail days with lukewarm water. Every bottle is "
    "tested on the same 40 km loop in July before a design ships: if the ice is gone by the "
    "summit, it goes back to the workshop. The wide mouth takes standard ice cubes and a "
    "bottle brush, and the lid comes apart into three pieces so nothing hides under the "
    "gasket. Choose the straw lid for the gym and the desk, or pick up the chug cap and the "
    "flip lid separately; all three fit every 32 oz body. The finish is applied in four thin "
    "coats rather than one thick one, which is why it does not chip when the bottle is dropped "
    "on a rocky trail. Rinse it after a smoothie, run it through the dishwasher once a week, "
    "and it will outlast the backpack you carry it in."
)


def good_product(**changes: object) -> Snapshot:
    base = Snapshot(
        asin="B0HYDRO001",
        title=(
            "HydroPeak Insulated Water Bottle 32 oz with Straw Lid, Stainless Steel Vacuum "
            "Double Wall, Leak Proof, BPA-Free, Cold 24 Hours"
        ),
        brand="HydroPeak",
        price=29.99,
        currency="USD",
        availability=Availability.IN_STOCK,
        rating=4.7,
        review_count=8214,
        bsr_rank=812,
        bullet_points=list(GOOD_BULLETS),
        description=GOOD_DESCRIPTION,
        image_urls=[IMG.format(f"71hp{i}x") for i in range(8)],
        image_count=8,
        video_count=2,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def competitors() -> list[Snapshot]:
    return [
        Snapshot(
            asin="B0AQUA0001",
            brand="AquaVault",
            title="AquaVault Insulated Water Bottle with Straw Lid, 32 oz Stainless Steel "
            "Vacuum Flask, Leak Proof, Keeps Cold 24 Hours",
            price=27.99,
            rating=4.6,
            review_count=15320,
            bsr_rank=240,
            bullet_points=[
                "Vacuum insulated stainless steel keeps drinks cold for 24 hours.",
                "Leak proof straw lid with a carry handle.",
                "BPA-free and dishwasher safe lid.",
            ],
            image_count=9,
            video_count=1,
        ),
        Snapshot(
            asin="B0TRAIL002",
            brand="TrailSip",
            title="TrailSip 32 oz Insulated Water Bottle, Double Wall Vacuum Stainless Steel, "
            "Leak Proof Straw Lid, BPA-Free Sports Bottle",
            price=24.99,
            rating=4.5,
            review_count=4210,
            bsr_rank=1530,
            bullet_points=[
                "Double wall vacuum insulation: cold for 24 hours, hot for 12.",
                "Straw lid is leak proof and easy to clean.",
                "Fits most cup holders.",
            ],
            image_count=7,
            video_count=1,
        ),
        Snapshot(
            asin="B0THERM003",
            brand="Thermora",
            title="Thermora Stainless Steel Water Bottle 32 oz, Vacuum Insulated, Wide Mouth "
            "with Straw Lid, Cup Holder Friendly",
            price=32.99,
            rating=4.4,
            review_count=2105,
            bsr_rank=3900,
            bullet_points=[
                "Insulated stainless steel keeps water cold.",
                "BPA-free straw lid, leak proof.",
                "Powder coat finish, dishwasher safe.",
            ],
            image_count=8,
            video_count=0,
        ),
        Snapshot(
            asin="B0KINET004",
            brand="Kinetic Outdoors",
            title="Kinetic Outdoors Insulated Water Bottle 32 oz, Leak Proof Stainless Steel "
            "Bottle with Straw, Double Wall Vacuum",
            price=29.95,
            rating=4.3,
            review_count=980,
            bsr_rank=9800,
            bullet_points=["Stainless steel, vacuum insulated, leak proof lid."],
            image_count=6,
            video_count=0,
        ),
    ]


def score(product: Snapshot | None = None, comps: list[Snapshot] | None = None) -> ListingScore:
    return score_listing(product or good_product(), competitors() if comps is None else comps)


def test_weights_table_is_visible_and_sums_to_100() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(100.0)
    result = score()
    assert [r.rule_id for r in result.rules] == list(WEIGHTS)
    for r in result.rules:
        assert r.weight == WEIGHTS[r.rule_id]
        assert r.points == pytest.approx(r.weight * r.score)


def test_well_optimized_listing_scores_high_with_every_rule_visible() -> None:
    result = score()
    assert result.grade == "A"
    assert result.total >= 90
    for r in result.rules:
        # Opaque CDN image URLs name no shot type: the angles are unknown, not scored.
        assert r.applicable or r.rule_id == "image_angles", r.rule_id
        assert r.passed, (r.rule_id, r.detail)
        assert r.detail
        if r.score >= 0.999:
            assert r.advice == ""
    assert result.rule("title_length").score == 1.0
    assert result.rule("title_structure").score == 1.0
    assert result.rule("keyword_coverage").score == 1.0
    payload = result.to_dict()
    assert json.loads(json.dumps(payload)) == payload
    assert {r["rule_id"] for r in payload["rules"]} == set(WEIGHTS)
    assert payload["total"] == round(result.total, 1)


@pytest.mark.parametrize(
    ("title", "low", "high", "advice_word"),
    [
        ("HydroPeak Bottle 32 oz", 0.0, 0.3, "Lengthen"),
        ("HydroPeak Insulated Water Bottle 32 oz Stainless Steel", 0.6, 0.9, "Lengthen"),
        ("HydroPeak " + "Insulated Water Bottle with Straw Lid, " * 4, 0.7, 0.95, "Trim"),
        ("HydroPeak " + "Insulated Water Bottle with Straw Lid, " * 6, 0.0, 0.0, "Cut"),
    ],
)
def test_title_length_rule(title: str, low: float, high: float, advice_word: str) -> None:
    rule = score(good_product(title=title)).rule("title_length")
    assert low <= rule.score <= high
    assert f"title is {len(title.strip())} characters" in rule.detail
    assert rule.advice.startswith(advice_word)


def test_title_structure_flags_brand_caps_promo_and_special_chars() -> None:
    bad = "BEST Insulated Water Bottle by HydroPeak!! 32 oz STAINLESS Steel - #1 Free Shipping $"
    result = score(good_product(title=bad))
    rule = result.rule("title_structure")
    assert rule.score == 0.0
    assert rule.evidence["brand_first"] is False
    assert "STAINLESS" in rule.evidence["caps_words"]
    assert {"BEST", "#1", "Free Shipping"} <= set(rule.evidence["promo"])
    assert set(rule.evidence["special"]) == {"!", "$"}
    assert "HydroPeak" in rule.advice and "remove" in rule.advice
    # Acronyms and an all-caps brand are not shouting.
    ok = score(good_product(title="HYDROPEAK Insulated Water Bottle 32 oz, BPA-Free, USB LED Cap"))
    assert ok.rule("title_structure").evidence["caps_words"] == []


def test_title_structure_only_brand_misplaced_costs_brand_share() -> None:
    title = (
        "Insulated Water Bottle 32 oz with Straw Lid by HydroPeak, Stainless Steel Vacuum "
        "Double Wall, Leak Proof"
    )
    rule = score(good_product(title=title)).rule("title_structure")
    assert rule.score == pytest.approx(0.6)
    assert "does not start with the brand" in rule.detail


def test_keyword_coverage_finds_missing_high_value_terms() -> None:
    result = score(good_product(title="HydroPeak Water Bottle 32 oz for Gym, Office and Travel"))
    rule = result.rule("keyword_coverage")
    assert rule.score < 0.5
    for term in ("insulated", "stainless steel", "vacuum", "leak proof", "straw lid"):
        assert term in result.missing_keywords
    assert "water bottle" not in result.missing_keywords  # present in our title
    assert "Add to the title" in rule.advice
    # Brand names never become keywords, even when two competitors mention them.
    assert not {"aquavault", "trailsip", "thermora", "kinetic", "outdoors", "hydropeak"} & {
        k.term for k in result.keywords
    }


def test_keyword_weight_follows_competitor_strength() -> None:
    strong = Snapshot(asin="S1", brand="A", title="Widget, alpha", bsr_rank=50)
    strong2 = Snapshot(asin="S2", brand="B", title="Widget, alpha", bsr_rank=80)
    weak = Snapshot(asin="W1", brand="C", title="Widget, omega", bsr_rank=90000)
    weak2 = Snapshot(asin="W2", brand="D", title="Widget, omega", bsr_rank=120000)
    product = Snapshot(asin="P", brand="Mine", title="Mine Widget")
    result = score_listing(product, [weak, strong, weak2, strong2])
    terms = [k.term for k in result.keywords]
    assert terms.index("alpha") < terms.index("omega")
    assert result.missing_keywords[0] == "alpha"


def test_category_keywords_join_the_keyword_set() -> None:
    result = score_listing(good_product(), competitors(), category_keywords=["hydration flask"])
    kw = {k.term: k for k in result.keywords}
    assert "hydration flask" in kw
    assert not kw["hydration flask"].in_title
    assert "hydration flask" in result.missing_keywords


def test_keyword_coverage_not_applicable_without_competitors() -> None:
    result = score_listing(good_product(), [])
    rule = result.rule("keyword_coverage")
    assert not rule.applicable and rule.points == 0.0
    assert "not scored" in rule.detail


def test_bullet_count_rule() -> None:
    rule = score(good_product(bullet_points=GOOD_BULLETS[:3])).rule("bullet_count")
    assert rule.score == pytest.approx(0.6)
    assert "3 bullet" in rule.detail
    assert "Add 2 bullet" in rule.advice


def test_bullet_length_rule_flags_short_and_overlong_bullets() -> None:
    bullets = [*GOOD_BULLETS[:3], "Cold drinks.", "Lifetime warranty. " * 30]
    rule = score(good_product(bullet_points=bullets)).rule("bullet_length")
    assert rule.score < 0.7 and not rule.passed
    assert rule.evidence["lengths"][3] == len("Cold drinks.")
    assert "[4]" in rule.advice and "[5]" in rule.advice


def test_description_missing_short_duplicated_or_noisy() -> None:
    assert score(good_product(description=None)).rule("description").score == 0.0
    short = score(good_product(description="Keeps water cold.")).rule("description")
    assert short.score < 0.5 and "at least 500" in short.advice
    copied = " ".join(GOOD_BULLETS)
    dup = score(good_product(description=copied)).rule("description")
    assert dup.evidence["duplicate_share"] > 0.9
    assert "bullets do not" in dup.advice
    noisy = score(
        good_product(description="<p>" + GOOD_DESCRIPTION + "</p> Visit www.hydropeak.example")
    ).rule("description")
    assert {"html markup", "links or emails"} <= set(noisy.evidence["noise"])
    assert noisy.score < score().rule("description").score


@pytest.mark.parametrize(
    ("count", "expected"), [(8, 1.0), (7, 1.0), (6, 0.85), (3, 0.35), (0, 0.0)]
)
def test_image_count_rule(count: int, expected: float) -> None:
    urls = [IMG.format(f"71hp{i}x") for i in range(count)]
    rule = score(good_product(image_urls=urls, image_count=count)).rule("image_count")
    assert rule.score == pytest.approx(expected)
    assert rule.passed == (count >= 6)


def test_image_angles_unknown_when_the_image_data_names_none() -> None:
    urls = [IMG.format(f"71hp{i}x") for i in range(4)]
    result = score(good_product(image_urls=urls, image_count=4))
    rule = result.rule("image_angles")
    # Opaque Amazon ids say nothing about the shots: no angle is claimed or missing, and
    # the gallery size is scored once, by image_count.
    assert not rule.applicable and rule.points == 0 and rule.advice == ""
    assert rule.evidence["status"] == "unknown" and rule.evidence["detected"] == []
    assert rule.evidence["unknown_images"] == 4
    assert result.missing_angles == []
    assert rule.detail.startswith("angles unknown: 4 of 4 images")
    eight = score(good_product(image_urls=[IMG.format(f"71hp{i}x") for i in range(8)]))
    assert not eight.rule("image_angles").applicable
    # Only image_count moved between 4 and 8 images.
    moved = {
        r.rule_id
        for r, q in zip(result.rules, eight.rules, strict=True)
        if (r.points, r.applicable) != (q.points, q.applicable)
    }
    assert moved == {"image_count"}


def test_image_angles_from_amazon_slot_codes_and_partly_named_galleries() -> None:
    base = "https://m.media-amazon.com/images/I/B0CWTR4K2P.{}._AC_SL1500_.jpg"
    urls = [base.format("MAIN"), base.format("PT01"), base.format("SWCH")]
    rule = score(good_product(image_urls=urls, image_count=3)).rule("image_angles")
    # MAIN names the main image; PT01 is a slot that names no shot; SWCH is a swatch.
    assert rule.evidence["detected"] == ["main_white"]
    assert rule.evidence["status"] == "partly_named" and rule.evidence["unknown_images"] == 1
    assert not rule.applicable and rule.evidence["missing"] == []
    named = [
        "https://cdn.example.com/b/main.jpg",
        "https://cdn.example.com/b/lifestyle-kitchen.jpg",
        "https://cdn.example.com/b/infographic.jpg",
        "https://cdn.example.com/b/in-use.jpg",
        "https://cdn.example.com/b/size-chart.jpg",
        "https://cdn.example.com/b/whats-in-the-box.jpg",
    ]
    full = score(good_product(image_urls=named, image_count=6)).rule("image_angles")
    assert full.applicable and full.score == 1.0 and full.evidence["status"] == "named"


def test_image_angles_read_from_url_tokens() -> None:
    urls = [
        "https://cdn.example.com/hydropeak/main-white.jpg",
        "https://cdn.example.com/hydropeak/packaging-box.jpg",
        "https://cdn.example.com/hydropeak/size-chart.jpg",
    ]
    rival = replace(competitors()[0], image_urls=["https://cdn.example.com/aq/lifestyle-beach.jpg"])
    result = score_listing(good_product(image_urls=urls, image_count=3), [rival])
    rule = result.rule("image_angles")
    assert {"main_white", "packaging", "scale"} <= set(rule.evidence["detected"])
    # What the competitor shows comes first among the missing angles.
    assert result.missing_angles[0] == "lifestyle"
    assert set(result.missing_angles) == set(ANGLE_ORDER) - {"main_white", "packaging", "scale"}


def test_video_rule() -> None:
    rule = score(good_product(video_count=0)).rule("video")
    assert rule.score == 0.0
    assert "2/4 competitors" in rule.detail
    assert "video" in rule.advice


@pytest.mark.parametrize(
    ("rating", "band", "value"),
    [
        (4.8, ">=4.5", 1.0),
        (4.5, ">=4.5", 1.0),
        (4.2, "4.0-4.4", 0.75),
        (3.7, "3.5-3.9", 0.45),
        (3.1, "<3.5", 0.15),
    ],
)
def test_rating_bands(rating: float, band: str, value: float) -> None:
    rule = score(good_product(rating=rating)).rule("rating")
    assert rule.evidence["band"] == band
    assert rule.score == pytest.approx(value)
    assert (rule.advice == "") == (value == 1.0)


def test_unknown_rating_is_left_out_of_the_total() -> None:
    result = score(good_product(rating=None))
    rule = result.rule("rating")
    assert not rule.applicable
    applicable = [r for r in result.rules if r.applicable]
    expected = 100 * sum(r.points for r in applicable) / sum(r.weight for r in applicable)
    assert result.total == pytest.approx(expected)


@pytest.mark.parametrize(
    ("reviews", "tier", "value"),
    [
        (0, "0", 0.0),
        (30, "<50", 0.25),
        (300, "<500", 0.5),
        (3000, "<5000", 0.75),
        (6000, ">=5000", 1.0),
    ],
)
def test_review_count_absolute_tiers(reviews: int, tier: str, value: float) -> None:
    rule = score_listing(good_product(review_count=reviews), []).rule("review_count")
    assert rule.evidence["tier"] == tier
    assert rule.score == pytest.approx(value)


def test_review_count_relative_to_competitor_median() -> None:
    rule = score(good_product(review_count=300)).rule("review_count")
    # Median of 15320, 4210, 2105, 980 is 3157.5; log ratio ~0.71; tier <500 -> 0.5.
    assert rule.evidence["competitor_median"] == pytest.approx(3157.5)
    assert rule.score == pytest.approx(0.5 * 0.5 + 0.5 * 0.7096, abs=0.01)
    assert "Request a Review" in rule.advice


def test_price_position_highest_without_lead_is_penalized() -> None:
    rule = score(good_product(price=44.99, rating=4.4, review_count=900)).rule("price_position")
    assert rule.score == pytest.approx(0.2)
    assert rule.evidence["highest"] is True and rule.evidence["lead"] is False
    assert "median" in rule.advice and "28.97" in rule.advice


def test_price_position_premium_justified_by_rating_lead() -> None:
    rule = score(good_product(price=44.99)).rule("price_position")  # rating 4.7 leads the group
    assert rule.score == 1.0 and rule.evidence["lead"] is True


def test_price_position_premium_but_not_highest() -> None:
    comps = competitors()
    comps[2] = replace(comps[2], price=49.99)
    rule = score(good_product(price=38.0, rating=4.4, review_count=900), comps).rule(
        "price_position"
    )
    assert rule.score == pytest.approx(0.6)


def test_flawed_listing_grades_lower_and_says_why() -> None:
    flawed = good_product(
        title="BEST WATER BOTTLE!!",
        bullet_points=GOOD_BULLETS[:2],
        description=None,
        image_urls=[IMG.format("71a")],
        image_count=1,
        video_count=0,
        rating=3.8,
        review_count=12,
        price=39.99,
    )
    result = score(flawed)
    assert result.grade == "D"
    failing = {r.rule_id for r in result.rules if not r.passed}
    assert failing >= {
        "title_length",
        "title_structure",
        "keyword_coverage",
        "bullet_count",
        "description",
        "image_count",
        "video",
        "rating",
        "review_count",
        "price_position",
    }
    assert all(r.advice for r in result.rules if not r.passed)
    assert not result.rule("image_angles").applicable  # one opaque image: angle unknown


@pytest.mark.parametrize(
    ("total", "grade"), [(85.0, "A"), (84.9, "B"), (70.0, "B"), (55.0, "C"), (54.9, "D")]
)
def test_grade_thresholds(total: float, grade: str) -> None:
    assert grade_for(total) == grade

"""The keyword statistics kept per competitor text and per competitor set (issue 18) never
change an answer: a seller sees the same keywords whether the rivals were read a moment ago
for another product or never before, and today's ranks and edits always count."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from amazon_pilot.domain import grounding, keywords
from amazon_pilot.domain.features import _features_of
from amazon_pilot.domain.image_angles import url_angle
from amazon_pilot.domain.listing_score import score_listing
from amazon_pilot.domain.snapshot import Snapshot

RIVALS = [
    Snapshot(asin="B0RIVAL001", brand="FlowCo", bsr_rank=120,
             title="FlowCo Insulated Water Bottle with Straw Lid, Stainless Steel, 32 oz",
             bullet_points=["Leak proof straw lid for the gym", "Keeps drinks cold 24 hours",
                            "Made by Acme for FlowCo"]),
    Snapshot(asin="B0RIVAL002", brand="Acme", bsr_rank=900,
             title="Acme Stainless Steel Insulated Water Bottle, Leak Proof Straw Lid",
             bullet_points=["Double wall vacuum insulation", "Straw lid, leak proof, BPA free"]),
    Snapshot(asin="B0RIVAL003", brand="Peak", bsr_rank=4000,
             title="Peak Water Bottle Insulated Stainless Steel with Straw, Wide Mouth",
             bullet_points=["Wide mouth fits ice cubes", "Stainless steel water bottle"]),
]


def _product(brand: str) -> Snapshot:
    return Snapshot(asin="B0MINE0001", brand=brand, price=25.0,
                    title=f"{brand} Water Bottle 32 oz", bullet_points=["Keeps water cold"])


def _cold(product: Snapshot, rivals: list[Snapshot]) -> dict[str, object]:
    for cached in (keywords._phrases, keywords._competitor_text, keywords._set_stats,
                   keywords._high_value_keywords, _features_of, url_angle, grounding._specs,
                   grounding._spec_surfaces):
        cached.cache_clear()
    return score_listing(product, rivals).to_dict()


def test_a_rivals_brand_as_our_own_is_left_out_though_the_set_was_read_for_another_brand() -> None:
    first = score_listing(_product("Hydro"), RIVALS).to_dict()  # fills the caches
    ours = _product("Acme")  # a rival's brand, also named in another rival's bullets
    warm = score_listing(ours, RIVALS).to_dict()
    assert warm == _cold(ours, RIVALS)
    assert first["keywords"] == _cold(_product("Hydro"), RIVALS)["keywords"]
    terms = [k["term"] for k in warm["keywords"]]
    assert terms and not any("acme" in t.split() for t in terms)


def test_todays_ranks_reweigh_the_keywords_of_a_set_read_yesterday() -> None:
    product = _product("Hydro")
    yesterday = score_listing(product, RIVALS).to_dict()
    # The bottom rival climbs to #1 and the top one falls: the keywords weigh differently.
    today = [replace(RIVALS[0], bsr_rank=90000), RIVALS[1], replace(RIVALS[2], bsr_rank=1)]
    warm = score_listing(product, today).to_dict()
    assert warm == _cold(product, today)
    assert warm["keywords"] != yesterday["keywords"]


def _weights(score: dict[str, object]) -> dict[str, float]:
    return {k["term"]: k["weight"] for k in score["keywords"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize("edit", ["title", "bullets"])
def test_a_rival_edited_in_place_is_read_again(edit: str) -> None:
    product = _product("Hydro")
    rivals = [replace(r, bullet_points=list(r.bullet_points)) for r in RIVALS]
    before = _weights(score_listing(product, rivals).to_dict())
    if edit == "title":  # two titles now name cup holders: a new keyword
        for r in rivals[:2]:
            r.title = (r.title or "") + ", Cup Holder Friendly"
    else:  # the third rival's bullets now name the straw lid its title does not
        rivals[2].bullet_points.append("Straw lid included")
    warm = score_listing(product, rivals).to_dict()
    assert warm == _cold(product, rivals)
    after = _weights(warm)
    if edit == "title":
        assert "cup holder" in after and "cup holder" not in before
    else:
        assert after["straw lid"] > before["straw lid"]


def test_brand_words_break_phrases_as_punctuation_does() -> None:
    # Brand words sit inside phrases ("Peak insulated bottle"): taking them out of a rival's
    # statistics must read exactly like a comma there, whoever's brand the word is.
    rivals = [replace(r, title=f"{r.title}, Fits Peak Insulated Bottle Lids",
                      bullet_points=[*r.bullet_points, "FlowCo approved Acme straw lid"])
              for r in RIVALS]
    brands = re.compile(r"\b(?:FlowCo|Acme|Peak)\b")
    broken = [replace(r, title=brands.sub(",", r.title or ""),
                      bullet_points=[brands.sub(",", b) for b in r.bullet_points])
              for r in rivals]
    product = _product("Hydro")
    read = _cold(product, rivals)["keywords"]
    assert read == _cold(product, broken)["keywords"]
    terms = [k["term"] for k in read]  # type: ignore[attr-defined]
    assert {"bottle lids", "straw lid"} <= set(terms)
    assert not any(w in ("flowco", "acme", "peak") for t in terms for w in t.split())

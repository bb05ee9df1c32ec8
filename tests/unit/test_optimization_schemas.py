"""The response models describe what the domain returns without changing it: every key the
domain emits is modelled (no extras), optional keys stay absent, and a document read back
through its model dumps to the same JSON."""

from __future__ import annotations

import json
import math
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

import numpy as np
import pytest
from pydantic import BaseModel

from amazon_pilot.domain import experiments
from amazon_pilot.domain.listing_score import score_listing
from amazon_pilot.domain.snapshot import HistoryPoint, Snapshot
from amazon_pilot.domain.suggestions import ListingCopy, apply_llm_copy, suggest
from amazon_pilot.optimization import schemas
from amazon_pilot.optimization.service import analyse_history

WORDS = ["insulated", "stainless", "steel", "water", "bottle", "straw", "lid", "leak", "proof",
         "vacuum", "double", "wall", "bpa", "free", "wide", "mouth", "sports", "gym", "travel",
         "cold", "hot", "handle", "dishwasher", "safe", "powder", "coat"]


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def extras(model: Any, path: str = "") -> list[str]:
    """Keys a model kept without declaring them, anywhere in the tree."""
    if isinstance(model, BaseModel):
        found = [f"{path}.{k}" for k in (model.__pydantic_extra__ or {})]
        for name in type(model).model_fields:
            found += extras(getattr(model, name), f"{path}.{name}")
        return found
    if isinstance(model, list | tuple):
        return [e for i, v in enumerate(model) for e in extras(v, f"{path}[{i}]")]
    if isinstance(model, dict):
        return [e for k, v in model.items() for e in extras(v, f"{path}.{k}")]
    return []


def listing(r: random.Random, asin: str, brand: str) -> Snapshot:
    n_img = r.randint(0, 9)
    return Snapshot(
        asin=asin, brand=brand,
        title=f"{brand} " + " ".join(r.sample(WORDS, r.randint(3, 14))).title(),
        price=round(r.uniform(15, 45), 2), rating=round(r.uniform(3.2, 4.9), 1),
        review_count=r.randint(0, 20000), bsr_rank=r.randint(50, 200000),
        bullet_points=[" ".join(r.choices(WORDS, k=r.randint(8, 40))).capitalize() + "."
                       for _ in range(r.randint(0, 6))],
        description=" ".join(r.choices(WORDS, k=r.randint(0, 150))) or None,
        image_urls=[f"https://m.media-amazon.com/images/I/{asin}{i}.jpg" for i in range(n_img)],
        image_count=n_img, video_count=r.randint(0, 1),
    )


def history(r: random.Random) -> list[HistoryPoint]:
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    price, bsr, out = 29.99, 4000, []
    for d in range(90):
        if r.random() < 0.08:
            price = round(price * r.uniform(0.8, 1.2), 2)
        bsr = max(1, int(bsr * math.exp(r.gauss(0, 0.1))))
        out.append(HistoryPoint(captured_at=t0 + timedelta(days=d), price=price, bsr_rank=bsr))
    return out


def cases(n: int = 60) -> list[tuple[Snapshot, list[Snapshot], list[HistoryPoint]]]:
    r = random.Random(11)
    out = []
    for i in range(n):
        product = listing(r, f"B0P{i:07d}", "HydroPeak")
        comps = [listing(r, f"B0C{i:05d}{j}", f"Rival{j}") for j in range(r.randint(0, 5))]
        out.append((product, comps, history(r) if i % 3 else []))
    bare = Snapshot(asin="B0BARE0001")  # no title, bullets, rating, price...
    out.append((bare, [], []))
    out.append((bare, [listing(r, "B0C0000099", "Rival")], []))
    return out


def test_listing_scores_read_back_unchanged() -> None:
    seen_rules: set[str] = set()
    for product, comps, _ in cases():
        score = as_json(score_listing(product, comps).to_dict())
        doc = schemas.ScoreDocument.model_validate(score)
        assert doc.model_dump(mode="json") == score
        assert extras(doc) == []
        full = {**score, "product_id": str(uuid.uuid4()), "as_of": None, "data_source": None,
                "competitor_group": None, "competitors": [], "notes": []}
        out = schemas.ListingScoreOut.model_validate(full)
        assert out.model_dump(mode="json") == full
        seen_rules |= {r["rule_id"] for r in score["rules"] if not r["evidence"]}
    # the not-applicable cases (empty evidence) were among them
    assert {"keyword_coverage", "rating", "review_count", "price_position"} <= seen_rules


def test_suggestions_evidence_reads_back_unchanged() -> None:
    kinds: set[str] = set()
    copy = ListingCopy(title="HydroPeak Insulated Water Bottle with Straw Lid, 32 oz",
                       bullets=["Cold for 24 hours."], description="A bottle.")
    rejected = ListingCopy(title="Best bottle on sale", bullets=[], description="")
    for product, comps, past in cases():
        ranked = suggest(product, comps, score_listing(product, comps), past)
        for variant in (ranked, apply_llm_copy(ranked, copy, product, comps),
                        apply_llm_copy(ranked, rejected, product, comps)):
            for s in variant:
                stored = as_json({**s.to_dict(), "id": str(uuid.uuid4()), "experiment_id": None})
                out = schemas.SUGGESTION.validate_python(stored)
                assert out.model_dump(mode="json") == stored
                assert extras(out) == [], s.type
                optional = ",".join(sorted(set(s.evidence) & {
                    "llm_title", "llm_rejected", "expected_bsr_change"}))
                kinds.add(f"{s.type}+{optional}" if optional else s.type)
    assert {"title", "pricing", "pricing+expected_bsr_change", "description", "images",
            "title+llm_title", "title+llm_rejected", "description+llm_rejected"} <= kinds


def _series(level: float, drop_from: int | None, seed: int) -> list[HistoryPoint]:
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1, 6, tzinfo=UTC)
    return [HistoryPoint(captured_at=t0 + timedelta(days=d),
                         bsr_rank=round(level * (0.6 if drop_from and d >= drop_from else 1)
                                        * math.exp(rng.normal(0, 0.05))),
                         subcategory_bsr=round(level / 20), price=19.99 if d < 45 else 17.99,
                         title="Bottle" if d < 50 else "Bottle, new title",
                         review_count=100 + 3 * d, rating=4.5, buy_box_seller="Acme")
            for d in range(60)]


@pytest.mark.parametrize(("product", "controls", "changed", "seller"), [
    (_series(5000, 30, 1), [_series(2000, None, 2), _series(4000, None, 3)], date(2026, 1, 31),
     "acme"),
    (_series(5000, None, 1), [], date(2026, 2, 28), None),  # too early, no control
    ([], [], date(2026, 1, 31), None),  # no product data at all
])
def test_experiment_analyses_read_back_unchanged(
    product: list[HistoryPoint], controls: list[list[HistoryPoint]], changed: date,
    seller: str | None,
) -> None:
    analysis = analyse_history(product, controls, changed, seed=5, our_seller=seller,
                               n_boot=200)
    analysis.update(analysed_until=datetime(2026, 3, 1, tzinfo=UTC).isoformat(),
                    data_source="sandbox",
                    competitor_group={"id": str(uuid.uuid4()), "name": "G",
                                      "competitors": ["B0C0000001"]})
    stored = as_json(analysis)
    out = schemas.Analysis.model_validate(stored)
    assert out.model_dump(mode="json") == stored
    assert extras(out) == []


def test_the_routes_verdicts_are_the_domains() -> None:
    assert get_args(schemas.Verdict) == get_args(experiments.Verdict)


def test_an_unknown_key_is_kept_and_an_absent_optional_one_stays_absent() -> None:
    evidence = {"reviews": 10, "tier": "<50", "new_field": [1]}
    out = schemas.ReviewCountEvidence.model_validate(evidence)
    assert out.model_dump(mode="json") == evidence
    assert schemas.RatingEvidence.model_validate({}).model_dump(mode="json") == {}
    schema = schemas.ReviewCountEvidence.model_json_schema(mode="serialization")
    assert "required" not in schema and "default" not in schema["properties"]["reviews"]

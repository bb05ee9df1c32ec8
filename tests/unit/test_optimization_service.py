"""The optimization glue without a database: feature gaps, the copy cache key, the model
fallbacks, the stand-in's listing_copy handler, and experiment analysis on history."""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from amazon_pilot.adapters.llm import LLMResult, Usage
from amazon_pilot.domain import grounding
from amazon_pilot.domain.snapshot import HistoryPoint, Snapshot
from amazon_pilot.domain.suggestions import ListingCopy, apply_llm_copy, llm_copy_messages
from amazon_pilot.optimization.jobs import generate_suggestions, record_experiment_verdicts
from amazon_pilot.optimization.service import (
    analyse_history,
    copy_input_hash,
    feature_gaps,
    rule_suggestions,
    word_suggestions,
)
from amazon_pilot.platform.job_errors import PermanentJobError
from amazon_pilot.platform.jobs import Delivery
from pilot_dev.standins.openai_server import ChatRequest, listing_copy

BULLETS = ["Up to 8 hours per charge (32 hours with the charging case).",
           "IPX7 waterproof for workouts in the rain.", "Bluetooth 5.3 with multipoint."]


def earbuds(asin: str, brand: str, bullets: list[str], title: str | None = None) -> Snapshot:
    return Snapshot(asin=asin, brand=brand, title=title or f"{brand} Wireless Earbuds",
                    price=39.99, rating=4.3, review_count=1200, bsr_rank=900,
                    bullet_points=bullets, description="Short.", image_count=4)


def test_feature_gaps_use_the_feature_extractor() -> None:
    main = earbuds("B000000001", "Mine", ["Active noise cancelling with 35 dB depth."])
    comps = [earbuds(f"B00000000{i}", f"Rival{i}", BULLETS) for i in range(2, 5)]
    gaps = feature_gaps(main, comps)
    assert gaps is not None
    assert any(m.startswith("water resistance rating: IPX7") for m in gaps["missing"])
    assert any(o.startswith("active noise cancelling") for o in gaps["only_main"])
    assert feature_gaps(main, []) == {"only_main": [], "missing": []}
    plain = [earbuds(f"B00000001{i}", "X", ["A nice cup."]) for i in range(3)]
    assert feature_gaps(earbuds("B000000020", "Y", ["A mug."]), plain) is None
    outcome = rule_suggestions(main, comps, [])
    assert outcome.feature_source == "features"
    desc = next(s for s in outcome.suggestions if s.type == "description")
    assert "water resistance rating" in desc.change


def test_the_copy_hash_follows_content_not_prices() -> None:
    main = earbuds("B000000001", "Mine", BULLETS)
    comps = [earbuds("B000000002", "Rival", BULLETS)]
    digest = copy_input_hash("gpt-4o-mini", main, comps)
    main.price, comps[0].bsr_rank = 10.0, 5
    assert copy_input_hash("gpt-4o-mini", main, comps) == digest
    main.title = "Mine Earbuds, new title"
    assert copy_input_hash("gpt-4o-mini", main, comps) != digest
    assert copy_input_hash("gpt-4o", main, comps) != copy_input_hash("gpt-4o-mini", main, comps)


class FakeClient:
    model = "gpt-4o-mini"

    def __init__(self, answer: ListingCopy | None, error: str | None = None) -> None:
        self.answer, self.error, self.calls = answer, error, 0

    def complete_json(self, messages: Any, schema: Any, name: str) -> LLMResult[ListingCopy]:
        self.calls += 1
        return LLMResult(parsed=self.answer, raw_text="", usage=Usage(100, 50), cost_usd=0.001,
                         model="sandbox-gpt-4o-mini", sandbox=True, error=self.error)


class MemoryCache:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def put(self, key: str, value: str, ttl_s: int) -> None:
        self.data[key] = value


def _inputs() -> tuple[Snapshot, list[Snapshot], Any]:
    main = earbuds("B000000001", "Mine", ["Short bullet."], title="Mine Buds")
    comps = [earbuds(f"B00000000{i}", f"Rival{i}", BULLETS) for i in range(2, 5)]
    return main, comps, rule_suggestions(main, comps, []).suggestions


def test_model_copy_is_cached_and_failures_fall_back_to_rules() -> None:
    main, comps, ranked = _inputs()
    copy = ListingCopy(title="Mine Buds, Wireless Earbuds",
                       bullets=["Eight hours per charge, thirty-two with the case."],
                       description="A longer story. " * 40)
    cache, client = MemoryCache(), FakeClient(copy)
    first = word_suggestions(main, comps, ranked, client, cache)
    assert first.generated_by == "llm"
    assert (first.spend.cache, first.spend.prompt_tokens) == ("miss", 100)
    assert list(cache.data) == [f"llm:copy:{first.input_hash}"]
    second = word_suggestions(main, comps, ranked, client, cache)
    assert second.generated_by == "llm"
    assert (second.spend.cache, second.spend.prompt_tokens) == ("hit", 0)
    assert client.calls == 1
    assert [s.priority for s in second.suggestions] == [s.priority for s in ranked]

    broken = word_suggestions(main, comps, ranked, FakeClient(None, "server_error: HTTP 500"),
                              MemoryCache())
    assert broken.generated_by == "rules" and "server_error" in (broken.fallback_reason or "")
    assert all(s.source == "rules" for s in broken.suggestions)
    none = word_suggestions(main, comps, ranked, None)
    assert none.generated_by == "rules" and none.spend.cache is None
    # IPX7 and Bluetooth 5.3 are the rivals' specs, not this product's: the draft is
    # repaired down to nothing new and the rules' copy stays, with the reason.
    claims = ListingCopy(title="Mine Buds, IPX7 Waterproof, Bluetooth 5.3", bullets=[],
                         description="")
    false = word_suggestions(main, comps, ranked, FakeClient(claims), MemoryCache())
    assert false.generated_by == "rules"
    assert "not the product's own" in (false.fallback_reason or "")
    promo = ListingCopy(title="Best Mine earbuds on sale", bullets=[], description="")
    rejected = word_suggestions(main, comps, ranked, FakeClient(promo), MemoryCache())
    assert rejected.generated_by == "rules" and "rejected" in (rejected.fallback_reason or "")


def test_the_standin_writes_brand_first_copy_from_the_request() -> None:
    main, comps, ranked = _inputs()
    messages = llm_copy_messages(main, ranked)
    user = messages[1]["content"]
    answer = listing_copy(ChatRequest(model="m", messages=messages, body={}, user_text=user))
    parsed = ListingCopy.model_validate(answer)
    assert parsed.title.startswith("Mine ") and len(parsed.title) <= 200
    title_s = next(s for s in ranked if s.type == "title")
    assert parsed.title == title_s.evidence["suggested_title"]
    desc_s = next(s for s in ranked if s.type == "description")
    assert parsed.bullets == (desc_s.evidence["suggested_bullets"] or ["Short bullet."])
    # Nothing to say beyond the current description: the stand-in invents no story.
    assert parsed.description == "Short."
    worded = apply_llm_copy(ranked, parsed, main, comps)
    assert all(s.evidence.get("term_sources") is not None or s.type not in ("title",)
               for s in worded)
    for s in worded:
        if s.type == "title" and s.source == "llm":
            assert not grounding.check(s.evidence["llm_title"], grounding.sources(main, comps),
                                       main.title).problems()
    json.dumps(answer)


def _history(level: float, drop_from: int | None, seed: int, n: int = 60) -> list[HistoryPoint]:
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1, 6, tzinfo=UTC)
    out = []
    for d in range(n):
        factor = 0.6 if drop_from is not None and d >= drop_from else 1.0
        bsr = level * factor * math.exp(rng.normal(0, 0.05))
        out.append(HistoryPoint(captured_at=t0 + timedelta(days=d), bsr_rank=round(bsr),
                                price=19.99 if d < 45 else 17.99, review_count=100 + 3 * d,
                                rating=4.5, buy_box_seller="Acme"))
    return out


def test_experiment_analysis_on_history() -> None:
    controls = [_history(2000.0 * (j + 1), None, 10 + j) for j in range(3)]
    result = analyse_history(_history(5000.0, 30, 1), controls, date(2026, 1, 31), seed=3,
                             our_seller="acme")
    assert result["verdict"] == "improved" and result["primary_metric"] == "bsr"
    assert result["metrics"]["bsr"]["n_controls"] == 3
    assert "buy_box_share" in result["metrics"]
    assert [c["kind"] for c in result["other_changes"]] == ["price"]
    assert any("another change mid-experiment" in w for w in result["warnings"])
    early = analyse_history(_history(5000.0, None, 1), controls, date(2026, 2, 28))
    assert early["verdict"] == "too_early"
    assert any("buy_box_share not analysed" in w for w in early["warnings"])


@pytest.mark.parametrize(("job", "payload", "where"), [
    (generate_suggestions, {}, "run_id"),
    (generate_suggestions, {"run_id": "not-a-uuid"}, "run_id"),
    (generate_suggestions, {"run_id": str(uuid.uuid4()), "sandbox_date": "2026-01-01"},
     "sandbox_date"),
    (record_experiment_verdicts, {"experiment_ids": []}, "experiment_ids"),
    (record_experiment_verdicts, {"experiment_ids": ["x"]}, "experiment_ids.0"),
])
def test_jobs_refuse_a_payload_that_does_not_fit(job: Any, payload: dict[str, Any],
                                                 where: str) -> None:
    with pytest.raises(PermanentJobError, match=f"bad payload: {re.escape(where)}:"):
        job(payload, Delivery("k", 1, 3))


def test_features_are_named_in_a_sellers_words_once() -> None:
    from amazon_pilot.optimization.service import _stated

    assert _stated("theme_comfort", ["COMFORT"]) == "comfort"
    assert _stated("anc", ["active noise cancelling"]) == "active noise cancelling"
    assert _stated("battery_hours", ["30 h"]) == "battery life per charge: 30 h"

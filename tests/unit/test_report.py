"""Positioning report: the deterministic fallback and the LLM answer gate."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from amazon_pilot.domain.comparison import GroupComparison, ProductView, compare_group
from amazon_pilot.domain.features import FeatureComparison, compare_features, extract_features
from amazon_pilot.domain.report import (
    InvalidLLMOutput,
    Point,
    PositioningReport,
    Recommendation,
    allowed_metric_keys,
    build_report_messages,
    rules_report,
    validate_llm_report,
)
from amazon_pilot.domain.snapshot import Availability, HistoryPoint, Snapshot

START = datetime(2025, 5, 1, tzinfo=UTC)


def product(asin: str, history: list[HistoryPoint] | None = None, **kw: Any) -> ProductView:
    fields: dict[str, Any] = {
        "price": 39.99,
        "availability": Availability.IN_STOCK,
        "rating": 4.3,
        "review_count": 1000,
        "bsr_rank": 1000,
        "bsr_category": "Electronics",
    }
    fields.update(kw)
    return ProductView(asin, f"{asin} earbuds", Snapshot(asin=asin, **fields), history or [])


def prices(values: list[float]) -> list[HistoryPoint]:
    return [
        HistoryPoint(captured_at=START + timedelta(days=i), price=v) for i, v in enumerate(values)
    ]


def underdog() -> tuple[GroupComparison, FeatureComparison]:
    """Main is the priciest, lowest rated, fewest reviews, worst BSR; a rival cuts prices."""
    main = product("MAIN", price=59.99, rating=3.9, review_count=300, bsr_rank=9000)
    cutter = product(
        "CUTTER",
        prices([44.99] * 20 + [34.99] * 10),
        price=34.99,
        rating=4.5,
        review_count=8000,
        bsr_rank=400,
    )
    oos = product("GONE", price=None, availability=Availability.OUT_OF_STOCK, rating=4.1)
    g = compare_group(main, [cutter, oos], 30)
    f = compare_features(
        extract_features("MAIN", ["Up to 6 hours per charge", "IPX4"]),
        [
            extract_features("CUTTER", ["Hybrid ANC", "10 hours per charge", "IPX5"]),
            extract_features("GONE", ["8 hours per charge"]),
        ],
    )
    return g, f


def leader() -> tuple[GroupComparison, FeatureComparison]:
    """Main is the cheapest, best rated, most reviewed and best ranked."""
    main = product("MAIN", price=29.99, rating=4.7, review_count=20000, bsr_rank=150)
    rivals = [
        product("R1", price=39.99, rating=4.2, review_count=3000, bsr_rank=900),
        product("R2", price=49.99, rating=4.4, review_count=5000, bsr_rank=2500),
    ]
    g = compare_group(main, rivals, 30)
    f = compare_features(
        extract_features("MAIN", ["LDAC codec", "Bluetooth 5.3"]),
        [extract_features("R1", ["Bluetooth 5.0"]), extract_features("R2", ["Bluetooth 5.2"])],
    )
    return g, f


def cited(report: PositioningReport) -> set[str]:
    items: list[Point | Recommendation] = [
        *report.strengths,
        *report.weaknesses,
        *report.threats,
        *report.recommendations,
    ]
    return {i.metric for i in items}


def test_rules_report_for_a_market_leader_lists_strengths_with_real_numbers() -> None:
    g, f = leader()
    r = rules_report(g, f)
    by_metric = {p.metric: p.text for p in r.strengths}
    assert "$29.99" in by_metric["main_rank.price"]
    assert "#150" in by_metric["main_rank.bsr"]
    assert "4.7" in by_metric["rating_gap"]
    assert "20,000" in by_metric["review_count_gap"]
    assert "features.codec_ldac" in by_metric
    assert r.weaknesses == []
    assert r.recommendations, "a complete report always recommends something"
    assert "MAIN" in r.summary and "$29.99" in r.summary


def test_rules_report_for_an_underdog_lists_weaknesses_threats_and_actions() -> None:
    g, f = underdog()
    r = rules_report(g, f)
    weak = {p.metric: p.text for p in r.weaknesses}
    assert "71.4% above CUTTER" in weak["price_gap_pct"]  # 59.99 vs 34.99
    assert "#9,000" in weak["bsr_log_ratio"]
    assert "3.9" in weak["rating_gap"]
    assert "300 reviews vs 8,000" in weak["review_count_gap"]
    assert "features.anc" in weak

    threats = {p.metric: p.text for p in r.threats}
    assert "CUTTER cut its price 22.2%" in threats["cutting_prices"]

    actions = {rec.metric: rec for rec in r.recommendations}
    assert actions["price_gap_pct"].expected_impact == "high"
    assert "out_of_stock" in actions  # GONE is out of stock: an opening
    order = {"high": 0, "medium": 1, "low": 2}
    impacts = [order[rec.expected_impact] for rec in r.recommendations]
    assert impacts == sorted(impacts)  # high-impact actions come first
    assert [rec.priority for rec in r.recommendations] == list(range(1, len(r.recommendations) + 1))


def test_rules_report_only_cites_metrics_present_in_the_comparison() -> None:
    for g, f in (underdog(), leader()):
        r = rules_report(g, f)
        assert cited(r) <= set(allowed_metric_keys(g, f))
        # And it passes the same gate an LLM answer must pass.
        assert validate_llm_report(r.model_dump_json(), g, f) == r


def test_rules_report_with_nothing_fetched_is_still_complete() -> None:
    main = ProductView("MAIN", "mine", None, [])
    g = compare_group(main, [ProductView("C1", "theirs", None, [])], 30)
    r = rules_report(g, None)
    assert "not been fetched" in r.summary
    assert len(r.recommendations) == 1
    assert r.recommendations[0].metric in g.metric_keys()


def test_rules_report_main_out_of_stock_is_top_priority() -> None:
    main = product("MAIN", price=None, availability=Availability.OUT_OF_STOCK)
    g = compare_group(main, [product("C1")], 30)
    r = rules_report(g, None)
    assert r.recommendations[0].metric == "availability"
    assert r.recommendations[0].expected_impact == "high"
    assert any("out of stock" in p.text for p in r.weaknesses)


def test_report_messages_carry_the_numbers_and_allowed_keys() -> None:
    g, f = underdog()
    messages = build_report_messages(g, f)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "null means unknown" in messages[0]["content"]
    user = messages[1]["content"]
    comparison = json.loads(re.search(r"<comparison>\s*(.*?)\s*</comparison>", user, re.S)[1])  # type: ignore[index]
    assert comparison["main"]["price"]["value"] == 59.99
    keys = json.loads(re.search(r"<metric_keys>\s*(.*?)\s*</metric_keys>", user, re.S)[1])  # type: ignore[index]
    assert keys == allowed_metric_keys(g, f)
    assert build_report_messages(g, f) == messages  # deterministic: safe to cache on


def _valid_answer(metric: str = "price_gap_pct") -> dict[str, Any]:
    return {
        "summary": "MAIN is the priciest in its group.",
        "strengths": [],
        "weaknesses": [{"text": "71.4% above CUTTER.", "metric": metric}],
        "threats": [],
        "recommendations": [
            {
                "priority": 1,
                "action": "Test a coupon.",
                "rationale": "Price gap.",
                "metric": metric,
                "expected_impact": "high",
            }
        ],
    }


def test_validate_accepts_a_good_answer_and_code_fences() -> None:
    g, f = underdog()
    raw = json.dumps(_valid_answer())
    assert validate_llm_report(raw, g, f).weaknesses[0].metric == "price_gap_pct"
    assert validate_llm_report(f"```json\n{raw}\n```", g, f).summary.startswith("MAIN")


@pytest.mark.parametrize(
    "raw",
    ['{"summary": "cut off', "Sure! Here is your report.", "", "[1, 2]"],
)
def test_validate_rejects_invalid_json(raw: str) -> None:
    g, _ = underdog()
    with pytest.raises(InvalidLLMOutput) as exc:
        validate_llm_report(raw, g)
    assert exc.value.code == "invalid_json"


def test_validate_rejects_extra_fields_anywhere() -> None:
    g, _ = underdog()
    top = _valid_answer() | {"confidence": 0.9}
    nested = _valid_answer()
    nested["recommendations"][0]["owner"] = "marketing"
    for answer in (top, nested):
        with pytest.raises(InvalidLLMOutput) as exc:
            validate_llm_report(json.dumps(answer), g)
        assert exc.value.code == "schema_violation"
        assert "Extra inputs" in exc.value.reason


def test_validate_rejects_missing_fields_and_bad_enums() -> None:
    g, _ = underdog()
    missing = _valid_answer()
    del missing["threats"]
    bad_impact = _valid_answer()
    bad_impact["recommendations"][0]["expected_impact"] = "huge"
    for answer in (missing, bad_impact):
        with pytest.raises(InvalidLLMOutput) as exc:
            validate_llm_report(json.dumps(answer), g)
        assert exc.value.code == "schema_violation"


def test_validate_rejects_unknown_metrics() -> None:
    g, f = underdog()
    with pytest.raises(InvalidLLMOutput) as exc:
        validate_llm_report(json.dumps(_valid_answer("profit_margin")), g, f)
    assert exc.value.code == "unknown_metric"
    assert "profit_margin" in exc.value.reason
    # A real metric name with no data in this group is just as unknown.
    no_bsr = compare_group(product("MAIN", bsr_rank=None), [product("C1", bsr_rank=None)], 30)
    with pytest.raises(InvalidLLMOutput):
        validate_llm_report(json.dumps(_valid_answer("bsr_log_ratio")), no_bsr)
    # Feature metrics count only when the feature comparison is given.
    with pytest.raises(InvalidLLMOutput):
        validate_llm_report(json.dumps(_valid_answer("features.anc")), g)
    assert validate_llm_report(json.dumps(_valid_answer("features.anc")), g, f)


def test_report_schema_forbids_extra_properties() -> None:
    schema = PositioningReport.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Recommendation"]["additionalProperties"] is False
    assert schema["$defs"]["Recommendation"]["properties"]["expected_impact"]["enum"] == [
        "high",
        "medium",
        "low",
    ]

"""Pure parts of competitor groups: the membership rules (on create, add and remove), row
mapping, and the report writer's choice between the model and the rules (fake client,
in-memory cache)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel

from amazon_pilot.adapters.llm import LLMResult, Usage
from amazon_pilot.competitors import schemas
from amazon_pilot.competitors.jobs import generate_report, plan_weekly_reports
from amazon_pilot.competitors.service import (
    Analysis,
    cache_key,
    check_members,
    overall_source,
    write_report,
)
from amazon_pilot.competitors.store import history_point
from amazon_pilot.domain.comparison import GroupComparison, ProductView, compare_group
from amazon_pilot.domain.features import (
    FeatureComparison,
    ProductFeatures,
    compare_features,
    features_from_snapshot,
)
from amazon_pilot.domain.groups import Add, Create, MembershipError, Remove, members_after
from amazon_pilot.domain.report import PositioningReport, build_report_messages, rules_report
from amazon_pilot.domain.snapshot import Availability, HistoryPoint, Snapshot
from amazon_pilot.platform.errors import NotFound, ValidationFailed
from amazon_pilot.platform.job_errors import PermanentJobError
from amazon_pilot.platform.jobs import Delivery
from amazon_pilot.tracking.store import snapshot_from_row

NOW = datetime(2025, 6, 30, 6, tzinfo=UTC)


def ref(asin: str) -> tuple[str, str]:
    return asin, "com"


MAIN = ref("B0MAIN0001")
COMPS = [ref(f"B0COMP000{i}") for i in range(1, 7)]


# ---------------------------------------------------------------- membership rules


def test_three_to_five_distinct_competitors_pass() -> None:
    for n in (3, 4, 5):
        assert check_members(MAIN, [], Create(COMPS[:n])) == COMPS[:n]


@pytest.mark.parametrize("n", [0, 2, 6])
def test_bound_is_3_to_5(n: int) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_members(MAIN, [], Create(COMPS[:n]))
    assert caught.value.message == f"a group needs 3 to 5 competitors; got {n}"
    assert caught.value.details == [{"field": "competitors", "message": caught.value.message}]


def test_duplicates_are_named_with_their_positions() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_members(MAIN, [], Create([COMPS[0], COMPS[1], COMPS[0]]))
    assert "B0COMP0001 is listed twice (items 0 and 2)" in caught.value.message
    assert caught.value.details[0]["field"] == "competitors.2"


def test_main_cannot_be_a_competitor_and_this_is_said_before_the_count() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_members(MAIN, [], Create([COMPS[0], MAIN]))
    assert "main product B0MAIN0001 cannot also be a competitor" in caught.value.message
    assert caught.value.details[0]["field"] == "competitors.1"


def test_same_asin_in_another_marketplace_is_another_product_but_another_currency() -> None:
    # Not "the main product twice": it is refused for its marketplace (prices in EUR).
    with pytest.raises(ValidationFailed) as caught:
        check_members(MAIN, [], Create([COMPS[0], ("B0MAIN0001", "de"), COMPS[1]]))
    assert caught.value.details == [{"field": "competitors.1", "message": caught.value.message}]
    assert "competitor B0MAIN0001 is on amazon.de" in caught.value.message
    assert "main product B0MAIN0001 is on amazon.com" in caught.value.message


def test_a_group_is_one_marketplace() -> None:
    for mk in ("de", "co.uk", "co.jp"):
        with pytest.raises(ValidationFailed) as caught:
            check_members(MAIN, [], Create([*COMPS[:3], ("B0OTHER001", mk)]))
        assert caught.value.details[0]["field"] == "competitors.3"
        assert f"B0OTHER001 is on amazon.{mk}" in caught.value.message
        assert "amazon.com" in caught.value.message
    de_main = ("B0MAIN0001", "de")
    de = [(a, "de") for a, _ in COMPS[:3]]
    assert members_after(de_main, [], Create(de)) == de


def refusal(current: list[tuple[str, str]], change: Add | Remove) -> MembershipError:
    with pytest.raises(MembershipError) as caught:
        members_after(MAIN, current, change)
    return caught.value


def test_add_keeps_the_same_rules() -> None:
    assert members_after(MAIN, COMPS[:3], Add(COMPS[3])) == COMPS[:4]
    other = refusal(COMPS[:3], Add(("B0MAIN0001", "de")))
    assert other.field == "competitor" and "is on amazon.de" in other.message
    main = refusal(COMPS[:5], Add(MAIN))  # said before the count
    assert (main.field, main.message) == (
        "competitor", "the main product B0MAIN0001 cannot also be a competitor")
    twice = refusal(COMPS[:5], Add(COMPS[0]))
    assert twice.message == "B0COMP0001 is already a competitor in this group"
    full = refusal(COMPS[:5], Add(COMPS[5]))
    assert (full.field, full.message) == (
        "competitor", "a group has at most 5 competitors; remove one before adding B0COMP0006")


def test_remove_keeps_the_same_rules() -> None:
    assert members_after(MAIN, COMPS[:4], Remove("B0COMP0002")) == [COMPS[0], *COMPS[2:4]]
    main = refusal(COMPS[:3], Remove("B0MAIN0001"))
    assert (main.field, main.message) == (
        "asin", "B0MAIN0001 is the main product of this group; create a new group to change it")
    absent = refusal(COMPS[:4], Remove("B0COMP0006"))
    assert absent.kind == "missing"
    assert absent.message == "B0COMP0006 is not a competitor in this group"
    last = refusal(COMPS[:3], Remove("B0COMP0001"))
    assert (last.field, last.message, last.kind) == (
        "asin", "a group needs at least 3 competitors; add another before removing B0COMP0001",
        "invalid")


def test_refusals_become_the_api_errors() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_members(MAIN, COMPS[:5], Add(COMPS[5]))
    assert caught.value.details == [{"field": "competitor", "message": caught.value.message}]
    with pytest.raises(NotFound) as missing:
        check_members(MAIN, COMPS[:4], Remove("B0COMP0006"))
    assert missing.value.message == "B0COMP0006 is not a competitor in this group"


# ---------------------------------------------------------------- row mapping


def row(**kw: Any) -> SimpleNamespace:
    base: dict[str, Any] = dict(
        found=True, price=None, list_price=None, currency=None, buy_box_price=None,
        buy_box_seller=None, availability="in_stock", stock_count=None, rating=None,
        review_count=None, bsr_rank=None, bsr_category=None, subcategory_bsr=None,
        subcategory_ranks=[], title=None, details={}, image_count=None,
        data_source="sandbox", captured_at=NOW,
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_the_snapshot_mapper_keeps_unknowns_as_none() -> None:
    from decimal import Decimal

    snap = snapshot_from_row("B0MAIN0001", "com", row(
        price=Decimal("19.99"), rating=Decimal("4.40"), review_count=120,
        subcategory_ranks=[{"rank": 3, "category": "Earbud Headphones"}],
        details={"bullet_points": ["IPX7 waterproof", 5], "brand": "Acme"},
        availability="weird"))
    assert snap.price == 19.99 and isinstance(snap.price, float)
    assert snap.rating == 4.4 and snap.list_price is None and snap.bsr_rank is None
    assert snap.subcategory_ranks[0].rank == 3 and snap.subcategory_bsr == 3
    assert snap.bullet_points == ["IPX7 waterproof"]
    assert snap.availability is Availability.UNKNOWN and snap.data_source == "sandbox"
    assert snap.brand == "Acme"  # comparison and optimization read the same brand


def test_the_snapshot_mapper_reads_json_text_columns() -> None:
    snap = snapshot_from_row("B0MAIN0001", "com", row(
        subcategory_ranks='[{"rank": 7, "category": "X"}]',
        details='{"bullet_points": ["a", "b"]}'))
    assert snap.subcategory_ranks[0].rank == 7 and snap.bullet_points == ["a", "b"]


def test_history_point_from_its_json_array() -> None:
    point = history_point([NOW.timestamp(), 19.99, None, 18.5, "Acme", 1200, 4, 4.4, 310,
                           "in_stock"])
    assert point.captured_at == NOW and point.price == 19.99 and point.list_price is None
    assert point.buy_box_price == 18.5 and point.bsr_rank == 1200 and point.review_count == 310
    assert point.in_stock is True

    def stock(availability: str) -> bool | None:
        entry = [NOW.timestamp(), None, None, None, None, None, None, None, None, availability]
        return history_point(entry).in_stock

    assert stock("low_stock") is True and stock("out_of_stock") is False
    assert stock("unknown") is None


def test_overall_source() -> None:
    assert overall_source({"a": None, "b": None}) is None
    assert overall_source({"a": "apify", "b": "sandbox"}) == "sandbox"
    assert overall_source({"a": "apify", "b": None}) == "apify"


# ---------------------------------------------------------------- the report writer


def view(asin: str, price: float, rating: float, reviews: int, bsr: int) -> ProductView:
    snap = Snapshot(asin=asin, title=f"{asin} earbuds", price=price, rating=rating,
                    review_count=reviews, bsr_rank=bsr, bsr_category="Electronics",
                    availability=Availability.IN_STOCK,
                    bullet_points=["40 hours playtime", "IPX5 water resistant"])
    history = [HistoryPoint(NOW - timedelta(days=d), price=price, rating=rating,
                            review_count=reviews - d, bsr_rank=bsr) for d in range(10, -1, -1)]
    return ProductView(asin=asin, title=snap.title, snapshot=snap, history=history)


def analysis() -> Analysis:
    views = [view("B0MAIN0001", 39.99, 4.1, 900, 5000),
             view("B0COMP0001", 29.99, 4.5, 5000, 800),
             view("B0COMP0002", 24.99, 4.3, 2000, 2000),
             view("B0COMP0003", 34.99, 4.0, 300, 9000)]
    comparison = compare_group(views[0], views[1:], 30)
    feats = [features_from_snapshot(v.snapshot) for v in views if v.snapshot]
    return Analysis(comparison, compare_features(feats[0], feats[1:]), feats, "sandbox",
                    {v.asin: "sandbox" for v in views}, {v.asin: NOW for v in views})


class DictCache:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def put(self, key: str, value: str, ttl_s: int) -> None:
        self.data[key] = value


class FakeClient:
    model = "gpt-4o-mini"

    def __init__(self, text: str = "", error: str | None = None) -> None:
        self.text, self.error, self.calls = text, error, 0

    def complete_json(self, messages: Any, schema: Any, name: str) -> LLMResult[Any]:
        self.calls += 1
        return LLMResult(parsed=None, raw_text=self.text, usage=Usage(1000, 200),
                         cost_usd=0.00027, model="sandbox-gpt-4o-mini", sandbox=True,
                         error=self.error, latency_ms=12.0)


def good_answer(a: Analysis) -> str:
    report = rules_report(a.comparison, a.features).model_dump()
    report["summary"] = "Model wording of our numbers."
    return json.dumps(report)


def test_no_client_means_rules_with_the_reason() -> None:
    out = write_report(analysis(), None, DictCache())
    assert out.generated_by == "rules" and out.spend.cache is None
    assert out.fallback_reason == "no OpenAI API key configured: rules only"
    assert out.report.summary and out.report.recommendations


def test_model_answer_is_used_then_cached() -> None:
    a, cache = analysis(), DictCache()
    client = FakeClient(good_answer(a))
    first = write_report(a, client, cache)
    assert first.generated_by == "llm"
    assert first.spend.cache == "miss" and first.spend.sandbox is True
    assert first.report.summary == "Model wording of our numbers."
    spend = first.spend
    assert (spend.prompt_tokens, spend.completion_tokens, spend.cost_usd) == (1000, 200, 0.00027)
    assert first.spend.model == "sandbox-gpt-4o-mini" and first.fallback_reason is None
    assert list(cache.data) == [cache_key("gpt-4o-mini",
                                          build_report_messages(a.comparison, a.features))]
    second = write_report(analysis(), client, cache)
    assert client.calls == 1
    assert second.spend.cache == "hit" and second.report == first.report
    assert second.spend.prompt_tokens == 0 and second.spend.cost_usd == 0.0


@pytest.mark.parametrize("error", ["timeout: no answer within 0.5s", "rate_limited: HTTP 429",
                                   "server_error: HTTP 500", "invalid_json: cut off"])
def test_model_errors_fall_back_to_rules_and_are_not_cached(error: str) -> None:
    cache = DictCache()
    out = write_report(analysis(), FakeClient(error=error), cache)
    assert out.generated_by == "rules" and out.spend.cache == "miss"
    assert out.fallback_reason == f"model unavailable ({error})"
    assert out.spend.prompt_tokens == 1000  # what the failed call spent is still recorded
    assert cache.data == {}


@pytest.mark.parametrize("answer, code", [
    ("{not json", "invalid_json"),
    ('{"summary": "x"}', "schema_violation"),
])
def test_answers_that_do_not_validate_fall_back(answer: str, code: str) -> None:
    out = write_report(analysis(), FakeClient(answer), DictCache())
    assert out.generated_by == "rules" and out.fallback_reason
    assert out.fallback_reason.startswith(f"model answer rejected ({code}")


def test_an_answer_citing_a_metric_we_never_computed_is_rejected() -> None:
    a = analysis()
    data = json.loads(good_answer(a))
    data["strengths"] = [{"text": "Sales are up 40%.", "metric": "monthly_sales"}]
    out = write_report(a, FakeClient(json.dumps(data)), DictCache())
    assert out.generated_by == "rules"
    assert "unknown_metric" in (out.fallback_reason or "")


def test_cache_key_depends_on_model_and_messages() -> None:
    messages = [{"role": "user", "content": "x"}]
    assert cache_key("m", messages) == cache_key("m", [dict(messages[0])])
    assert cache_key("m", messages) != cache_key("n", messages)
    assert cache_key("m", messages).startswith("llm:report:") and len(
        cache_key("m", messages)) == len("llm:report:") + 64


# ---------------------------------------------------------------- response models


def same_json(model: type[BaseModel], data: Any) -> None:
    """The model reads the JSON as cached or stored and writes it back unchanged."""
    stored = json.loads(json.dumps(data))
    again = model.model_validate(stored).model_dump(mode="json")
    assert json.dumps(again, sort_keys=True) == json.dumps(stored, sort_keys=True)


def varied_group() -> tuple[GroupComparison, FeatureComparison, list[ProductFeatures]]:
    """Different features per product, a product never fetched and one not found."""
    main = view("B0MAIN0001", 39.99, 4.1, 900, 5000)
    main.snapshot.bullet_points = ["40 hours playtime, IPX5", "Bluetooth 5.3, USB-C charging",
                                   "Hybrid ANC up to 35dB"]
    rival = view("B0COMP0001", 29.99, 4.5, 5000, 800)
    rival.snapshot.bullet_points = ["60 hours total playtime", "IPX7 waterproof",
                                    "Wireless charging case, aptX"]
    flat = view("B0COMP0002", 24, 4, 2000, 2000)
    gone = ProductView("B0COMP0003", None, Snapshot(asin="B0COMP0003", found=False))
    never = ProductView("B0COMP0004", None, None)
    comparison = compare_group(main, [rival, flat, gone, never], 30)
    feats = [features_from_snapshot(v.snapshot) for v in (main, rival, flat)]
    feats += [ProductFeatures("B0COMP0003"), ProductFeatures("B0COMP0004")]
    return comparison, compare_features(feats[0], feats[1:]), feats


def test_the_comparison_models_round_trip_the_domain_json() -> None:
    comparison, features, products = varied_group()
    data = comparison.to_dict()
    assert data["competitors"][3]["product"]["price"] == {"value": None,
                                                          "reason": "never fetched"}
    assert "unit" in data["main"]["price"] and "leader" in data["competitors"][0]["gaps"][
        "price_gap"]
    assert features.to_dict()["main_lacks"] and features.to_dict()["numeric"]
    same_json(schemas.GroupComparison, data)
    same_json(schemas.FeatureComparison, features.to_dict())
    for product in products:
        same_json(schemas.ProductFeatures, product.to_dict())
    same_json(schemas.ReportInputs, {"comparison": data, "features": features.to_dict()})
    same_json(schemas.GroupComparison, compare_group(ProductView("B0MAIN0001", None, None),
                                                     [], 7).to_dict())


def test_the_report_model_round_trips_a_stored_report() -> None:
    a = analysis()
    same_json(PositioningReport, rules_report(a.comparison, a.features).model_dump())


# ---------------------------------------------------------------- jobs


@pytest.mark.parametrize("payload, reason", [
    ({}, "bad payload: report_id: Field required"),
    ({"report_id": "nope"}, "bad payload: report_id: Input should be a valid UUID"),
    ({"report_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "window": "7d"},
     "bad payload: window: Extra inputs are not permitted"),
])
def test_a_report_job_that_cannot_be_read_goes_to_the_dlq(payload: dict[str, Any],
                                                          reason: str) -> None:
    with pytest.raises(PermanentJobError) as caught:
        generate_report(payload, Delivery("report:x", 1, 3))
    assert str(caught.value).startswith(reason)


def test_the_weekly_plan_reads_its_schedule_input() -> None:
    with pytest.raises(PermanentJobError, match="window_days"):
        plan_weekly_reports({"job": "weekly_reports", "window_days": 0}, NOW)

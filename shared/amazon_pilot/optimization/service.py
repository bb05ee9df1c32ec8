"""Listing optimization's policy and orchestration: the glue between the store, the domain
and the model, and one function per route (the answers, near the end).

- ``score_of``: score_listing(latest snapshot, the competitor group's latest snapshots),
  with the group used (or a note that there is none).
- ``rule_suggestions``: score + feature gaps (domain.features) + suggest(); deterministic.
- ``word_suggestions``: the model rewrites the copy of the title and description
  suggestions (``llm_copy_messages`` + ``ListingCopy`` + ``apply_llm_copy``); scores and
  ranking stay ours. Cached under ``llm:copy:<sha256 of listing + group content>``, so the
  same listing and group never pay for a second model call. When the model fails the rules
  suggestions come back with ``generated_by="rules"`` and a ``fallback_reason``.
- ``run_suggestions``: one stored run, generated (the ``generate_suggestions`` job in
  jobs.py, low queue), idempotent per run.
- ``experiment_analysis``: analyze_experiment on the product's daily series against the
  group's competitors as control; ``past_changes``: find_past_changes for retroactive
  experiments.
- Reads (every GET) run in a read-only transaction and write nothing: a running
  experiment's analysis is computed on read, and its verdict is stored only on creation,
  on stop (the frozen final analysis) and by ``record_verdicts`` (the daily
  ``experiment_verdicts`` schedule, batches on the low queue).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import Connection

from amazon_pilot.domain.features import compare_features, display_name, features_from_snapshot
from amazon_pilot.domain.listing_score import ListingScore, score_listing
from amazon_pilot.domain.snapshot import HistoryPoint, Snapshot
from amazon_pilot.domain.spend import LLMSpend
from amazon_pilot.domain.suggestions import (
    ListingCopy,
    PricingAssessment,
    Suggestion,
    apply_llm_copy,
    assess_pricing,
    llm_copy_messages,
    suggest,
    unchanged_notes,
)
from amazon_pilot.optimization import store
from amazon_pilot.optimization.schemas import (
    RULES,
    SUGGESTION,
    Candidate,
    Candidates,
    Experiment,
    ExperimentDetail,
    ExperimentPage,
    GroupUsed,
    ListingScoreOut,
    NewExperiment,
    Run,
    RunDetail,
    RunPage,
    ScoreBrief,
    SuggestionOut,
    Summary,
    Usage,
)
from amazon_pilot.optimization.store import ExperimentRow, RunRow, SuggestionRow, TrackedProduct
from amazon_pilot.platform import outbox
from amazon_pilot.platform.cache import Cache, DbCache
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.errors import Conflict, NotFound, ValidationFailed
from amazon_pilot.platform.job_errors import RetryableJobError

SUGGEST_JOB = "generate_suggestions"
VERDICTS_JOB = "record_experiment_verdicts"
VERDICT_BATCH = 25  # experiments per job: about 50 ms of analysis each
COPY_SCHEMA_NAME = "listing_copy"
COPY_PROMPT_VERSION = 1  # bump when llm_copy_messages changes meaning: new cache keys
LLM_CACHE_TTL_S = 7 * 24 * 3600
HISTORY_DAYS = 90  # price history the pricing suggestion reads (elasticity)
EXPERIMENT_BEFORE_DAYS = 90
EXPERIMENT_AFTER_DAYS = 90
CANDIDATE_DAYS = 180
N_BOOT = 2000
CLOCK_SKEW = timedelta(minutes=5)
MAX_PAST = timedelta(days=365)
SUMMARY_EXPERIMENTS = 10
SANDBOX_NOTICE = ("sandbox output: written by the offline OpenAI stand-in, not a real model;"
                  " do not publish it as is")
NO_GROUP_NOTE = (
    "this product is the main product of none of your competitor groups, so no competitors "
    "were used: keyword coverage and price position are not scored, feature gaps are empty, "
    "pricing is judged from the product's own history only, and experiments have no control "
    "group (create one at POST /v1/competitor-groups)"
)


class NoData(LookupError):
    """The product has no stored observation yet."""


# ---------------------------------------------------------------- inputs


@dataclass(slots=True)
class Inputs:
    data: store.ListingData
    group: store.GroupRef | None
    notes: list[str] = field(default_factory=list)

    @property
    def product(self) -> Snapshot:
        if self.data.product is None:
            raise NoData("no observation of this product yet: wait for its first fetch")
        return self.data.product

    def group_dict(self) -> dict[str, Any] | None:
        if self.group is None:
            return None
        return {"id": str(self.group.id), "name": self.group.name,
                "competitors": [c.asin for c in self.group.competitors]}


def load_inputs(conn: Connection, tracked: TrackedProduct, *, since: datetime | None = None,
                until: datetime | None = None) -> Inputs:
    """A tracked product's listing, its group's competitors, and (with ``since``) history."""
    ref = tracked.ref
    group = store.product_group(conn, tracked.user_id, ref.product_id)
    comps = group.competitors if group is not None else []
    data = store.load_listing(conn, ref, comps, since=since, until=until)
    notes = [] if group is not None else [NO_GROUP_NOTE]
    have = {c.asin for c in data.competitors}
    notes += [f"competitor {c.asin} has no data yet and was left out"
              for c in comps if c.asin not in have and c.product_id != ref.product_id]
    return Inputs(data, group, notes)


def competitors_out(inputs: Inputs) -> list[dict[str, Any]]:
    return [{"asin": c.asin, "title": c.title, "brand": c.brand,
             "as_of": _iso(inputs.data.as_of.get(c.asin))} for c in inputs.data.competitors]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# ---------------------------------------------------------------- listing score


def score_of(conn: Connection, tracked: TrackedProduct) -> dict[str, Any]:
    """The score of the latest observation, every rule visible (raises NoData)."""
    inputs = load_inputs(conn, tracked)
    product = inputs.product
    score = score_listing(product, inputs.data.competitors)
    return {
        **score.to_dict(),
        "product_id": str(tracked.id),
        "as_of": _iso(inputs.data.as_of.get(product.asin)),
        "data_source": inputs.data.data_source,
        "competitor_group": inputs.group_dict(),
        "competitors": competitors_out(inputs),
        "notes": inputs.notes,
    }


# ---------------------------------------------------------------- rules


def _stated(name: str, labels: list[str]) -> str:
    """A feature in a seller's words: "battery life per charge: 30 h"; a theme or a label that only
    repeats the name is said once ("comfort", not "comfort (theme): COMFORT")."""
    shown = display_name(name).removesuffix(" (theme)")
    told = [label for label in labels if label.strip().lower() != shown.lower()]
    if name.startswith("theme_") or not told:
        return shown
    return f"{shown}: {', '.join(told)}"


def feature_gaps(product: Snapshot, competitors: Sequence[Snapshot],
                 top: int = 5) -> dict[str, list[str]] | None:
    """Feature comparison (domain.features) in the shape suggest() reads:
    ``{"only_main": [...], "missing": [...]}``, each item "<feature>: <how it is stated>".

    Missing features need >= 2 competitors stating them (1 when there is one competitor).
    No competitors: nothing to compare (empty lists). None when the extractor finds no
    feature in any listing (its lexicon is electronics-first), so suggest() falls back to
    comparing bullet keywords.
    """
    others = [c for c in competitors if c.found and c.asin != product.asin]
    if not others:
        return {"only_main": [], "missing": []}
    main = features_from_snapshot(product)
    comps = [features_from_snapshot(c) for c in others]
    if not main.features and not any(c.features for c in comps):
        return None
    cmp = compare_features(main, comps)
    need = 2 if len(comps) >= 2 else 1
    only = [_stated(n, [cmp.labels[n]]) for n in cmp.main_only]
    lacks = sorted((g for g in cmp.main_lacks if len(g.holders) >= need),
                   key=lambda g: -len(g.holders))  # stable: ties keep the attribute order
    missing = [_stated(g.name, sorted(set(g.labels.values()))[:3]) for g in lacks]
    return {"only_main": only[:top], "missing": missing[:top]}


@dataclass(slots=True)
class RuleOutcome:
    score: ListingScore
    suggestions: list[Suggestion]
    gaps: dict[str, list[str]] | None
    feature_source: str  # "features" | "bullet keywords"
    pricing: PricingAssessment


def rule_suggestions(product: Snapshot, competitors: Sequence[Snapshot],
                     history: list[HistoryPoint]) -> RuleOutcome:
    """Score, feature gaps and ranked rule-based suggestions (pure, deterministic)."""
    comps = list(competitors)
    score = score_listing(product, comps)
    gaps = feature_gaps(product, comps)
    pricing = assess_pricing(product, comps, history)
    ranked = suggest(product, comps, score, history, gaps, pricing=pricing)
    return RuleOutcome(score, ranked, gaps, "features" if gaps is not None else "bullet keywords",
                       pricing)


# ---------------------------------------------------------------- model copy


CopyCache = Cache  # the model's copy is cached like any other value


def _content(s: Snapshot) -> dict[str, Any]:
    return {"asin": s.asin, "brand": s.brand, "title": s.title,
            "bullets": list(s.bullet_points), "description": s.description}


def copy_input_hash(model: str, product: Snapshot, competitors: Sequence[Snapshot]) -> str:
    """sha256 of what the copy depends on: the listing's content and its group's content
    (plus the model and prompt version), not prices or ranks that move daily."""
    raw = json.dumps({"v": COPY_PROMPT_VERSION, "model": model, "listing": _content(product),
                      "group": sorted((_content(c) for c in competitors),
                                      key=lambda c: str(c["asin"]))},
                     sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(slots=True)
class CopyOutcome:
    suggestions: list[Suggestion]
    generated_by: str  # "llm" | "rules"
    fallback_reason: str | None = None
    input_hash: str | None = None
    spend: LLMSpend = field(default_factory=LLMSpend)


def _worded(ranked: list[Suggestion], copy: ListingCopy, input_hash: str,
            spend: LLMSpend, product: Snapshot, competitors: Sequence[Snapshot]
            ) -> CopyOutcome:
    out = apply_llm_copy(ranked, copy, product, competitors)
    rejected = sorted({p for s in out for p in s.evidence.get("llm_rejected", [])})
    repaired = sorted({p for s in out for p in s.evidence.get("llm_repaired", [])})
    if any(s.source == "llm" for s in out):
        # Part of the draft failed the grounding rule: say so though the rest was used.
        reason = "; ".join(
            ([f"model copy repaired ({'; '.join(repaired)})"] if repaired else [])
            + ([f"model copy partly rejected ({'; '.join(rejected)})"] if rejected else [])
        ) or None
        return CopyOutcome(out, "llm", reason, input_hash=input_hash, spend=spend)
    return CopyOutcome(out, "rules", f"model copy rejected ({'; '.join(rejected)})",
                       input_hash=input_hash, spend=spend)


def word_suggestions(product: Snapshot, competitors: Sequence[Snapshot],
                     ranked: list[Suggestion], client: Any,
                     cache: CopyCache | None = None) -> CopyOutcome:
    """The model's copy in the title/description suggestions, else the rules text with the
    reason. Never raises for model trouble; ``client`` is an LLMClient or None."""
    if client is None:
        return CopyOutcome(ranked, "rules", "no OpenAI API key configured: rules only")
    if not any(s.type in ("title", "description") for s in ranked):
        return CopyOutcome(ranked, "rules", "no title or description suggestion to word")
    cache = cache or DbCache()
    digest = copy_input_hash(client.model, product, competitors)
    key = f"llm:copy:{digest}"
    cached = cache.get(key)
    if cached is not None:
        try:
            entry = json.loads(cached)
            copy = ListingCopy.model_validate(entry["copy"])
        except (ValueError, KeyError, TypeError):
            pass  # an entry of an older shape: ask again
        else:
            return _worded(ranked, copy, digest, LLMSpend.cache_hit(
                entry.get("model"), bool(entry.get("sandbox"))), product, competitors)
    result = client.complete_json(llm_copy_messages(product, ranked), ListingCopy,
                                  COPY_SCHEMA_NAME)
    spent = result.spend
    if result.error is not None or result.parsed is None:
        reason = result.error or "empty_response: nothing parsed"
        return CopyOutcome(ranked, "rules", f"model unavailable ({reason})", input_hash=digest,
                           spend=spent)
    outcome = _worded(ranked, result.parsed, digest, spent, product, competitors)
    if outcome.generated_by == "llm":
        cache.put(key, json.dumps({"copy": result.parsed.model_dump(), "model": result.model,
                                   "sandbox": result.sandbox}), LLM_CACHE_TTL_S)
    return outcome


# ---------------------------------------------------------------- the job


def run_suggestions(run_id: UUID | str, client: Any = ..., *, max_attempts: int = 1
                    ) -> dict[str, Any]:
    """Generate one stored run (idempotent: a done run is left as it is). ``client``
    defaults to ``configured_client()`` (adapters.llm); tests and the demo may pass their own.
    A failure leaves the run queued for another try until its ``max_attempts``-th attempt
    (the queue's maxReceiveCount), which fails it for good."""
    rid = UUID(str(run_id))
    with transaction() as conn:
        row = store.claim_run(conn, rid)
        if row is None:
            return {"run_id": str(rid), "skipped": "run deleted"}
        if row.status == "done":
            return {"run_id": str(rid), "replayed": True}
        tracked = store.get_tracked(conn, row.tracked_product_id)
        if tracked is None:
            store.fail_run(conn, rid, "the tracked product was deleted", True)
            return {"run_id": str(rid), "skipped": "tracked product deleted"}
        since = datetime.now(UTC) - timedelta(days=HISTORY_DAYS)
        inputs = load_inputs(conn, tracked, since=since)
    try:
        product = inputs.product
        rules = rule_suggestions(product, inputs.data.competitors, inputs.data.history)
        owned = client is ...
        from amazon_pilot.adapters.llm import configured_client

        llm = configured_client() if owned else client
        try:
            outcome = word_suggestions(product, inputs.data.competitors, rules.suggestions, llm)
        finally:
            if owned and llm is not None:
                llm.close()
        values = {
            "group_id": None if inputs.group is None else inputs.group.id,
            "generated_by": outcome.generated_by, "fallback_reason": outcome.fallback_reason,
            "input_hash": outcome.input_hash, **outcome.spend.columns(),
            "data_source": inputs.data.data_source,
            "score": json.dumps(rules.score.to_dict()),
            "inputs": json.dumps({
                "competitor_group": inputs.group_dict(),
                "competitors": competitors_out(inputs),
                "feature_gaps": rules.gaps, "feature_source": rules.feature_source,
                "history_days": len(inputs.data.history),
                "notes": [*inputs.notes,
                          *unchanged_notes(product, rules.score, outcome.suggestions)],
                "pricing": rules.pricing.to_dict(),
                "as_of": _iso(inputs.data.as_of.get(product.asin)),
            }),
        }
        with transaction() as conn:
            store.finish_run(conn, rid, values, [s.to_dict() for s in outcome.suggestions])
    except NoData as exc:
        with transaction() as conn:
            store.fail_run(conn, rid, str(exc), True)
        return {"run_id": str(rid), "failed": str(exc)}
    except Exception as exc:
        final = int(row.attempts) >= max_attempts
        with transaction() as conn:
            store.fail_run(conn, rid, f"{type(exc).__name__}: {exc}", final)
        raise RetryableJobError(f"suggestion run {rid}: {exc!r}") from exc
    return {"run_id": str(rid), "generated_by": outcome.generated_by, "cache": outcome.spend.cache,
            "suggestions": len(outcome.suggestions), "fallback_reason": outcome.fallback_reason}


def suggest_job(run_id: UUID | str) -> tuple[str, dict[str, Any], str]:
    return SUGGEST_JOB, {"run_id": str(run_id)}, f"suggest:{run_id}"


def queue_suggestions(conn: Connection, run_id: UUID | str) -> None:
    job_type, payload, key = suggest_job(run_id)
    outbox.enqueue(conn, "low", job_type, payload, key)


# ---------------------------------------------------------------- experiments


def _our_seller(company: str | None, history: Sequence[HistoryPoint]) -> str | None:
    """The seller's company name when it appears as a Buy Box winner in the history."""
    if not company:
        return None
    name = company.strip().lower()
    seen = any(p.buy_box_seller and p.buy_box_seller.strip().lower() == name for p in history)
    return company if seen else None


def analyse_history(history: Sequence[HistoryPoint],
                    control_histories: Sequence[Sequence[HistoryPoint]], changed_on: date,
                    *, seed: int = 0, our_seller: str | None = None,
                    n_boot: int = N_BOOT) -> dict[str, Any]:
    """analyze_experiment on daily series, with find_past_changes() inside the after window
    reported as other changes (pure: the bench and the routes share it)."""
    # numpy comes with the analysis: imported on the first one, not at cold start
    from amazon_pilot.domain.experiments import (
        analyze_experiment,
        find_past_changes,
        series_from_history,
    )

    changes = find_past_changes(history)
    labelled = [(c.date, f"{c.kind} {c.old} -> {c.new}") for c in changes]
    result = analyze_experiment(
        series_from_history(history, our_seller),
        [series_from_history(h) for h in control_histories if h],
        changed_on, n_boot=n_boot, seed=seed, other_changes=labelled,
    )
    out = result.to_dict()
    after = result.after_window
    out["other_changes"] = [c.to_dict() for c in changes
                            if after is not None and after[0] <= c.date <= after[1]]
    if our_seller is None:
        out["warnings"].append("buy_box_share not analysed: set your company name to your "
                               "Amazon seller name to have it measured")
    return out


def control_series(control_histories: Sequence[Sequence[HistoryPoint]]
                   ) -> dict[str, list[dict[str, Any]]]:
    """The control's daily series per metric (the mean over the control products that
    have a value that day), for the experiment chart: what the product is compared with."""
    from amazon_pilot.domain.experiments import series_from_history

    sums: dict[str, dict[date, list[float]]] = {}
    for history in control_histories:
        for metric, points in series_from_history(history).items():
            for day, value in points:
                if value is not None:
                    sums.setdefault(metric, {}).setdefault(day, []).append(value)
    return {metric: [{"date": day.isoformat(), "value": sum(vs) / len(vs)}
                     for day, vs in sorted(days.items())]
            for metric, days in sums.items()}


def experiment_seed(exp_id: UUID) -> int:
    return zlib.crc32(exp_id.bytes)  # stable per experiment: the same answer on every read


def experiment_analysis(conn: Connection, exp: ExperimentRow, *,
                        until: datetime | None = None) -> tuple[dict[str, Any], Inputs]:
    """A fresh analysis of an experiment up to ``until`` (default now)."""
    tracked = store.get_tracked(conn, exp.tracked_product_id)
    if tracked is None:  # experiments go with their tracked product: a race at most
        raise NoData("the tracked product was deleted")
    changed = exp.changed_at.astimezone(UTC)
    end = min(until or datetime.now(UTC), changed + timedelta(days=EXPERIMENT_AFTER_DAYS + 1))
    since = changed - timedelta(days=EXPERIMENT_BEFORE_DAYS)
    inputs = load_inputs(conn, tracked, since=since, until=end)
    controls = list(inputs.data.competitor_history.values())
    analysis = analyse_history(
        inputs.data.history, controls, changed.date(), seed=experiment_seed(exp.id),
        our_seller=_our_seller(tracked.company_name, inputs.data.history))
    analysis["warnings"] = [*inputs.notes, *analysis["warnings"]]
    analysis["analysed_until"] = end.isoformat()
    analysis["data_source"] = inputs.data.data_source
    analysis["competitor_group"] = inputs.group_dict()
    analysis["control_series"] = control_series(controls)
    return analysis, inputs


def past_changes(conn: Connection, tracked: TrackedProduct, days: int = CANDIDATE_DAYS
                 ) -> tuple[list[dict[str, Any]], Inputs]:
    """Price, list-price and title changes found in the product's history, newest first,
    each with the ``changed_at`` to open an experiment on it."""
    since = datetime.now(UTC) - timedelta(days=days)
    inputs = load_inputs(conn, tracked, since=since)
    from amazon_pilot.domain.experiments import find_past_changes

    out = []
    for c in reversed(find_past_changes(inputs.data.history)):
        item = c.to_dict()
        item["changed_at"] = datetime(c.date.year, c.date.month, c.date.day,
                                      tzinfo=UTC).isoformat()
        item["change"] = f"{c.kind.replace('_', ' ')} changed from {c.old} to {c.new}"
        out.append(item)
    return out, inputs


# ---------------------------------------------------------------- answers (one per route)


def _run_out(row: RunRow, count: int) -> Run:
    return Run(
        id=row.id, product_id=row.tracked_product_id, status=row.status, trigger=row.trigger,
        generated_by=row.generated_by, fallback_reason=row.fallback_reason, model=row.model,
        sandbox=row.sandbox, cache=row.cache,
        usage=Usage.of(row.prompt_tokens, row.completion_tokens, row.cost_usd),
        llm_latency_ms=row.llm_latency_ms, data_source=row.data_source, error=row.error,
        attempts=row.attempts, suggestion_count=count, created_at=row.created_at,
        started_at=row.started_at, finished_at=row.finished_at,
    )


def _suggestion_out(row: SuggestionRow) -> SuggestionOut:
    return SUGGESTION.validate_python({
        "id": row.id, "type": row.type, "change": row.change, "reason": row.reason,
        "impact": row.impact, "impact_score": row.impact_score, "effort": row.effort,
        "effort_score": row.effort_score, "priority": row.priority, "source": row.source,
        "evidence": row.evidence or {}, "experiment_id": row.experiment_id,
    })


def _run_detail(row: RunRow, suggestions: list[SuggestionRow]) -> RunDetail:
    base = _run_out(row, len(suggestions)).model_dump()
    sandbox = bool(row.sandbox) or row.data_source == "sandbox"
    notice = SANDBOX_NOTICE if row.sandbox else (
        "sandbox data: the product data came from the offline stand-in" if sandbox else None)
    return RunDetail.model_validate({
        **base, "notice": notice, "suggestions": [_suggestion_out(s) for s in suggestions],
        "score": row.score, "inputs": row.inputs})


def _experiment_out(row: ExperimentRow) -> Experiment:
    return Experiment(
        id=row.id, product_id=row.tracked_product_id, asin=row.asin,
        suggestion_id=row.suggestion_id, change=row.change, changed_at=row.changed_at,
        status=row.status, verdict=row.verdict, analyzed_at=row.analyzed_at,
        created_at=row.created_at, stopped_at=row.stopped_at,
    )


def _with_analysis(conn: Connection, row: ExperimentRow, *, record: bool = False
                   ) -> ExperimentDetail:
    """The experiment with its analysis: the frozen one once stopped, else computed now.
    Only writes (the verdict, with analyzed_at) when ``record``: reads never do."""
    out = _experiment_out(row).model_dump()
    if row.status == "stopped" and row.final_analysis is not None:
        return ExperimentDetail.model_validate({**out, "analysis": row.final_analysis})
    analysis, _ = experiment_analysis(conn, row)
    if record:
        store.record_verdict(conn, row.id, analysis["verdict"])
    out.update(verdict=analysis["verdict"], analyzed_at=datetime.now(UTC))
    return ExperimentDetail.model_validate({**out, "analysis": analysis})


def listing_score(tracked: TrackedProduct) -> ListingScoreOut:
    """GET /v1/products/{id}/listing-score (409 before the product's first observation)."""
    with store.read_only() as conn:
        try:
            return ListingScoreOut.model_validate(score_of(conn, tracked))
        except NoData as exc:
            raise Conflict(str(exc)) from exc


def request_suggestions(tracked: TrackedProduct) -> RunDetail:
    """A new run, queued on the low queue with its row (the outbox); while a run of the
    product is queued or running (within the hour) that one is the answer."""
    if tracked.latest_captured_at is None:
        raise Conflict("no observation of this product yet: wait for its first fetch")
    with transaction() as conn:
        running = store.in_flight_run(conn, tracked.id)
        if running is not None:  # one run at a time per product: answer with that one
            current = store.get_run(conn, running.id)
            if current is not None:
                return _run_detail(current, [])
        run_id = store.insert_run(conn, tracked.user_id, tracked.id, tracked.product_id)
        row = store.get_run(conn, run_id)
        # the job is in the outbox with its row: sent once both are committed
        queue_suggestions(conn, run_id)
    assert row is not None  # inserted in the same transaction
    return _run_detail(row, [])


def list_runs(tracked: TrackedProduct, limit: int, offset: int) -> RunPage:
    with store.read_only() as conn:
        rows, total = store.list_runs(conn, tracked.id, limit, offset)
        counts = store.suggestion_counts(conn, [r.id for r in rows])
    return RunPage(items=[_run_out(r, counts.get(r.id, 0)) for r in rows], total=total,
                   limit=limit, offset=offset)


def run_detail(run: RunRow) -> RunDetail:
    with store.read_only() as conn:
        suggestions = store.run_suggestions(conn, [run.id])[run.id]
    return _run_detail(run, suggestions)


def summary(tracked: TrackedProduct) -> Summary:
    """Current score, the latest done run's open suggestions, the last experiments (running
    ones with a fresh verdict, not stored: a read writes nothing)."""
    with store.read_only() as conn:
        notes: list[str] = []
        score: ScoreBrief | None = None
        group: dict[str, Any] | None = None
        try:
            full = score_of(conn, tracked)
        except NoData as exc:
            notes.append(str(exc))
        else:
            failing = RULES.validate_python(
                [r for r in full["rules"] if r["applicable"] and not r["passed"]])
            score = ScoreBrief(total=full["total"], grade=full["grade"], failing_rules=failing)
            group, notes = full["competitor_group"], list(full["notes"])
        latest = store.latest_done_run(conn, tracked.id)
        open_: list[SuggestionOut] = []
        latest_out: Run | None = None
        if latest is not None:
            rows = store.run_suggestions(conn, [latest.id])[latest.id]
            latest_out = _run_out(latest, len(rows))
            open_ = [_suggestion_out(s) for s in rows if s.experiment_id is None]
        exps, _ = store.list_experiments(conn, tracked.user_id, tracked_id=tracked.id,
                                         status=None, limit=SUMMARY_EXPERIMENTS, offset=0)
        experiments = [
            _with_analysis(conn, e) if e.status == "running" else _experiment_out(e)
            for e in exps
        ]
    return Summary(
        product_id=tracked.id, asin=tracked.asin, score=score, latest_run=latest_out,
        open_suggestions=open_,
        experiments=[Experiment(**e.model_dump(exclude={"analysis"})) for e in experiments],
        competitor_group=None if group is None else GroupUsed(**group), notes=notes,
    )


def experiment_candidates(user_id: UUID, tracked_id: UUID, days: int) -> Candidates:
    with store.read_only() as conn:
        tracked = store.tracked_of(conn, user_id, tracked_id)
        if tracked is None:
            raise NotFound("no such tracked product")
        items, inputs = past_changes(conn, tracked, days)
    return Candidates(product_id=tracked.id, asin=tracked.asin, days=days,
                      items=[Candidate(**i) for i in items],
                      data_source=inputs.data.data_source)


def _checked_change(body: NewExperiment, now: datetime) -> tuple[str, datetime]:
    """The change text and when it happened, or the 422 that says what is wrong."""
    changed_at = body.changed_at or now
    if changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    if changed_at > now + CLOCK_SKEW:
        raise ValidationFailed("changed_at is in the future: an experiment measures a change"
                               " that has happened",
                               details=[{"field": "changed_at", "message": "in the future"}])
    if changed_at < now - MAX_PAST:
        raise ValidationFailed("changed_at is more than 365 days ago",
                               details=[{"field": "changed_at", "message": "over 365 days ago"}])
    change = body.change.strip()
    if "\x00" in change:
        raise ValidationFailed("change must not contain NUL characters",
                               details=[{"field": "change", "message": "contains NUL"}])
    if not change:
        raise ValidationFailed("change must describe what was changed",
                               details=[{"field": "change", "message": "blank"}])
    return change, min(changed_at, now)


def create_experiment(user_id: UUID, body: NewExperiment) -> ExperimentDetail:
    """A new running experiment on the seller's product (and suggestion), with its first
    analysis and that analysis's verdict stored."""
    change, changed_at = _checked_change(body, datetime.now(UTC))
    with transaction() as conn:
        tracked = store.tracked_of(conn, user_id, body.product_id)
        if tracked is None:
            raise NotFound("no such tracked product")
        if body.suggestion_id is not None:
            s = store.get_suggestion(conn, body.suggestion_id)
            if s is None or s.user_id != user_id or s.tracked_product_id != body.product_id:
                message = f"unknown suggestion id {body.suggestion_id} for this product"
                raise ValidationFailed(message, details=[{"field": "suggestion_id",
                                                          "message": "unknown suggestion id"}])
        exp_id = store.insert_experiment(conn, user_id, body.product_id, tracked.product_id,
                                         body.suggestion_id, change, changed_at)
        row = store.get_experiment(conn, exp_id)
        assert row is not None  # inserted in this transaction
        return _with_analysis(conn, row, record=True)


def list_experiments(user_id: UUID, tracked_id: UUID | None,
                     status: Literal["running", "stopped"] | None, limit: int, offset: int
                     ) -> ExperimentPage:
    with store.read_only() as conn:
        rows, total = store.list_experiments(conn, user_id, tracked_id=tracked_id,
                                             status=status, limit=limit, offset=offset)
    return ExperimentPage(items=[_experiment_out(r) for r in rows], total=total, limit=limit,
                          offset=offset)


def experiment_detail(exp: ExperimentRow) -> ExperimentDetail:
    """A running experiment's analysis as of now (its stored verdict is left as it is);
    a stopped one's frozen analysis."""
    with store.read_only() as conn:
        return _with_analysis(conn, exp)


def stop_experiment(exp: ExperimentRow) -> ExperimentDetail:
    """Freeze the analysis up to now (stopping again changes nothing)."""
    with transaction() as conn:
        row = store.get_experiment(conn, exp.id, lock=True)  # the row to change, locked
        if row is None:
            raise NotFound("no such experiment")
        if row.status == "running":
            now = datetime.now(UTC)
            analysis, _ = experiment_analysis(conn, row, until=now)
            store.stop_experiment(conn, row.id, now, analysis)
            row = store.get_experiment(conn, row.id)
            assert row is not None
        return _with_analysis(conn, row)


# ---------------------------------------------------------------- stored verdicts


def plan_verdicts(now: datetime) -> dict[str, Any]:
    """Queue the daily re-analysis of running experiments (low queue, batches): the stored
    verdict follows the data that arrived since. Experiments whose after window had closed
    when they were last analysed are left out: their analysis no longer changes."""
    with store.read_only() as conn:
        ids = store.experiments_to_reanalyse(
            conn, timedelta(days=EXPERIMENT_AFTER_DAYS + 1))
    batches = [ids[i:i + VERDICT_BATCH] for i in range(0, len(ids), VERDICT_BATCH)]
    day = now.date().isoformat()
    with transaction() as conn:
        sent = outbox.enqueue_many(conn, "low", (
            (VERDICTS_JOB, {"experiment_ids": [str(i) for i in batch]}, f"verdicts:{day}:{n}")
            for n, batch in enumerate(batches)))
    return {"experiments": len(ids), "batches": sent}


def record_verdicts(experiment_ids: Sequence[UUID]) -> dict[str, int]:
    """Analyse each running experiment up to now and store its verdict (with analyzed_at);
    one transaction each, the row locked so a concurrent stop wins cleanly."""
    recorded = skipped = 0
    for exp_id in experiment_ids:
        with transaction() as conn:
            row = store.get_experiment(conn, exp_id, lock=True)
            if row is None or row.status != "running":
                skipped += 1
                continue
            try:
                analysis, _ = experiment_analysis(conn, row)
            except NoData:
                skipped += 1
                continue
            store.record_verdict(conn, row.id, analysis["verdict"])
            recorded += 1
    return {"recorded": recorded, "skipped": skipped}

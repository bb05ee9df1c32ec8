"""Listing optimization: the glue between storage, the domain and the model.

- ``listing_score``: score_listing(latest snapshot, the competitor group's latest
  snapshots), with the group used (or a note that there is none).
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
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from amazon_pilot.domain.features import compare_features, display_name, features_from_snapshot
from amazon_pilot.domain.listing_score import ListingScore, score_listing
from amazon_pilot.domain.snapshot import HistoryPoint, Snapshot
from amazon_pilot.domain.suggestions import (
    ListingCopy,
    Suggestion,
    apply_llm_copy,
    llm_copy_messages,
    suggest,
)
from amazon_pilot.optimization import store as db
from amazon_pilot.platform.cache import Cache, DbCache
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.job_errors import RetryableJobError

SUGGEST_JOB = "generate_suggestions"
COPY_SCHEMA_NAME = "listing_copy"
COPY_PROMPT_VERSION = 1  # bump when llm_copy_messages changes meaning: new cache keys
LLM_CACHE_TTL_S = 7 * 24 * 3600
HISTORY_DAYS = 90  # price history the pricing suggestion reads (elasticity)
EXPERIMENT_BEFORE_DAYS = 90
EXPERIMENT_AFTER_DAYS = 90
CANDIDATE_DAYS = 180
N_BOOT = 2000
NO_GROUP_NOTE = (
    "this product is the main product of none of your competitor groups, so no competitors "
    "were used: keyword coverage and price position are not scored, feature gaps are empty, "
    "and experiments have no control group (create one at POST /v1/competitor-groups)"
)


class NoData(LookupError):
    """The product has no stored observation yet."""


# ---------------------------------------------------------------- inputs


@dataclass(slots=True)
class Inputs:
    data: db.ListingData
    group: db.GroupRef | None
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


def load_inputs(conn: Connection, tracked: Any, *, since: datetime | None = None,
                until: datetime | None = None) -> Inputs:
    """A tracked product's listing, its group's competitors, and (with ``since``) history."""
    ref = db.ProductRef(int(tracked.product_id), tracked.asin, tracked.marketplace)
    group = db.product_group(conn, tracked.user_id, ref.product_id)
    comps = group.competitors if group is not None else []
    data = db.load_listing(conn, ref, comps, since=since, until=until)
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


def listing_score(conn: Connection, tracked: Any) -> dict[str, Any]:
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
    only = [f"{display_name(n)}: {cmp.labels[n]}" for n in cmp.main_only]
    lacks = sorted((g for g in cmp.main_lacks if len(g.holders) >= need),
                   key=lambda g: -len(g.holders))  # stable: ties keep the attribute order
    missing = [f"{display_name(g.name)}: {', '.join(sorted(set(g.labels.values()))[:3])}"
               for g in lacks]
    return {"only_main": only[:top], "missing": missing[:top]}


@dataclass(slots=True)
class RuleOutcome:
    score: ListingScore
    suggestions: list[Suggestion]
    gaps: dict[str, list[str]] | None
    feature_source: str  # "features" | "bullet keywords"


def rule_suggestions(product: Snapshot, competitors: Sequence[Snapshot],
                     history: list[HistoryPoint]) -> RuleOutcome:
    """Score, feature gaps and ranked rule-based suggestions (pure, deterministic)."""
    comps = list(competitors)
    score = score_listing(product, comps)
    gaps = feature_gaps(product, comps)
    ranked = suggest(product, comps, score, history, gaps)
    return RuleOutcome(score, ranked, gaps, "features" if gaps is not None else "bullet keywords")


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
    model: str | None = None
    sandbox: bool | None = None
    cache: str | None = None  # "hit" | "miss"; None when no model was asked
    input_hash: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: float | None = None


def _worded(ranked: list[Suggestion], copy: ListingCopy, **kw: Any) -> CopyOutcome:
    out = apply_llm_copy(ranked, copy)
    if any(s.source == "llm" for s in out):
        return CopyOutcome(out, "llm", **kw)
    rejected = sorted({p for s in out for p in s.evidence.get("llm_rejected", [])})
    return CopyOutcome(out, "rules", f"model copy rejected ({'; '.join(rejected)})", **kw)


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
            return _worded(ranked, copy, model=entry.get("model"),
                           sandbox=bool(entry.get("sandbox")), cache="hit", input_hash=digest,
                           cost_usd=0.0)
    result = client.complete_json(llm_copy_messages(product, ranked), ListingCopy,
                                  COPY_SCHEMA_NAME)
    spent: dict[str, Any] = {
        "model": result.model, "sandbox": result.sandbox, "cache": "miss", "input_hash": digest,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "cost_usd": result.cost_usd, "latency_ms": result.latency_ms,
    }
    if result.error is not None or result.parsed is None:
        reason = result.error or "empty_response: nothing parsed"
        return CopyOutcome(ranked, "rules", f"model unavailable ({reason})", **spent)
    outcome = _worded(ranked, result.parsed, **spent)
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
        row = db.claim_run(conn, rid)
        if row is None:
            return {"run_id": str(rid), "skipped": "run deleted"}
        if row.status == "done":
            return {"run_id": str(rid), "replayed": True}
        tracked = db.get_tracked(conn, row.tracked_product_id)
        if tracked is None:
            db.fail_run(conn, rid, "the tracked product was deleted", True)
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
            "generated_by": outcome.generated_by, "model": outcome.model,
            "sandbox": outcome.sandbox, "fallback_reason": outcome.fallback_reason,
            "cache": outcome.cache, "input_hash": outcome.input_hash,
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens, "cost_usd": outcome.cost_usd,
            "llm_latency_ms": None if outcome.latency_ms is None else int(outcome.latency_ms),
            "data_source": inputs.data.data_source,
            "score": json.dumps(rules.score.to_dict()),
            "inputs": json.dumps({
                "competitor_group": inputs.group_dict(),
                "competitors": competitors_out(inputs),
                "feature_gaps": rules.gaps, "feature_source": rules.feature_source,
                "history_days": len(inputs.data.history), "notes": inputs.notes,
                "as_of": _iso(inputs.data.as_of.get(product.asin)),
            }),
        }
        with transaction() as conn:
            db.finish_run(conn, rid, values, [s.to_dict() for s in outcome.suggestions])
    except NoData as exc:
        with transaction() as conn:
            db.fail_run(conn, rid, str(exc), True)
        return {"run_id": str(rid), "failed": str(exc)}
    except Exception as exc:
        final = int(row.attempts) >= max_attempts
        with transaction() as conn:
            db.fail_run(conn, rid, f"{type(exc).__name__}: {exc}", final)
        raise RetryableJobError(f"suggestion run {rid}: {exc!r}") from exc
    return {"run_id": str(rid), "generated_by": outcome.generated_by, "cache": outcome.cache,
            "suggestions": len(outcome.suggestions), "fallback_reason": outcome.fallback_reason}


def suggest_job(run_id: UUID | str) -> tuple[str, dict[str, Any], str]:
    return SUGGEST_JOB, {"run_id": str(run_id)}, f"suggest:{run_id}"


def queue_suggestions(run_id: UUID | str) -> None:
    from amazon_pilot.adapters.queues import enqueue

    job_type, payload, key = suggest_job(run_id)
    enqueue("low", job_type, payload, key)


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


def experiment_seed(exp_id: UUID) -> int:
    return zlib.crc32(exp_id.bytes)  # stable per experiment: the same answer on every read


def experiment_analysis(conn: Connection, exp: Any, *, until: datetime | None = None
                        ) -> tuple[dict[str, Any], Inputs]:
    """A fresh analysis of an experiment up to ``until`` (default now)."""
    tracked = db.get_tracked(conn, exp.tracked_product_id)
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
    return analysis, inputs


def past_changes(conn: Connection, tracked: Any, days: int = CANDIDATE_DAYS
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

"""Golden outputs of the listing score and the rule suggestions, to prove a speed change kept
them identical.

    python -m pilot_dev.optim_golden --write /tmp/golden.jsonl   # before the change
    python -m pilot_dev.optim_golden --check /tmp/golden.jsonl   # after it: exit 1 on a diff

The cases are the stand-in catalog's products of every category (5 competitors of the same
category each, in three marketplaces so non-ASCII text is read too) plus the synthetic
products of bench/bench_optimization.py. Each line is one product's score, features, gaps,
pricing and suggestions as JSON; every case is computed twice (cold caches, then warm), and
the two must agree as well.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from amazon_pilot.domain.features import features_from_snapshot
from amazon_pilot.domain.normalize import normalize_item
from amazon_pilot.domain.snapshot import HistoryPoint, Snapshot
from amazon_pilot.optimization.service import rule_suggestions
from pilot_dev.standins.apify_catalog import CATEGORIES, demo_asins, item_for

Case = tuple[str, Snapshot, list[Snapshot], list[HistoryPoint]]
_DAY = date(2026, 11, 1)
_MARKETPLACES = ("com", "de", "co.jp")
_VOCABULARY = ("insulated stainless steel water bottle straw lid leak proof vacuum double wall"
               " bpa free wide mouth sports gym travel cold hot coffee tumbler handle dishwasher"
               " safe 32 oz 1000ml 20W usb-c ipx7 40 hours bluetooth 5.3 noise cancelling")
_WORDS = _VOCABULARY.split()


def _history(r: random.Random) -> list[HistoryPoint]:
    t0 = datetime(2026, 8, 1, 12, tzinfo=UTC)
    price, bsr, out = 29.99, 4000, []
    for d in range(90):
        if r.random() < 0.05:
            price = round(price * r.uniform(0.85, 1.15), 2)
        bsr = max(1, int(bsr * math.exp(r.gauss(0, 0.1))))
        out.append(HistoryPoint(captured_at=t0 + timedelta(days=d), price=price, bsr_rank=bsr))
    return out


def _catalog_cases(per_category: int) -> Iterator[Case]:
    r = random.Random(11)
    for mp in _MARKETPLACES:
        for category in CATEGORIES:
            asins = demo_asins(category, per_category + 5)
            snaps = [normalize_item(item_for(a, mp, _DAY), marketplace=mp) for a in asins]
            for i in range(per_category):
                yield f"{mp}:{asins[i]}", snaps[i], snaps[i + 1 : i + 6], _history(r)


def _synthetic(r: random.Random, asin: str, brand: str) -> Snapshot:
    n_img = r.randint(2, 9)
    return Snapshot(
        asin=asin, brand=brand,
        title=f"{brand} " + " ".join(r.sample(_WORDS, r.randint(6, 18))).title(),
        price=round(r.uniform(15, 45), 2), rating=round(r.uniform(3.4, 4.9), 1),
        review_count=r.randint(0, 20000), bsr_rank=r.randint(50, 200000),
        bullet_points=[" ".join(r.choices(_WORDS, k=r.randint(12, 40))).capitalize() + "."
                       for _ in range(r.randint(2, 6))],
        description=" ".join(r.choices(_WORDS, k=r.randint(0, 120))) or None,
        image_urls=[f"https://m.media-amazon.com/images/I/{asin}{i}.jpg" for i in range(n_img)],
        image_count=n_img, video_count=r.randint(0, 1))


def _synthetic_cases(n: int) -> Iterator[Case]:
    r = random.Random(7)
    comps: list[Snapshot] = []
    for i in range(n):
        product = _synthetic(r, f"B0P{i:07d}", "HydroPeak")
        if i % 3 == 0:  # a third of the products share their rivals with the next two
            comps = [_synthetic(r, f"B0C{i:05d}{j}", f"Rival{j}") for j in range(5)]
        yield f"synthetic:{product.asin}", product, comps, _history(r)


def cases(per_category: int = 60, synthetic: int = 200) -> list[Case]:
    return [*_catalog_cases(per_category), *_synthetic_cases(synthetic)]


def outcome(product: Snapshot, comps: list[Snapshot], history: list[HistoryPoint]
            ) -> dict[str, Any]:
    """Everything a user sees of one product's score and suggestions."""
    result = rule_suggestions(product, comps, history)
    return {
        "score": result.score.to_dict(),
        "features": [features_from_snapshot(s).to_dict() for s in (product, *comps)],
        "gaps": result.gaps,
        "feature_source": result.feature_source,
        "pricing": result.pricing.to_dict(),
        "suggestions": [s.to_dict() for s in result.suggestions],
    }


def lines(all_cases: list[Case]) -> list[str]:
    out = []
    for key, product, comps, history in all_cases:
        first = json.dumps(outcome(product, comps, history), sort_keys=True, default=str)
        again = json.dumps(outcome(product, comps, history), sort_keys=True, default=str)
        if again != first:
            raise SystemExit(f"{key}: a second computation (warm caches) differs from the first")
        out.append(f"{key}\t{first}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", type=Path, help="write the golden outputs here")
    what.add_argument("--check", type=Path, help="compare with golden outputs written before")
    args = parser.parse_args(argv)
    now = lines(cases())
    if args.write is not None:
        args.write.write_text("\n".join(now) + "\n")
        print(f"{len(now)} golden outputs written to {args.write}")
        return 0
    before = args.check.read_text().splitlines()
    if len(before) != len(now):
        print(f"{len(now)} cases now, {len(before)} in {args.check}")
        return 1
    differ = [b.split("\t", 1)[0] for b, n in zip(before, now, strict=True) if b != n]
    print(f"{len(now) - len(differ)} of {len(now)} outputs identical to {args.check}")
    for key in differ[:10]:
        print(f"differs: {key}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

"""Recorded actor runs, replayed: the Apify stand-in answers from dataset exports.

An export is what Apify's console or API gives for a run's dataset: a JSON array of the
items exactly as the actor emitted them. Replaying one sends real item shapes (any actor's
format, with their quirks) through the unchanged path: apify-client, run polling, dataset
paging, normalization, attribution, storage, change detection and alerts.

For each requested URL a run answers with the recorded items whose `url` names the same
ASIN and marketplace (all of them, in recorded order: actors do emit duplicates), else
the actor's not-found item. A recorded item that names no product URL at all (an HTML
error page, a malformed item) was not asked for by anybody, so it cannot be matched: it is
served in every run, as it would stand in the dataset of the run it came from.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from amazon_pilot.domain.product_ref import InvalidProductRef, parse_product_ref
from pilot_dev.standins.apify_catalog import not_found_item

Key = tuple[str, str]  # (asin, marketplace)


class ReplayError(ValueError):
    """An export that cannot be replayed (missing, not JSON, not an array)."""


def _key_of_url(url: object) -> Key | None:
    if not isinstance(url, str):
        return None
    try:
        return parse_product_ref(url)
    except InvalidProductRef:
        return None


class Recording:
    """The items of one or more dataset exports, by the product their `url` names."""

    def __init__(self, paths: Iterable[Path | str]) -> None:
        self.paths = [Path(p) for p in paths]
        self.by_product: dict[Key, list[Any]] = {}
        self.unmatched: list[Any] = []  # items that name no product URL
        for path in self.paths:
            for item in _load(path):
                key = _key_of_url(item.get("url")) if isinstance(item, dict) else None
                if key is None:
                    self.unmatched.append(item)
                else:
                    self.by_product.setdefault(key, []).append(item)

    @classmethod
    def from_setting(cls, value: str | None) -> Recording | None:
        """APIFY_REPLAY=FILE[,FILE...] (empty: no replay)."""
        files = [part.strip() for part in (value or "").split(",") if part.strip()]
        return cls(files) if files else None

    def items_for(self, urls: list[str]) -> list[Any]:
        """The dataset a run for these URLs would have produced."""
        items: list[Any] = []
        for url in urls:
            key = _key_of_url(url)
            recorded = self.by_product.get(key) if key is not None else None
            if recorded:
                items.extend(_labelled(item) for item in recorded)
            else:
                items.append(not_found_item(url, key[0] if key else None))
        items.extend(_labelled(item) for item in self.unmatched)
        return items

    def describe(self) -> dict[str, Any]:
        return {"files": [str(p) for p in self.paths], "products": len(self.by_product),
                "items": sum(len(v) for v in self.by_product.values()) + len(self.unmatched),
                "unmatched": len(self.unmatched)}


def _load(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReplayError(f"APIFY_REPLAY: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplayError(f"APIFY_REPLAY: {path} is not a JSON dataset export: {exc}") from None
    if not isinstance(data, list):
        raise ReplayError(f"APIFY_REPLAY: {path} is not a dataset export (a JSON array of "
                          f"items), it is a JSON {type(data).__name__}")
    return data


def _labelled(item: Any) -> Any:
    """A copy of the recorded item, labelled sandbox: it did not come from Apify today."""
    if isinstance(item, dict):
        out = copy.deepcopy(item)
        out["sandbox"] = True
        return out
    return copy.deepcopy(item)

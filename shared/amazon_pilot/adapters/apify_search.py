"""Search-results pages through an Apify search actor (keyword rank tracking).

One `search` = one actor run for a marketplace's terms: start the run, wait, read its
dataset, read each item as a result card (domain.keyword_ranks.read_search_item). The run
machinery (apify-client, waiting, aborting, error mapping) is the product fetcher's.

Input: ``{"keywords": [...], "marketplace": "amazon.<code>", "maxPages": 1}``, the
shape the Store's keyword search actors take (docs/keywords.md names the actor and its
output fields); `input_builder` replaces it (the local tools add the stand-in's day).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from amazon_pilot.adapters.apify import ApifyProductFetcher, ApifyRunError, FetchResult
from amazon_pilot.domain.keyword_ranks import SearchCard, read_search_item

SearchInputBuilder = Callable[[list[str], str], dict[str, Any]]


def search_input(terms: list[str], marketplace: str) -> dict[str, Any]:
    return {"keywords": list(terms), "marketplace": f"amazon.{marketplace}", "maxPages": 1}


@dataclass
class SearchResult:
    run: FetchResult
    cards: list[SearchCard] = field(default_factory=list)
    ignored: int = 0  # items that are no result card (error rows, per-search summaries)
    sandbox: bool = False


class ApifySearchFetcher:
    def __init__(self, token: str, api_url: str | None, actor_id: str, *,
                 input_builder: SearchInputBuilder | None = None,
                 max_retries: int = 4, min_delay_between_retries_millis: int = 500) -> None:
        self._runner = ApifyProductFetcher(
            token, api_url, actor_id=actor_id, input_builder=lambda urls: {},
            max_retries=max_retries,
            min_delay_between_retries_millis=min_delay_between_retries_millis)
        self.actor_id = actor_id
        self.input_builder = input_builder or search_input

    def search(self, marketplace: str, terms: list[str]) -> SearchResult:
        runner = self._runner
        runner.input_builder = lambda _ignored: self.input_builder(terms, marketplace)
        run = runner._run(list(terms))
        record = runner._record(run, len(terms))
        if record.status != "SUCCEEDED":
            raise ApifyRunError(record.run_id, record.status,
                                record.status_message or "no message", record)
        items = runner._read_items(record)
        record.item_count = len(items)
        out = SearchResult(record)
        for item in items:
            card = read_search_item(item)
            if isinstance(item, dict) and item.get("sandbox") is True:
                out.sandbox = True
            if card is None:
                out.ignored += 1
            else:
                out.cards.append(card)
        return out

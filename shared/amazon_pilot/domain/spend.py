"""What asking the model cost for one report or suggestion run: one value type for the
spend that both are stored with, shown with, and totalled by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True)
class LLMSpend:
    model: str | None = None
    sandbox: bool | None = None
    cache: str | None = None  # "hit" | "miss"; None when no model was asked
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # None when the model is not in the price table
    latency_ms: float | None = None

    @classmethod
    def cache_hit(cls, model: str | None, sandbox: bool) -> LLMSpend:
        """An answer from the cache: nothing spent."""
        return cls(model, sandbox, "hit", cost_usd=0.0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def columns(self) -> dict[str, Any]:
        """The spend columns that reports and suggestion runs share."""
        return {"model": self.model, "sandbox": self.sandbox, "cache": self.cache,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": self.cost_usd,
                "llm_latency_ms": None if self.latency_ms is None else int(self.latency_ms)}

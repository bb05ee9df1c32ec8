"""The base of every request body and job payload model, and the response models that more
than one capability answers with."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A field the model does not know is an error (422 in a request, the DLQ in a job),
    never silently dropped: a typo in a threshold must not be taken for "unchanged"."""

    model_config = ConfigDict(extra="forbid")


class Usage(BaseModel):
    """What the model cost for a report or a suggestion run (columns every such row has)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float | None

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int,
           cost_usd: Decimal | float | None) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   total_tokens=prompt_tokens + completion_tokens,
                   cost_usd=None if cost_usd is None else float(cost_usd))

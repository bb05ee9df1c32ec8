"""The base of every request body and job payload model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A field the model does not know is an error (422 in a request, the DLQ in a job),
    never silently dropped: a typo in a threshold must not be taken for "unchanged"."""

    model_config = ConfigDict(extra="forbid")

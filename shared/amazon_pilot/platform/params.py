"""Query parameters shared by the list routes (each route keeps its own page-size bound)."""

from typing import Annotated

from fastapi import Query

Offset = Annotated[int, Query(ge=0, le=1_000_000)]

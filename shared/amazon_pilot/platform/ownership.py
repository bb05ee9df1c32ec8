"""Ownership checks as route dependencies: "exists and belongs to the caller, else 404".

    OwnedGroup = Annotated[GroupRow, Depends(owned("group_id", store.load_group, "group"))]

    @router.get("/v1/competitors/{group_id}")
    async def get_group(group: OwnedGroup) -> Group: ...

The 404 never says whether the id exists for somebody else (BOLA: ids stay secret).
Routes that must lock the row for a change still re-read it in their transaction;
the dependency answers the common question once, before any work starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from fastapi import Depends, Path

from amazon_pilot.platform.errors import NotFound
from amazon_pilot.platform.security import CurrentUser, current_user

Row = TypeVar("Row")
Loader = Callable[[UUID, UUID], Row | None]  # (owner's user id, object id) -> row or None


def owned(param: str, load: Loader[Row], message: str) -> Callable[..., Awaitable[Row]]:
    """A dependency reading path parameter `param` (a UUID; anything else is FastAPI's
    422) and returning `load(user.id, id)`, or answering 404 with `message`."""

    async def dependency(**values: Any) -> Row:
        user: CurrentUser = values["user"]
        row = load(user.id, values[param])
        if row is None:
            raise NotFound(message)
        return row

    dependency.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, annotation=UUID,
                          default=Path()),
        inspect.Parameter("user", inspect.Parameter.KEYWORD_ONLY, annotation=CurrentUser,
                          default=Depends(current_user)),
    ])
    dependency.__name__ = f"owned_{param}"
    return dependency

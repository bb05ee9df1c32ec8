"""platform.fastapi_v1_check skips FastAPI's pydantic.v1 import while no v1 model can
exist; a v1 model must still be refused when a route declares one."""

from __future__ import annotations

import warnings

import pytest
from fastapi import APIRouter
from fastapi.exceptions import PydanticV1NotSupportedError

from amazon_pilot.platform import fastapi_v1_check


def test_a_pydantic_v1_response_model_is_still_refused() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydantic import v1

    class OldItem(v1.BaseModel):
        name: str

    assert fastapi_v1_check.is_pydantic_v1_model_class(OldItem)
    router = APIRouter()
    with pytest.raises(PydanticV1NotSupportedError):
        @router.get("/old", response_model=OldItem)
        async def old() -> dict[str, str]:
            return {"name": "x"}

"""FastAPI's pydantic.v1 check without importing pydantic.v1 when nothing could be v1.

FastAPI rejects pydantic.v1 models at route declaration: every field of every route (path
and query parameters included) goes through `is_pydantic_v1_model_class`, which imports
`pydantic.v1` to compare against its BaseModel — ≈ 25 ms of each API function's cold
start, for a package none of our code uses. A class can only derive from
`pydantic.v1.BaseModel` once `pydantic.v1` has been imported, so while it is absent from
`sys.modules` the answer is "no" without the import; once present, FastAPI's own check
runs unchanged and still raises `PydanticV1NotSupportedError`.

Imported for its effect by the platform modules every router imports before declaring a
route (platform.security, platform.web).
"""

from __future__ import annotations

import sys
from typing import Any

from fastapi._compat import shared as _fastapi_compat

_fastapi_check = getattr(_fastapi_compat, "is_pydantic_v1_model_class", None)


def is_pydantic_v1_model_class(cls: Any) -> bool:
    if "pydantic.v1" not in sys.modules:
        return False
    assert _fastapi_check is not None
    return bool(_fastapi_check(cls))


# Only where this FastAPI has the check by that name (a newer one may drop pydantic.v1).
if _fastapi_check is not None and _fastapi_check.__module__ == _fastapi_compat.__name__:
    _fastapi_compat.is_pydantic_v1_model_class = is_pydantic_v1_model_class

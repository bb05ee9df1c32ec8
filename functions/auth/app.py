"""Lambda entry point of the auth API function (FastAPI behind Mangum), plus the
operators' direct-invoke tasks (`pilot create-admin` in AWS; docs/security-accounts.md)."""

from typing import Any

from amazon_pilot.accounts.router import router
from amazon_pilot.accounts.service import run_operator_task
from amazon_pilot.audit.router import router as audit_router
from amazon_pilot.platform.handler import make_api_handler

_api = make_api_handler("auth", [router, audit_router])


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # An API Gateway event never has this key; only a direct `lambda invoke` (which
    # needs lambda:InvokeFunction on this function) can send it.
    if "operator_task" in event:
        return run_operator_task(event)
    return _api(event, context)  # type: ignore[no-any-return]


handler.app = _api.app  # type: ignore[attr-defined]  # for the OpenAPI generator and tests

"""The API contract: one OpenAPI document for every API function, kept in the repository.

    python -m pilot_dev.contract --write   # regenerate platform/openapi.json (make openapi)
    python -m pilot_dev.contract --check   # exit 1 when the committed file is stale
    python -m pilot_dev.contract           # print it

Every capability's `router` module (and the platform's system and web routes) is a
service; their routers are merged into one FastAPI app whose ``openapi()`` is then
completed with what the shared middleware adds to every route: the error format on
every error status, the rate-limit and request-id headers, the bearer scheme.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from typing import Any

from fastapi import APIRouter, FastAPI

from amazon_pilot.platform import ratelimit
from amazon_pilot.platform.errors import ErrorResponse
from amazon_pilot.platform.idempotency import NOT_KEYED
from amazon_pilot.platform.system import OPENAPI_FILE

PLATFORM_ROUTERS = ("amazon_pilot.platform.system", "amazon_pilot.platform.web")
TITLE = "Amazon Pilot API"
VERSION = "1.0.0"
DESCRIPTION = """Product monitoring and listing optimization for Amazon sellers.

Authenticate with `POST /v1/auth/login`, then send `Authorization: Bearer <access_token>`.
Access tokens last 15 minutes; `POST /v1/auth/refresh` rotates the refresh token into a
new pair (a refresh token works once; presenting a spent one ends that whole login).

Every error has the same shape: `{"error": {"code", "message", "details": [{"field",
"message"}], "request_id"}}`; the request id is also in the `X-Request-Id` header.

Rate limits are per user and plan (free 60, pro 300, enterprise 1200 requests per minute)
and per client address for calls without a valid token. Every limited response carries
`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until the
window resets); a 429 also carries `Retry-After`.
"""

_ERROR_DESCRIPTIONS = {
    "400": "The request could not be read",
    "401": "Missing, invalid or expired credentials",
    "403": "Authenticated, but not allowed",
    "404": "Not found (also for another user's resources)",
    "409": "Conflict with the current state",
    "413": "Request body larger than 1 MiB",
    "422": "The request is not valid",
    "429": "Rate limit exceeded; see Retry-After",
    "500": "Internal error; quote the request id",
    "503": "A dependency is unavailable; retry shortly",
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def service_modules() -> list[str]:
    """Every module of amazon_pilot that serves routes: the capability packages'
    `router` modules and the platform's system and web routes (system first)."""
    import amazon_pilot as package

    names = []
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        leaf = info.name.rsplit(".", 1)[1]
        if leaf != "router" and info.name not in PLATFORM_ROUTERS:
            continue
        module = importlib.import_module(info.name)
        if isinstance(getattr(module, "router", None), APIRouter):
            names.append(module.__name__)
    return sorted(names, key=lambda n: (not n.endswith(".system"), n))


def build_app() -> FastAPI:
    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url=None)
    for name in service_modules():
        module = importlib.import_module(name)
        app.include_router(module.router)
        # a capability serving routes from two functions keeps the other one's routes on
        # `group_router` (market: the competitors function's group routes)
        extra = getattr(module, "group_router", None)
        if isinstance(extra, APIRouter):
            app.include_router(extra)
    return app


def build_openapi() -> dict[str, Any]:
    document = build_app().openapi()
    _complete(document)
    return document


def render(document: dict[str, Any] | None = None) -> str:
    return json.dumps(document or build_openapi(), indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------ completion


def _error_response(status: str) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
    if status == "429":
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    return {"description": _ERROR_DESCRIPTIONS[status], "headers": headers,
            "content": {"application/json": {"schema": _ERROR_REF}}}


def _components(document: dict[str, Any]) -> None:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas["ErrorResponse"] = schema
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["headers"] = {
        "X-Request-Id": {"description": "The request id (log correlation id)",
                         "schema": {"type": "string"}},
        "X-RateLimit-Limit": {"description": "Requests allowed per window",
                              "schema": {"type": "integer"}},
        "X-RateLimit-Remaining": {"description": "Requests left in this window",
                                  "schema": {"type": "integer"}},
        "X-RateLimit-Reset": {"description": "Seconds until the window resets",
                              "schema": {"type": "integer"}},
        "Retry-After": {"description": "Seconds to wait before retrying",
                        "schema": {"type": "integer"}},
    }
    components.setdefault("parameters", {})["Idempotency-Key"] = {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "description": "Makes a retry safe: the same key, caller and request within 24 hours"
                       " gets the first answer again (with `Idempotent-Replayed: true`) and"
                       " creates nothing more; the same key with another request is 422"
                       " IDEMPOTENCY_KEY_REUSED, and 409 IDEMPOTENCY_KEY_IN_PROGRESS while"
                       " the first is still running (docs/api.md)",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                   "pattern": "^[!-~]{1,255}$"}}
    schemes = components.setdefault("securitySchemes", {})
    schemes.setdefault("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["500"]
    if ratelimit.is_exempt(path):
        return statuses
    statuses += ["429", "503"]
    if "requestBody" in operation:
        statuses += ["400", "413", "422"]
    if method in ("post", "put", "patch"):
        statuses.append("409")  # writes can meet a uniqueness or state conflict
    if operation.get("parameters"):
        statuses.append("422")
    if operation.get("security"):
        # ids in the path, the query or the body are owner-checked: unknown or foreign is 404
        statuses += ["401", "403", "404"]
    elif any(p.get("in") == "path" for p in operation.get("parameters", [])):
        statuses.append("404")
    return statuses


def _complete(document: dict[str, Any]) -> None:
    _components(document)
    limit_headers = {name: {"$ref": f"#/components/headers/{name}"} for name in
                     ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")}
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if method == "post" and operation.get("security") and not path.startswith(
                    NOT_KEYED):
                operation.setdefault("parameters", []).append(
                    {"$ref": "#/components/parameters/Idempotency-Key"})
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, method, operation):
                existing = responses.get(status)
                if existing is None or _is_fastapi_validation(existing):
                    responses[status] = _error_response(status)
            for status, response in responses.items():
                headers = response.setdefault("headers", {})
                headers.setdefault("X-Request-Id", {"$ref": "#/components/headers/X-Request-Id"})
                if not ratelimit.is_exempt(path):
                    for name, ref in limit_headers.items():
                        headers.setdefault(name, ref)
                if status.startswith(("4", "5")) and "content" in response:
                    for media in response["content"].values():
                        if media.get("schema") in (None, {}):
                            media["schema"] = _ERROR_REF


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


# ------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pilot_dev.contract",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {OPENAPI_FILE}")
    group.add_argument("--check", action="store_true",
                       help="exit 1 when the committed document differs from the code")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        OPENAPI_FILE.write_text(text)
        print(f"wrote {OPENAPI_FILE} ({len(json.loads(text)['paths'])} paths)")
        return 0
    if args.check:
        current = OPENAPI_FILE.read_text() if OPENAPI_FILE.exists() else ""
        if current != text:
            print(f"{OPENAPI_FILE} is out of date: run `make openapi`", file=sys.stderr)
            return 1
        print("the committed OpenAPI document is up to date")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

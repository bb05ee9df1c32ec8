"""System routes: health of every dependency, and the merged OpenAPI contract."""

from __future__ import annotations

import html
import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text

from amazon_pilot.adapters.aws import client
from amazon_pilot.platform.db import get_engine
from amazon_pilot.platform.errors import NotFound
from amazon_pilot.platform.settings import settings

router = APIRouter(tags=["system"])
OPENAPI_FILE = Path(__file__).with_name("openapi.json")


class CheckResult(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None = None
    detail: dict[str, Any] | None = None


class HealthResponse(BaseModel):
    status: str  # ok | degraded
    stage: str
    checks: dict[str, CheckResult]


def _timed(check: Any) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
        return CheckResult(ok=True, latency_ms=_ms(started), detail=detail)
    except Exception as exc:  # a health check reports failures, it never raises them
        return CheckResult(ok=False, latency_ms=_ms(started), error=_short(exc))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _short(exc: Exception) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line[:200]}"


def _database() -> dict[str, Any]:
    with get_engine().connect() as conn:
        version = conn.execute(text("SELECT max(version) FROM schema_migrations")).scalar()
    return {"schema_version": version}


def _queue(url: str) -> dict[str, Any]:
    attrs = client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return {
        "depth": int(attrs.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
    }


class Liveness(BaseModel):
    status: str


@router.get("/v1/health/live", response_model=Liveness,
            summary="Liveness: the function answers (no dependency is checked)")
async def live() -> Liveness:
    return Liveness(status="ok")


@router.get("/v1/health", response_model=HealthResponse, summary="Health of every dependency")
async def health() -> JSONResponse:
    cfg = settings()
    checks = {"database": _timed(_database)}
    # the queues the template names (QUEUE_URL_*): the role may read just those
    for priority, url in cfg.queue_urls.items():
        checks[f"queue:{priority}"] = _timed(lambda url=url: _queue(url))
    healthy = all(c.ok for c in checks.values())
    body = HealthResponse(status="ok" if healthy else "degraded", stage=cfg.stage, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@lru_cache(maxsize=1)
def _openapi_bytes() -> bytes:
    return OPENAPI_FILE.read_bytes()


@router.get("/v1/openapi.json", include_in_schema=False)
async def openapi() -> Response:
    return Response(_openapi_bytes(), media_type="application/json")


DOCS_CSP = ("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'none'")
_ASSET_TYPES = {
    ".js": "application/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
    ".map": "application/json",
}
# Only what the page loads; the bundle's own index.html and initializer are not served.
_ASSETS = ("swagger-ui.css", "index.css", "swagger-ui-bundle.js",
           "swagger-ui-standalone-preset.js", "favicon-32x32.png", "favicon-16x16.png")


@lru_cache(maxsize=1)
def _swagger_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


@router.get("/v1/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    title = json.loads(_openapi_bytes()).get("info", {}).get("title", "API")
    return HTMLResponse(_DOCS_PAGE.replace("{title}", html.escape(title)),
                        headers={"content-security-policy": DOCS_CSP})


@router.get("/v1/docs/{asset}", include_in_schema=False)
async def docs_asset(asset: str) -> Response:
    """Swagger UI's own files, served from the swagger-ui-bundle package (no CDN)."""
    headers = {"content-security-policy": DOCS_CSP, "cache-control": "public, max-age=86400"}
    if asset == "init.js":
        return Response(_INIT_JS, media_type="application/javascript", headers=headers)
    if asset not in _ASSETS:
        raise NotFound(f"no documentation asset {asset!r}")
    path = _swagger_dir() / asset
    return Response(path.read_bytes(), media_type=_ASSET_TYPES[path.suffix], headers=headers)


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/v1/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/v1/docs/favicon-32x32.png" sizes="32x32">
</head><body><div id="ui"></div>
<script src="/v1/docs/swagger-ui-bundle.js"></script>
<script src="/v1/docs/init.js"></script></body></html>"""

# A file, not an inline script: the page's CSP allows scripts from 'self' only.
_INIT_JS = b"""window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/v1/openapi.json",
    dom_id: "#ui",
    deepLinking: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
  });
};
"""

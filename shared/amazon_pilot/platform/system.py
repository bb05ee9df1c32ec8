"""System routes: health, and the merged OpenAPI contract.

- ``GET /v1/health`` (public, not rate-limited): up or down, nothing else. One
  ``SELECT 1``, its answer kept for PROBE_CACHE_S per instance, so hammering the probe
  cannot load the database. 200 {"status": "up"} or 503 {"status": "down"}.
- ``GET /v1/health/details`` (administrators only: 401 without a token, 403 for a
  seller): the database's schema version and each queue's depth and in-flight count,
  with latencies. A failed check says what failed in fixed words ("the database did not
  answer"); the driver's message, which can name hosts, users and SQL, goes to the log
  only.
- ``GET /v1/health/live``: the function answers (nothing is checked).
"""

import html
import json
import logging
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text

from amazon_pilot.adapters.aws import client
from amazon_pilot.platform.db import RETRY_AFTER_S, get_engine
from amazon_pilot.platform.errors import NotFound
from amazon_pilot.platform.security import AdminCaller
from amazon_pilot.platform.settings import settings

log = logging.getLogger("amazon_pilot.health")
router = APIRouter(tags=["system"])
OPENAPI_FILE = Path(__file__).with_name("openapi.json")
PROBE_CACHE_S = 5.0
# What a failed check says, whatever the exception: no driver text reaches a client.
DATABASE_FAILED = "the database did not answer"
QUEUE_FAILED = "the queue could not be read"


class CheckResult(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None = None
    detail: dict[str, Any] | None = None


class HealthResponse(BaseModel):
    status: str  # ok | degraded
    stage: str
    checks: dict[str, CheckResult]


def _timed(check: Any, failure: str) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
        return CheckResult(ok=True, latency_ms=_ms(started), detail=detail)
    except Exception:  # a health check reports failures, it never raises them
        log.warning("health check failed: %s", failure, exc_info=True)
        return CheckResult(ok=False, latency_ms=_ms(started), error=failure)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


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


class Probe(BaseModel):
    status: str  # up | down


_probe_lock = threading.Lock()
_probe_state: dict[str, Any] = {"at": float("-inf"), "up": False}


def _database_up() -> bool:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        log.warning("health probe: %s", DATABASE_FAILED, exc_info=True)
        return False
    return True


def probe(now: float | None = None) -> bool:
    """The database answers (at most one check per PROBE_CACHE_S per instance)."""
    now = time.monotonic() if now is None else now
    with _probe_lock:
        if now - _probe_state["at"] < PROBE_CACHE_S:
            return bool(_probe_state["up"])
        up = _database_up()
        _probe_state.update(at=time.monotonic(), up=up)
        return up


def forget_probe() -> None:
    with _probe_lock:
        _probe_state.update(at=float("-inf"), up=False)


@router.get("/v1/health", response_model=Probe,
            responses={503: {"model": Probe, "description": "down"}},
            summary="Public probe: up or down, nothing else (cheap, cached for 5 s)")
async def health() -> JSONResponse:
    up = probe()
    if up:
        return JSONResponse({"status": "up"})
    # load balancers and monitors back off as any client of a 503 should
    return JSONResponse({"status": "down"}, status_code=503,
                        headers={"retry-after": str(RETRY_AFTER_S)})


@router.get("/v1/health/details", response_model=HealthResponse,
            responses={503: {"model": HealthResponse, "description": "a dependency is down"}},
            summary="Administrators: each dependency's state (database, queues)")
async def health_details(admin: AdminCaller) -> JSONResponse:
    cfg = settings()
    checks = {"database": _timed(_database, DATABASE_FAILED)}
    # the queues the template names (QUEUE_URL_*): the role may read just those
    for priority, url in cfg.queue_urls.items():
        checks[f"queue:{priority}"] = _timed(lambda url=url: _queue(url), QUEUE_FAILED)
    healthy = all(c.ok for c in checks.values())
    body = HealthResponse(status="ok" if healthy else "degraded", stage=cfg.stage, checks=checks)
    headers = None if healthy else {"retry-after": str(RETRY_AFTER_S)}
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503, headers=headers)


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
# Only what the page loads. Swagger UI 5 is vendored with the dashboard's files
# (web/vendor, from npm's swagger-ui-dist): 4.x, the last version on PyPI's
# swagger-ui-bundle, cannot render an OpenAPI 3.1 document, which is what FastAPI writes.
SWAGGER_UI_VERSION = "5.36.0"
_ASSETS = ("swagger-ui.css", "index.css", "swagger-ui-bundle.js", "favicon-32x32.png",
           "favicon-16x16.png")


@lru_cache(maxsize=1)
def _swagger_dir() -> Path:
    vendored = Path(__file__).resolve().parents[1] / "web_assets" / "vendor"
    return vendored / f"swagger-ui-{SWAGGER_UI_VERSION}"


@router.get("/v1/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    title = json.loads(_openapi_bytes()).get("info", {}).get("title", "API")
    return HTMLResponse(_DOCS_PAGE.replace("{title}", html.escape(title)),
                        headers={"content-security-policy": DOCS_CSP})


@router.get("/v1/docs/{asset}", include_in_schema=False)
async def docs_asset(asset: str) -> Response:
    """Swagger UI's own files, served from the vendored copy (no CDN)."""
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

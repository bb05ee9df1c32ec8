"""System routes: health of every dependency, and the merged OpenAPI contract."""

from __future__ import annotations

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
from amazon_pilot.config import settings
from amazon_pilot.db.engine import get_engine

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


@router.get("/v1/health", response_model=HealthResponse, summary="Health of every dependency")
async def health() -> JSONResponse:
    cfg = settings()
    checks = {"database": _timed(_database)}
    if cfg.queue_urls:
        for priority, url in cfg.queue_urls.items():
            checks[f"queue:{priority}"] = _timed(lambda url=url: _queue(url))
    else:
        checks["aws"] = _timed(
            lambda: {"queues": len(client("sqs").list_queues().get("QueueUrls", []))}
        )
    healthy = all(c.ok for c in checks.values())
    body = HealthResponse(status="ok" if healthy else "degraded", stage=cfg.stage, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@lru_cache(maxsize=1)
def _openapi_bytes() -> bytes:
    return OPENAPI_FILE.read_bytes()


@router.get("/v1/openapi.json", include_in_schema=False)
async def openapi() -> Response:
    return Response(_openapi_bytes(), media_type="application/json")


@router.get("/v1/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    title = json.loads(_openapi_bytes()).get("info", {}).get("title", "API")
    return HTMLResponse(_DOCS_PAGE.replace("{title}", title))


_DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script src="/v1/docs/init.js"></script></body></html>"""

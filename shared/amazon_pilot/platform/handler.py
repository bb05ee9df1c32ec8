"""Builds a Lambda entry point for an API function: FastAPI wrapped by Mangum.

Everything is made once at import (cold start) and reused by every invocation;
FastAPI's lifespan is off so Mangum does not run it per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter
from mangum import Mangum

from amazon_pilot.platform.app import ResponseHook, create_app
from amazon_pilot.platform.observability import lambda_entry, make_logger, make_metrics, make_tracer
from amazon_pilot.platform.settings import settings

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def make_api_handler(
    service: str,
    routers: Iterable[APIRouter],
    *,
    response_hooks: list[ResponseHook] | None = None,
) -> LambdaHandler:
    settings()  # a malformed variable stops the cold start, naming the variable
    logger = make_logger(service)
    metrics = make_metrics(service)
    tracer = make_tracer(service)
    app = create_app(f"Amazon Pilot {service}", routers, logger, response_hooks=response_hooks)
    asgi = Mangum(app, lifespan="off", api_gateway_base_path="/")

    # The correlation id is the API Gateway request id; EdgeMiddleware sets it.
    @lambda_entry(logger, metrics, tracer)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return asgi(event, context)

    handler.app = app  # type: ignore[attr-defined]  # for the OpenAPI generator and tests
    return handler

"""The FastAPI application factory every API function uses.

It installs, once: request ids (the API Gateway request id, also the log
correlation id), the body-size limit, security headers, CORS, and the exception
handlers that turn everything into the one error format.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from aws_lambda_powertools import Logger
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amazon_pilot.platform.edge import from_the_edge
from amazon_pilot.platform.errors import ApiError, error_body
from amazon_pilot.platform.settings import settings

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]

ResponseHook = Callable[[Scope, list[tuple[bytes, bytes]]], None]


def request_id_of(scope: Scope) -> str:
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        event = scope.get("aws.event") or {}
        rid = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
        state["request_id"] = rid
    return str(rid)


class EdgeMiddleware:
    """Pure ASGI (cheaper than BaseHTTPMiddleware): ids, size limit, response headers."""

    def __init__(self, app: ASGIApp, logger: Logger, hooks: list[ResponseHook]) -> None:
        self.app = app
        self.logger = logger
        self.hooks = hooks
        self.max_body = settings().max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        self.logger.set_correlation_id(rid)
        extra_headers = [(b"x-request-id", rid.encode()), *SECURITY_HEADERS]

        # No access line here: API Gateway's access log (template.yaml) has one per
        # request, keyed by the same request id; formatting a second one in the function
        # cost a quarter of a small request's time.
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name for name, _ in headers}
                headers.extend(h for h in extra_headers if h[0] not in present)
                for hook in self.hooks:
                    hook(scope, headers)
                message["headers"] = headers
            await send(message)

        if settings().edge_origin_token and not from_the_edge(scope):
            # The execute-api URL stays reachable; behind the edge it would skip the WAF.
            body = error_body(403, "this API is served through its CloudFront domain; "
                              "send requests there", rid)
            await JSONResponse(body, status_code=403)(scope, receive, send_with_headers)
            return
        length = _content_length(scope)
        if length is None:
            length = _event_body_size(scope)
        if length is None and scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
            length, receive = await _body_size(receive, self.max_body)
        if length is not None and length > self.max_body:
            limit = f"{self.max_body // 1024} KiB"
            body = error_body(413, f"request body is larger than {limit}", rid)
            await JSONResponse(body, status_code=413)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _event_body_size(scope: Scope) -> int | None:
    """Behind Mangum the body is in the Lambda event: its size is known without reading."""
    event = scope.get("aws.event")
    if not isinstance(event, dict):
        return None
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(raw) * 3 // 4
    return len(raw.encode()) if isinstance(raw, str) else len(raw)


async def _body_size(receive: Receive, max_body: int) -> tuple[int | None, Receive]:
    """The body size when nothing declared it (a chunked request served without Lambda):
    the body is read, up to the limit, and replayed to the application."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            return size, receive
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await receive()

    return size, replay


def _field_of(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI, logger: Logger) -> None:
    from amazon_pilot.platform import db  # its timeouts' errors become 503s below

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        rid = request_id_of(request.scope)
        body = error_body(exc.status, exc.message, rid, code=exc.code, details=exc.details)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [
            {"field": _field_of(err.get("loc", ())), "message": str(err.get("msg", "invalid"))}
            for err in exc.errors()
        ]
        message = "the request is not valid: " + "; ".join(
            f"{d['field']}: {d['message']}" for d in details[:3]
        )
        body = error_body(422, message, request_id_of(request.scope), details=details)
        return JSONResponse(body, status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route for {request.method} {request.url.path}"
        body = error_body(exc.status_code, message, request_id_of(request.scope))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def unstorable(request: Request, exc: Exception) -> JSONResponse:
        # Postgres refused a value the request carried (a NUL character, a number out of
        # range): the client's input, not a server fault. No SQL in the answer.
        logger.warning("database refused a value", extra={"path": request.url.path,
                                                           "error": type(exc).__name__})
        message = ("a value in the request cannot be stored (for example a NUL character "
                   "or a number out of range)")
        body = error_body(422, message, request_id_of(request.scope),
                          details=[{"field": "body", "message": message}])
        return JSONResponse(body, status_code=422)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The database did not answer in time or could not be reached (platform/db.py's
        # timeouts): nothing was changed that a retry could duplicate, so say when.
        logger.warning("database unavailable", extra={"path": request.url.path,
                                                      "error": type(exc).__name__})
        body = error_body(503, "the service is temporarily unavailable; retry shortly",
                          request_id_of(request.scope))
        return JSONResponse(body, status_code=503,
                            headers={"retry-after": str(db.RETRY_AFTER_S)})

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if db.is_unavailable(exc):  # raised outside a route (a middleware)
            return await unavailable(request, exc)
        rid = request_id_of(request.scope)
        logger.exception("unhandled error", extra={"path": request.url.path})
        body = error_body(500, "internal error; quote the request id when reporting it", rid)
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    from sqlalchemy.exc import DataError, OperationalError, TimeoutError

    app.add_exception_handler(DataError, unstorable)
    app.add_exception_handler(OperationalError, unavailable)
    app.add_exception_handler(TimeoutError, unavailable)
    app.add_exception_handler(Exception, unexpected)


def create_app(
    title: str,
    routers: Iterable[APIRouter],
    logger: Logger,
    *,
    response_hooks: list[ResponseHook] | None = None,
) -> FastAPI:
    app = FastAPI(
        title=title,
        version="1.0.0",
        docs_url=None,  # the merged document is served once, by the system function
        redoc_url=None,
        openapi_url=None,
    )
    for router in routers:
        app.include_router(router)
    install_error_handlers(app, logger)
    # innermost: Idempotency-Key replays, inside authentication and rate limits (after
    # the edge has set the request id)
    from amazon_pilot.platform.idempotency import IdempotencyMiddleware
    from amazon_pilot.platform.security import AuthRateLimitMiddleware

    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(AuthRateLimitMiddleware)
    cors = settings().cors_origins
    if cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type", "idempotency-key"],
            expose_headers=["x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining",
                            "x-ratelimit-reset", "retry-after", "idempotent-replayed"],
        )
    app.add_middleware(EdgeMiddleware, logger=logger, hooks=response_hooks or [])
    return app


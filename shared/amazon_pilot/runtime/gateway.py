"""The local API Gateway: an ASGI app that turns each HTTP request into an HTTP API
(payload 2.0) event for the function owning the route, and the function's answer
back into an HTTP response."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from amazon_pilot.runtime.events import http_api_event
from amazon_pilot.runtime.invoker import FunctionHost
from amazon_pilot.runtime.routes import RouteTable

log = logging.getLogger("pilot.runtime")

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway HTTP APIs refuse larger requests

ControlHandler = Callable[[str, str, bytes], tuple[int, Any]]


def _json_error(status: int, code: str, message: str, request_id: str) -> tuple[int, bytes]:
    body = {"error": {"code": code, "message": message, "details": [], "request_id": request_id}}
    return status, json.dumps(body).encode()


class Gateway:
    def __init__(self, host: FunctionHost, routes: RouteTable, *, workers: int = 8,
                 control: ControlHandler | None = None) -> None:
        self.host = host
        self.routes = routes
        self.control = control
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambda")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request_id = uuid.uuid4().hex
        body, too_large = await self._read_body(receive)
        method, path = scope["method"], scope["path"]
        if too_large:
            status, payload = _json_error(413, "PAYLOAD_TOO_LARGE",
                                          "request body is larger than 10 MiB", request_id)
            await self._respond(send, status, [(b"content-type", b"application/json")], payload)
            return
        if path.startswith("/_pilot/") and self.control is not None:
            status, result = self.control(method, path, body)
            await self._respond(send, status, [(b"content-type", b"application/json")],
                                json.dumps(result, default=str).encode())
            return
        match = self.routes.match(method, path)
        if match is None:
            status, payload = _json_error(404, "NOT_FOUND", f"no route for {method} {path}",
                                          request_id)
            await self._respond(send, status, [(b"content-type", b"application/json")], payload)
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        client = scope.get("client") or ("127.0.0.1", 0)
        event = http_api_event(
            method=method,
            path=path,
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            match=match,
            source_ip=client[0],
            request_id=request_id,
        )
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                self.executor, self.host.invoke, match.route.function, event
            )
        except Exception:
            log.exception("function %s failed", match.route.function)
            status, payload = _json_error(502, "BAD_GATEWAY", "the function failed", request_id)
            await self._respond(send, status, [(b"content-type", b"application/json")], payload)
            return
        await self._send_lambda_response(send, result)

    async def _read_body(self, receive: Any) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_PAYLOAD:
                chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks), size > MAX_PAYLOAD

    async def _send_lambda_response(self, send: Any, result: Any) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            # HTTP API payload 2.0 treats a bare value as a 200 JSON body
            payload = json.dumps(result).encode()
            await self._respond(send, 200, [(b"content-type", b"application/json")], payload)
            return
        headers = [(k.lower().encode(), str(v).encode())
                   for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((name.lower().encode(), str(v).encode()) for v in values)
        headers.extend((b"set-cookie", c.encode()) for c in result.get("cookies") or [])
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        await self._respond(send, int(result["statusCode"]), headers, body)

    @staticmethod
    async def _respond(send: Any, status: int, headers: list[tuple[bytes, bytes]],
                       body: bytes) -> None:
        headers = [h for h in headers if h[0] != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

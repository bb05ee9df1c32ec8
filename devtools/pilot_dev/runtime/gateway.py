"""The local API Gateway: turns each HTTP request into an HTTP API (payload 2.0) event
for the function owning the route, the function's answer back into an HTTP response,
and writes the API's access log line in the template's format.

It knows nothing of sockets: runtime/http_server.py reads requests and calls it.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TextIO

from pilot_dev.runtime.events import http_api_event
from pilot_dev.runtime.http_server import HttpRequest, HttpResponse
from pilot_dev.runtime.invoker import Invoker, LogSink
from pilot_dev.runtime.routes import RouteTable

log = logging.getLogger("pilot.runtime")

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway HTTP APIs refuse larger requests

ControlHandler = Callable[[str, str, bytes], tuple[int, Any]]
# The runtime's /_pilot/... surface answers only requests carrying the operator token
# generated at start (written by `pilot run` to .pilot/operator-token, mode 0600), so a
# webhook or a browser page that reaches the API port cannot drive it.
OPERATOR_TOKEN_HEADER = "x-pilot-operator-token"

_JSON = [("content-type", "application/json")]
_UNSAFE = re.compile(r'["\\\x00-\x1f]').search


def json_error(status: int, code: str, message: str, request_id: str) -> HttpResponse:
    body = {"error": {"code": code, "message": message, "details": [], "request_id": request_id}}
    return HttpResponse(status, list(_JSON), json.dumps(body).encode())


class AccessLog:
    """API Gateway's access logging: one line per request, in the format the template's
    AccessLogSettings give, to its destination log group (and the console). With a sink,
    the line is formatted and echoed on the sink's thread, as API Gateway writes its log
    after the fact."""

    _VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_.]+)")

    def __init__(self, line_format: str, group: str, sink: LogSink | None,
                 echo: TextIO | None = None,
                 measure: Callable[[dict[str, str]], None] | None = None) -> None:
        self.group = group
        self.sink = sink
        self.echo = echo
        self.measure = measure  # the request's API metrics, from the line's values
        pieces = self._VARIABLE.split(line_format)  # literal, name, literal, name, ...
        self._literals = pieces[0::2]
        self._names = pieces[1::2]

    def write(self, values: dict[str, str]) -> None:
        if self.sink is not None:
            self.sink(self.group, partial(self._render, values))
        else:
            self._render(values)

    def _render(self, values: dict[str, str]) -> list[str]:
        if self.measure is not None:
            with contextlib.suppress(Exception):  # a metric lost never loses its line
                self.measure(values)
        # API Gateway writes "-" for what it does not have
        found = [values.get(name, "-") for name in self._names]
        if _UNSAFE("".join(found)):  # keep a JSON format valid whatever the path holds
            found = [json.dumps(v)[1:-1] if _UNSAFE(v) else v for v in found]
        parts = [self._literals[0]]
        for value, literal in zip(found, self._literals[1:], strict=True):
            parts.append(value)
            parts.append(literal)
        line = "".join(parts)
        if self.echo is not None:
            self.echo.write(line + "\n")
        return [line]


class Gateway:
    def __init__(self, host: Invoker, routes: RouteTable, *,
                 control: ControlHandler | None = None,
                 control_token: str | None = None,
                 access_log: AccessLog | None = None) -> None:
        self.host = host
        self.routes = routes
        self.control = control
        self.control_token = control_token
        self.access_log = access_log

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started, received = time.perf_counter(), time.time()
        request_id = os.urandom(16).hex()
        route_key, invoked, error = "-", 0.0, "-"
        if request.path.startswith("/_pilot/") and self.control is not None:
            if not self._operator(request):
                response = json_error(
                    401, "UNAUTHORIZED", "the runtime's control endpoints need the header "
                    "X-Pilot-Operator-Token (its value is in .pilot/operator-token)", request_id)
            else:
                status, result = self.control(request.method, request.path, request.body)
                response = HttpResponse(status, list(_JSON),
                                        json.dumps(result, default=str).encode())
        elif (match := self.routes.match(request.method, request.path)) is None:
            response = json_error(404, "NOT_FOUND",
                                  f"no route for {request.method} {request.path}", request_id)
        else:
            route_key = match.route_key
            event = http_api_event(
                method=request.method,
                path=request.path,
                raw_query=request.query,
                headers=request.headers,
                body=request.body,
                match=match,
                source_ip=request.client_ip,
                request_id=request_id,
            )
            invoked = time.perf_counter()
            try:
                response = lambda_response(self.host.invoke(match.route.function, event))
            except Exception as exc:
                log.exception("function %s failed", match.route.function)
                error = f"{type(exc).__name__}: the function failed"
                response = json_error(502, "BAD_GATEWAY", "the function failed", request_id)
        if self.access_log is not None:
            # formatted after the response is sent, as API Gateway writes its log later
            response.after = partial(self._log_access, request, response.status, request_id,
                                     route_key, error, received, started, invoked,
                                     time.perf_counter())
        return response

    def _operator(self, request: HttpRequest) -> bool:
        if not self.control_token:
            return False  # no token, no control surface
        sent = next((v for k, v in request.headers if k.lower() == OPERATOR_TOKEN_HEADER), "")
        return hmac.compare_digest(sent.encode(), self.control_token.encode())

    def _log_access(self, request: HttpRequest, status: int, request_id: str, route_key: str,
                    error: str, received: float, started: float, invoked: float,
                    finished: float) -> None:
        assert self.access_log is not None
        self.access_log.write({
            "requestId": request_id,
            "routeKey": route_key,
            "httpMethod": request.method,
            "path": request.path,
            "status": str(status),
            "responseLatency": str(round((finished - started) * 1000)),
            "integrationLatency": str(round((finished - invoked) * 1000)) if invoked else "-",
            "integrationErrorMessage": error,
            "identity.sourceIp": request.client_ip,
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": str(int(received * 1000)),
        })

    def too_large(self) -> HttpResponse:
        return json_error(413, "PAYLOAD_TOO_LARGE", "request body is larger than 10 MiB",
                          os.urandom(16).hex())


def lambda_response(result: Any) -> HttpResponse:
    """A handler's return value as HTTP, the way HTTP API payload 2.0 reads it."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # a bare value is a 200 JSON body
        return HttpResponse(200, list(_JSON), json.dumps(result).encode())
    headers = [(k.lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name.lower(), str(v)) for v in values)
    headers.extend(("set-cookie", c) for c in result.get("cookies") or [])
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    return HttpResponse(int(result["statusCode"]), headers, body)

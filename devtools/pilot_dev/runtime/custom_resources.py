"""CloudFormation's side of custom resources, played locally: `pilot run` sends each
custom resource of the template a Create event, as CloudFormation does on a first
deploy, with a ResponseURL on a local receiver, and waits for the function's PUT.
A FAILED answer stops the start, as it fails a deploy."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pilot_dev.runtime.template import ACCOUNT_ID, ResolveContext, Template, TemplateError, resolve

CUSTOM_TYPES = ("AWS::CloudFormation::CustomResource",)


@dataclass(frozen=True)
class CustomResource:
    logical_id: str
    function: str  # the logical id of the function its ServiceToken names
    resource_type: str
    properties: dict[str, Any]


def custom_resources(template: Template) -> list[CustomResource]:
    found = []
    for logical_id, resource in template.resources.items():
        kind = str(resource.get("Type", ""))
        if kind not in CUSTOM_TYPES and not kind.startswith("Custom::"):
            continue
        props = resource.get("Properties") or {}
        token = props.get("ServiceToken")
        if not (isinstance(token, dict) and isinstance(token.get("Fn::GetAtt"), list)
                and token["Fn::GetAtt"][1] == "Arn"
                and token["Fn::GetAtt"][0] in template.functions):
            raise TemplateError(f"{logical_id}: ServiceToken must be !GetAtt <Function>.Arn "
                                f"of a function in the template, got {token!r}")
        found.append(CustomResource(logical_id, token["Fn::GetAtt"][0], kind, props))
    return found


class ResponseReceiver:
    """What the pre-signed S3 URL is to CloudFormation: a place to PUT the answer."""

    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._arrived:
                    receiver.bodies[self.path.lstrip("/")] = body
                    receiver._arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="cfn-responses", daemon=True)

    def __enter__(self) -> ResponseReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, key: str) -> str:
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        return f"http://{host}:{port}/{key}"

    def wait(self, key: str, timeout_s: float) -> dict[str, Any] | None:
        with self._arrived:
            self._arrived.wait_for(lambda: key in self.bodies, timeout=timeout_s)
            return self.bodies.get(key)


def create_event(resource: CustomResource, ctx: ResolveContext, response_url: str,
                 request_id: str) -> dict[str, Any]:
    stack_id = (f"arn:aws:cloudformation:{ctx.region}:{ACCOUNT_ID}:stack/"
                f"{ctx.stack_name}/{uuid.uuid5(uuid.NAMESPACE_URL, ctx.stack_name)}")
    return {
        "RequestType": "Create",
        "ServiceToken": f"arn:aws:lambda:{ctx.region}:{ACCOUNT_ID}:function:"
                        f"{ctx.refs.get(resource.function, resource.function)}",
        "ResponseURL": response_url,
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": resource.logical_id,
        "ResourceType": resource.resource_type,
        "ResourceProperties": resolve(resource.properties, ctx),
    }

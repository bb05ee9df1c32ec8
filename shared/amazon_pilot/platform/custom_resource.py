"""CloudFormation custom resources: the answer CloudFormation waits for.

CloudFormation sends the function an event with a pre-signed S3 `ResponseURL` and
waits (up to an hour) for a PUT of a JSON body there; the Python 3.12+ Lambda runtimes
no longer ship the `cfnresponse` helper, so the protocol is written out here. The body
fields and the 4,096-byte limit are those of the AWS CloudFormation User Guide,
"Custom resource response objects".
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

MAX_BODY = 4096  # bytes CloudFormation accepts for a response


def response_body(event: dict[str, Any], status: str, *, physical_id: str, reason: str = "",
                  data: dict[str, str] | None = None) -> bytes:
    if status not in ("SUCCESS", "FAILED"):
        raise ValueError(f"status must be SUCCESS or FAILED, got {status!r}")
    body: dict[str, Any] = {
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": data or {},
    }
    encoded = json.dumps(body).encode()
    if len(encoded) > MAX_BODY:  # a long error: keep its start, which names the failure
        overflow = len(encoded) - MAX_BODY + 3
        body["Reason"] = reason[: max(0, len(reason.encode()) - overflow)] + "..."
        encoded = json.dumps(body).encode()
    return encoded


def send_response(event: dict[str, Any], status: str, *, physical_id: str, reason: str = "",
                  data: dict[str, str] | None = None, timeout_s: float = 30.0) -> int:
    """PUT the answer to the event's ResponseURL; returns the HTTP status."""
    body = response_body(event, status, physical_id=physical_id, reason=reason, data=data)
    url = str(event["ResponseURL"])
    if not url.startswith(("https://", "http://")):
        raise ValueError("ResponseURL must be an http(s) URL")
    # The pre-signed URL is signed for an empty content type: send exactly that.
    request = urllib.request.Request(url, data=body, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        return int(answer.status)

"""Events in the exact shapes Lambda receives them: API Gateway HTTP API (payload
format 2.0), SQS batches and EventBridge schedules."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pilot_dev.runtime.routes import RouteMatch
from pilot_dev.runtime.template import ACCOUNT_ID

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded",
              "application/javascript", "application/problem+json")


@lru_cache(maxsize=4)
def _request_time(second: int) -> str:
    # requests of the same second share it (strftime costs as much as the rest of an event)
    return datetime.fromtimestamp(second, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def http_api_event(
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    match: RouteMatch,
    source_ip: str = "127.0.0.1",
    api_id: str = "local",
    request_id: str | None = None,
    scheme: str = "http",
) -> dict[str, Any]:
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        # API Gateway joins repeated headers with commas
        merged[lname] = f"{merged[lname]},{value}" if lname in merged else value
    # API Gateway says how the client reached it (its own value, whatever the client sent):
    # https in AWS, http from pilot run. Mangum reads the request's scheme from it.
    merged["x-forwarded-proto"] = scheme
    query: dict[str, str] = {}
    if raw_query:
        from urllib.parse import parse_qsl

        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
    now = time.time()
    content_type = merged.get("content-type", "")
    is_text = not body or content_type.startswith(TEXT_TYPES) or content_type == ""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api_id,
            "domainName": merged.get("host", "127.0.0.1"),
            "domainPrefix": (merged.get("host", "127") or "127").split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id or uuid.uuid4().hex,
            "routeKey": match.route_key,
            "stage": "$default",
            "time": _request_time(int(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if match.path_parameters:
        event["pathParameters"] = match.path_parameters
    if body:
        text = None
        if is_text:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:  # declared as text but not UTF-8: pass it on intact
                text = None
        event["isBase64Encoded"] = text is None
        event["body"] = text if text is not None else base64.b64encode(body).decode()
    return event


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Turn ReceiveMessage results into the event Lambda's SQS poller would send."""
    records = []
    for message in messages:
        attrs = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": attrs.get("SenderId", ACCOUNT_ID),
                    "ApproximateFirstReceiveTimestamp": attrs.get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType", "String"),
                    }
                    for name, value in (message.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": message.get("MD5OfBody")
                or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def schedule_event(rule_arn: str, region: str, input_: dict[str, Any] | None) -> dict[str, Any]:
    """A rule with a constant Input delivers that Input as the whole event."""
    if input_:
        return dict(input_)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }

"""Routing as API Gateway does it, and events in the shapes Lambda delivers."""

from __future__ import annotations

import base64

from pilot_dev.runtime.events import http_api_event, schedule_event, sqs_event
from pilot_dev.runtime.routes import RouteTable
from pilot_dev.runtime.template import Route, load_template

ROUTES = RouteTable(
    [
        Route("ANY", "/v1/products", "Products"),
        Route("ANY", "/v1/products/{proxy+}", "Products"),
        Route("GET", "/v1/products/{id}/listing-score", "Optimization"),
        Route("ANY", "/v1/products/{id}/optimizations", "Optimization"),
        Route("GET", "/v1/products/{id}/optimizations/summary", "Optimization"),
        Route("GET", "/v1/health", "System"),
    ]
)


def test_specific_route_beats_greedy_proxy() -> None:
    match = ROUTES.match("GET", "/v1/products/abc/listing-score")
    assert match is not None
    assert match.route.function == "Optimization"
    assert match.path_parameters == {"id": "abc"}
    assert match.route_key == "GET /v1/products/{id}/listing-score"


def test_greedy_route_takes_the_rest_of_the_path() -> None:
    match = ROUTES.match("DELETE", "/v1/products/abc/history")
    assert match is not None and match.route.function == "Products"
    assert match.path_parameters == {"proxy": "abc/history"}


def test_method_must_match_unless_any() -> None:
    # POST to the listing score is not that route: the greedy products route takes it
    match = ROUTES.match("POST", "/v1/products/abc/listing-score")
    assert match is not None and match.route.function == "Products"
    assert ROUTES.match("POST", "/v1/health") is None
    assert ROUTES.match("GET", "/v2/anything") is None


def test_exact_path_wins_and_trailing_segments_do_not_match() -> None:
    match = ROUTES.match("GET", "/v1/products/x/optimizations/summary")
    assert match is not None and match.route.path.endswith("/summary")
    assert ROUTES.match("GET", "/v1/health/extra") is None


def test_every_template_route_reaches_its_function() -> None:
    template = load_template()
    table = RouteTable(template.routes)
    for route in template.routes:
        concrete = route.path.replace("{proxy+}", "a/b").replace("{id}", "x1")
        method = "GET" if route.method == "ANY" else route.method
        match = table.match(method, concrete)
        assert match is not None, route
        assert match.route.function == route.function, (route, match)


def test_http_event_has_payload_2_shape() -> None:
    match = ROUTES.match("POST", "/v1/products")
    assert match is not None
    event = http_api_event(
        method="POST",
        path="/v1/products",
        raw_query="a=1&a=2&b=",
        headers=[("Content-Type", "application/json"), ("X-Multi", "1"), ("X-Multi", "2"),
                 ("Cookie", "s=1; t=2")],
        body=b'{"asin": "B0"}',
        match=match,
        source_ip="10.1.2.3",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /v1/products"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"]["x-multi"] == "1,2"
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["requestContext"]["http"] == {
        "method": "POST", "path": "/v1/products", "protocol": "HTTP/1.1",
        "sourceIp": "10.1.2.3", "userAgent": "",
    }
    assert event["body"] == '{"asin": "B0"}' and event["isBase64Encoded"] is False


def test_binary_body_is_base64_encoded() -> None:
    match = ROUTES.match("POST", "/v1/products")
    assert match is not None
    raw = bytes(range(256))
    event = http_api_event(method="POST", path="/v1/products", raw_query="",
                           headers=[("content-type", "application/octet-stream")], body=raw,
                           match=match)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_sqs_event_carries_what_consumers_read() -> None:
    event = sqs_event(
        [{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}",
          "Attributes": {"ApproximateReceiveCount": "2"},
          "MessageAttributes": {"why": {"DataType": "String", "StringValue": "x"}}}],
        "arn:aws:sqs:us-east-1:000000000000:q", "us-east-1",
    )
    record = event["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":q")
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["why"]["stringValue"] == "x"


def test_schedule_with_input_delivers_the_input_itself() -> None:
    assert schedule_event("arn:rule", "us-east-1", {"job": "x"}) == {"job": "x"}
    bare = schedule_event("arn:rule", "us-east-1", None)
    assert bare["detail-type"] == "Scheduled Event" and bare["resources"] == ["arn:rule"]


def test_a_text_body_that_is_not_utf8_travels_as_base64() -> None:
    match = ROUTES.match("POST", "/v1/products")
    assert match is not None
    raw = b'{"asin": "\xff\xfe"}'
    event = http_api_event(method="POST", path="/v1/products", raw_query="",
                           headers=[("content-type", "application/json")], body=raw, match=match)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_building_a_function_twice_keeps_its_logger_working() -> None:
    # the contract generator and the local runtime both build the API apps in one process
    from amazon_pilot.platform.handler import make_api_handler
    from amazon_pilot.platform.system import router

    first = make_api_handler("twice", [router])
    second = make_api_handler("twice", [router])
    from amazon_pilot.platform.observability import make_logger

    make_logger("twice").append_keys(probe=True)  # raised AttributeError before
    assert first is not second

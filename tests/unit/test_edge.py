"""The edge (CloudFront + S3 + WAF) and gradual deploys in template.yaml.

The dashboard behind CloudFront must answer exactly what the web function answers: the
distribution's rewrite function (run here with node, the JavaScript it runs at the edge)
and the bucket layout of pilot_dev.publish_web are checked against the web function
itself, path by path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from amazon_pilot.platform import web
from amazon_pilot.platform.app import create_app
from amazon_pilot.platform.observability import make_logger
from pilot_dev import publish_web
from pilot_dev.iac_scan import read_accepted
from pilot_dev.runtime.routes import RouteTable
from pilot_dev.runtime.template import (
    ResolveContext,
    evaluate_conditions,
    load_template,
    repo_root,
    resolve,
)

TEMPLATE = load_template()
RESOURCES = TEMPLATE.resources
API_FUNCTIONS = sorted({route.function for route in TEMPLATE.routes})
PATHS = ["/", "/products", "/products/42", "/products/42/", "/alerts", "/competitors/7/report",
         "/static/app.css", "/static/js/main.js", "/static/vendor/uplot-1.6.32/uPlot.min.css",
         "/static/favicon.svg", "/static/missing.js", "/static/js",
         "/static/vendor/uplot-1.6.32/LICENSE",
         "/favicon.ico", "/products/42/image.png", "/robots.txt"]


def _rewrite(paths: list[str]) -> dict[str, str]:
    """The distribution's viewer-request function applied to each path, by node."""
    node = shutil.which("node")
    assert node, "node is needed to run the CloudFront function (it is in the dev image)"
    code = RESOURCES["DashboardRewriteFunction"]["Properties"]["FunctionCode"]
    script = code + (
        "\nconst out = {};\n"
        "for (const uri of JSON.parse(process.argv[1])) {\n"
        "  out[uri] = handler({request: {uri: uri, headers: {}}}).uri;\n"
        "}\n"
        "console.log(JSON.stringify(out));\n"
    )
    done = subprocess.run([node, "-e", script, json.dumps(paths)], capture_output=True,
                          text=True, check=True, timeout=30)
    return dict(json.loads(done.stdout))


def test_the_edge_answers_each_path_as_the_web_function_does() -> None:
    # the web function's own app: its routes, error handlers and middleware
    app = create_app("web", [web.router], make_logger("web"))
    client = TestClient(app, raise_server_exceptions=False)
    bucket = {obj.key: obj for obj in publish_web.plan()}
    page = (web.asset_root() / "index.html").read_bytes()
    for path, uri in _rewrite(PATHS).items():
        answer = client.get(path, headers={"accept-encoding": "identity"})
        key = uri.lstrip("/")
        if answer.status_code == 200:
            assert key in bucket, f"{path}: the web function answers it, the bucket has no {key}"
            assert bucket[key].path.read_bytes() == answer.content, path
            assert bucket[key].content_type == answer.headers["content-type"], path
            assert bucket[key].cache_control == answer.headers["cache-control"], path
        else:
            assert answer.status_code == 404, (path, answer.status_code)
            assert key not in bucket, f"{path}: the web function says 404, the edge has {key}"
        assert (answer.content == page) == (key == "index.html"), path


def test_the_edge_sends_the_web_functions_content_security_policy() -> None:
    config = RESOURCES["DashboardHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    assert config["SecurityHeadersConfig"]["ContentSecurityPolicy"][
        "ContentSecurityPolicy"] == web.CSP


def test_api_paths_go_to_the_api_uncached_with_every_method() -> None:
    config = RESOURCES["Distribution"]["Properties"]["DistributionConfig"]
    (api,) = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "/v1/*"]
    assert api["TargetOriginId"] == "api"
    assert set(api["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST",
                                          "DELETE"}
    assert api["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    # every API route lives under /v1/ except the web function's catch-all
    for route in TEMPLATE.routes:
        assert route.path.startswith("/v1/") or route.function == "WebFunction", route


def _conditions(**parameters: str) -> dict[str, bool]:
    region = parameters.pop("region", "us-east-1")
    values = TEMPLATE.parameter_defaults() | parameters
    return evaluate_conditions(TEMPLATE.raw, ResolveContext("s", region, values))


@pytest.mark.parametrize(("parameters", "expected"), [
    ({}, {"HasEdge": False, "CreateWebAcl": False, "HasCustomDomain": False}),
    ({"EnableEdge": "true"}, {"HasEdge": True, "CreateWebAcl": True, "HasCustomDomain": False}),
    ({"EnableEdge": "true", "region": "eu-west-1"}, {"HasEdge": True, "CreateWebAcl": False}),
    ({"EnableEdge": "true", "WebAclArn": "arn:aws:wafv2:us-east-1:1:global/webacl/x/y"},
     {"CreateWebAcl": False, "HasWebAclArn": True}),
    ({"EnableEdge": "true", "DomainName": "pilot.example.com"}, {"HasCustomDomain": True}),
    ({"BlockedIpv4Cidrs": "203.0.113.7/32"}, {"HasBlockedIpv4": True, "HasBlockedIpv6": False}),
])
def test_edge_conditions(parameters: dict[str, str], expected: dict[str, bool]) -> None:
    conditions = _conditions(**parameters)
    assert {k: conditions[k] for k in expected} == expected


def test_every_edge_resource_is_conditional_so_a_minimal_deploy_has_none() -> None:
    edge_types = ("AWS::S3::", "AWS::CloudFront::", "AWS::WAFv2::")
    for logical_id, resource in RESOURCES.items():
        if resource["Type"].startswith(edge_types):
            assert resource.get("Condition") in ("HasEdge", "CreateWebAcl"), logical_id
    assert RESOURCES["WebAclLogGroup"]["Condition"] == "CreateWebAcl"


def test_the_waf_has_the_managed_groups_a_rate_limit_and_the_block_list() -> None:
    rules = RESOURCES["WebAcl"]["Properties"]["Rules"]
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in rules
               if "ManagedRuleGroupStatement" in r["Statement"]}
    assert managed == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                       "AWSManagedRulesAmazonIpReputationList"}
    assert any("RateBasedStatement" in r["Statement"] for r in rules)
    priorities = [r["Priority"] for r in rules]
    assert len(set(priorities)) == len(priorities)
    block = next(r for r in rules if "OrStatement" in r["Statement"])
    assert block["Priority"] == min(priorities) and "Block" in block["Action"]


@pytest.mark.parametrize("logical_id", API_FUNCTIONS)
def test_api_functions_shift_traffic_gradually_and_roll_back_on_their_alarms(
        logical_id: str) -> None:
    props: dict[str, Any] = TEMPLATE.functions[logical_id].properties
    assert props["AutoPublishAlias"] == "live"
    preference = props["DeploymentPreference"]
    assert preference["Type"] == {"Ref": "ApiDeploymentType"}
    assert preference["Alarms"] == [{"Ref": f"{logical_id}ErrorsAlarm"},
                                    {"Ref": f"{logical_id}LatencyAlarm"}]


def test_the_local_runtime_routes_the_same_with_aliases() -> None:
    table = RouteTable(TEMPLATE.routes)
    for method, path, function in [("GET", "/v1/products", "ProductsFunction"),
                                   ("POST", "/v1/auth/login", "AuthFunction"),
                                   ("GET", "/v1/products/3/listing-score",
                                    "OptimizationFunction"),
                                   ("GET", "/products/3", "WebFunction")]:
        match = table.match(method, path)
        assert match is not None and match.route.function == function, (method, path)


def test_every_accepted_scan_finding_names_a_resource_and_a_reason() -> None:
    import fnmatch

    rows = read_accepted(repo_root() / "docs" / "deploy.md")
    assert rows, "docs/deploy.md accepts no checkov finding: the table was not found"
    for row in rows:
        assert len(row.reason) > 20, row
        for pattern in row.resources:
            assert fnmatch.filter(RESOURCES, pattern), f"{row.check_id}: {pattern} matches nothing"


def test_the_api_gets_the_viewers_address_not_a_forged_one() -> None:
    node = shutil.which("node")
    assert node
    code = RESOURCES["ApiViewerFunction"]["Properties"]["FunctionCode"]
    script = code + (
        "\nconst r = handler({viewer: {ip: '198.51.100.7'}, request: {uri: '/v1/products',"
        " headers: {'x-viewer-ip': {value: '10.0.0.1'}}}});\n"
        "console.log(JSON.stringify(r.headers));\n"
    )
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True,
                          timeout=30)
    assert json.loads(done.stdout)["x-viewer-ip"] == {"value": "198.51.100.7"}
    origin = next(o for o in RESOURCES["Distribution"]["Properties"]["DistributionConfig"][
        "Origins"] if o["Id"] == "api")
    assert origin["OriginCustomHeaders"][0]["HeaderName"].lower() == "x-origin-verify"
    env = TEMPLATE.raw["Globals"]["Function"]["Environment"]["Variables"]
    assert "EdgeOriginSecret" in json.dumps(env["EDGE_ORIGIN_TOKEN"])


@pytest.fixture()
def edge_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from amazon_pilot.platform.settings import reset_settings

    monkeypatch.setenv("EDGE_ORIGIN_TOKEN", "edge-token-0123456789")
    reset_settings()
    yield "edge-token-0123456789"
    monkeypatch.delenv("EDGE_ORIGIN_TOKEN")
    reset_settings()


def test_behind_the_edge_a_request_without_the_token_is_refused(edge_token: str) -> None:
    client = TestClient(create_app("web", [web.router], make_logger("web")),
                        raise_server_exceptions=False)
    bare = client.get("/")
    assert bare.status_code == 403
    assert "CloudFront" in bare.json()["error"]["message"]
    assert client.get("/", headers={"x-origin-verify": "wrong"}).status_code == 403
    assert client.get("/", headers={"x-origin-verify": edge_token}).status_code == 200


def test_the_viewer_address_is_believed_only_with_the_edge_token(edge_token: str) -> None:
    from amazon_pilot.platform.ratelimit import client_ip

    event = {"requestContext": {"http": {"sourceIp": "130.176.1.1"}}}  # a CloudFront address
    forged = {"aws.event": event, "headers": [(b"x-viewer-ip", b"10.9.9.9")]}
    assert client_ip(forged) == "130.176.1.1"
    verified = {"aws.event": event, "headers": [(b"x-origin-verify", edge_token.encode()),
                                                 (b"x-viewer-ip", b"198.51.100.7")]}
    assert client_ip(verified) == "198.51.100.7"


def test_without_an_edge_the_headers_mean_nothing() -> None:
    from amazon_pilot.platform.ratelimit import client_ip

    event = {"requestContext": {"http": {"sourceIp": "203.0.113.5"}}}
    scope = {"aws.event": event, "headers": [(b"x-origin-verify", b""),
                                             (b"x-viewer-ip", b"10.9.9.9")]}
    assert client_ip(scope) == "203.0.113.5"
    client = TestClient(create_app("web", [web.router], make_logger("web")))
    assert client.get("/").status_code == 200


def _edge_properties(logical_id: str) -> dict[str, Any]:
    """A resource's properties with the intrinsics resolved as CloudFormation would."""
    ctx = ResolveContext("pilot", "us-east-1", TEMPLATE.parameter_defaults() | {
        "EnableEdge": "true", "BlockedIpv4Cidrs": "203.0.113.7/32"})
    evaluate_conditions(TEMPLATE.raw, ctx)
    for ipset in ("WebIpv4BlockList", "WebIpv6BlockList"):
        ctx.attrs[(ipset, "Arn")] = f"arn:aws:wafv2:us-east-1:000000000000:global/ipset/{ipset}/1"
    ctx.attrs[("WebAcl", "Arn")] = "arn:aws:wafv2:us-east-1:000000000000:global/webacl/w/1"
    props = resolve(RESOURCES[logical_id]["Properties"], ctx)
    if logical_id == "WebIpv4BlockList":
        props["Addresses"] = props["Addresses"].split(",")  # a CommaDelimitedList
    return dict(props)


# Where CloudFormation's WAFv2 names differ from the API's (cfn-lint checks the former).
_CFN_RENAMES = {"IPSetReferenceStatement": {"Arn": "ARN"}}


def _cfn_to_api(node: Any, renames: dict[str, str] | None = None) -> Any:
    if isinstance(node, list):
        return [_cfn_to_api(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {(renames or {}).get(key, key): _cfn_to_api(value, _CFN_RENAMES.get(key))
            for key, value in node.items()}


@pytest.mark.parametrize(("logical_id", "service", "operation", "wrap"), [
    ("WebAcl", "wafv2", "CreateWebACL", None),
    ("WebIpv4BlockList", "wafv2", "CreateIPSet", None),
    ("WebIpv6BlockList", "wafv2", "CreateIPSet", None),
    ("WebAclLogging", "wafv2", "PutLoggingConfiguration", "LoggingConfiguration"),
    ("DashboardHeadersPolicy", "cloudfront", "CreateResponseHeadersPolicy", None),
    ("WebOriginAccessControl", "cloudfront", "CreateOriginAccessControl", None),
    ("DashboardRewriteFunction", "cloudfront", "CreateFunction", None),
    ("ApiViewerFunction", "cloudfront", "CreateFunction", None),
])
def test_edge_resources_match_the_published_api(logical_id: str, service: str, operation: str,
                                               wrap: str | None) -> None:
    """These resources' CloudFormation properties are the API's shapes: botocore's model
    of the API (AWS's, not ours) must accept them, names, nesting and types."""
    import botocore.session
    from botocore.validate import ParamValidator

    props = _edge_properties(logical_id)
    props.pop("AutoPublish", None)  # CloudFormation's own: it calls PublishFunction
    for rule in props.get("Rules", []):
        statement = rule["Statement"].get("RateBasedStatement")
        if statement:
            statement["Limit"] = int(statement["Limit"])  # CloudFormation converts the Number
    params = _cfn_to_api({wrap: props} if wrap else props)
    model = botocore.session.get_session().get_service_model(service)
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()

"""The CloudWatch dashboard and the saved Logs Insights queries in template.yaml, checked
against what exists: the metrics the code emits (platform/metrics_catalog.py, the one
list record_metric accepts), the resources of the template, and the fields the code and
API Gateway write to the logs. A widget for a metric nothing emits, an emitted metric
nobody looks at, a query on a log group or field that does not exist: each fails here.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from amazon_pilot.platform.metrics_catalog import BY_NAME, CATALOG, NAMESPACE
from pilot_dev.runtime.template import load_template, repo_root

TEMPLATE = load_template()
RESOURCES = TEMPLATE.resources


def _placeholder(name: str) -> str:
    return f"<<{name}>>"


def dashboard_body() -> dict[str, Any]:
    """The DashboardBody with every ${X} / ${X.Attr} replaced by <<X>> / <<X.Attr>>, so
    the JSON can be read and each reference traced to its resource."""
    [dashboard] = TEMPLATE.resources_of_type("AWS::CloudWatch::Dashboard").values()
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(text, str)
    return dict(json.loads(re.sub(r"\$\{([^}!]+)\}", lambda m: _placeholder(m.group(1)), text)))


BODY = dashboard_body()
WIDGETS = BODY["widgets"]


def metric_lines() -> list[tuple[str, dict[str, Any]]]:
    """(widget title, metric) for every metric line: {"namespace", "name", "dims"}, or
    {"expression"} for metric math, SEARCH expressions resolved to their metric."""
    found: list[tuple[str, dict[str, Any]]] = []
    for widget in WIDGETS:
        if widget["type"] != "metric":
            continue
        props = widget["properties"]
        previous: list[Any] = []
        for line in props["metrics"]:
            if isinstance(line[0], dict):  # [{"expression": ...}]
                for namespace, name in re.findall(
                        r"SEARCH\('\{([^,}]+)[^}]*\} MetricName=\"(\w+)\"", line[0]["expression"]):
                    dims = re.search(r"\{[^,}]+,?([^}]*)\}", line[0]["expression"])
                    keys = tuple(k for k in (dims.group(1) if dims else "").split(",") if k)
                    found.append((props["title"], {"namespace": namespace, "name": name,
                                                   "dims": dict.fromkeys(keys, "*")}))
                continue
            parts = [p for p in line if not isinstance(p, dict)]
            parts = [previous[i] if p == "." and i < len(previous) else p
                     for i, p in enumerate(parts)]
            previous = parts
            namespace, name, *pairs = parts
            dims = dict(zip(pairs[::2], pairs[1::2], strict=True))
            found.append((props["title"], {"namespace": namespace, "name": name, "dims": dims}))
    return found


METRICS = metric_lines()


def _ref(value: str) -> tuple[str, str | None]:
    match = re.fullmatch(r"<<([A-Za-z0-9]+)(?:\.([A-Za-z]+))?>>", value)
    assert match, f"dimension value {value!r} is not a reference to a template resource"
    return match.group(1), match.group(2)


# ---------------------------------------------------------------- custom metrics


def test_every_custom_metric_widget_names_a_catalogued_metric() -> None:
    custom = [(t, m) for t, m in METRICS if not m["namespace"].startswith("AWS/")]
    assert custom, "the dashboard shows no business metric"
    for title, metric in custom:
        assert metric["namespace"] == NAMESPACE, (title, metric)
        spec = BY_NAME.get(metric["name"])
        assert spec is not None, f"{title}: {metric['name']} is emitted by nothing"
        assert set(metric["dims"]) <= set(spec.dimensions), (title, metric)


def test_every_catalogued_metric_has_a_widget_or_a_reason() -> None:
    shown = {m["name"] for _, m in METRICS if m["namespace"] == NAMESPACE}
    for spec in CATALOG:
        assert spec.name in shown or spec.no_widget_reason, (
            f"{spec.name} is emitted but neither on the dashboard nor given a reason")


def _recorded_metric_names() -> set[str]:
    """Every literal name passed to record_metric in the shipped code."""
    names: set[str] = set()
    for path in (repo_root() / "shared" / "amazon_pilot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "record_metric"
                    and node.args):
                arg = node.args[0]
                if isinstance(arg, ast.Constant):
                    names.add(str(arg.value))
                elif isinstance(arg, ast.IfExp):
                    names |= {str(b.value) for b in (arg.body, arg.orelse)
                              if isinstance(b, ast.Constant)}
    return names


def test_the_catalog_is_what_the_code_records() -> None:
    """Both ways: nothing recorded outside the catalog (record_metric would raise at
    run time), nothing in the catalog that no code records."""
    recorded = _recorded_metric_names()
    assert recorded == set(BY_NAME), (
        f"recorded, not catalogued: {recorded - set(BY_NAME)}; "
        f"catalogued, never recorded: {set(BY_NAME) - recorded}")


def test_nothing_records_metrics_around_the_catalog() -> None:
    """Powertools' add_metric called directly would bypass the catalog."""
    for path in (repo_root() / "shared" / "amazon_pilot").rglob("*.py"):
        if path.name == "observability.py":
            continue
        assert ".add_metric(" not in path.read_text(), path


# ---------------------------------------------------------------- AWS metrics


def test_every_aws_metric_names_a_resource_of_the_template() -> None:
    expected_type = {"FunctionName": "AWS::Serverless::Function", "QueueName": "AWS::SQS::Queue",
                     "ApiId": "AWS::Serverless::HttpApi"}
    aws = [(t, m) for t, m in METRICS if m["namespace"].startswith("AWS/")]
    assert aws
    for title, metric in aws:
        assert metric["dims"], (title, metric)
        for key, value in metric["dims"].items():
            logical_id, attr = _ref(value)
            assert logical_id in RESOURCES, f"{title}: {logical_id} is not in the template"
            assert RESOURCES[logical_id]["Type"] == expected_type[key], (title, key, value)
            assert attr == ("QueueName" if key == "QueueName" else None), (title, value)


def _shown(namespace: str, name: str) -> set[str]:
    return {_ref(v)[0] for _, m in METRICS if (m["namespace"], m["name"]) == (namespace, name)
            for v in m["dims"].values()}


@pytest.mark.parametrize("metric", ["Invocations", "Errors", "Throttles", "Duration",
                                    "ConcurrentExecutions"])
def test_every_function_is_on_every_function_panel(metric: str) -> None:
    assert _shown("AWS/Lambda", metric) == set(TEMPLATE.functions), metric


def test_every_queue_shows_depth_in_flight_and_age_and_every_dlq_its_depth() -> None:
    queues = TEMPLATE.resources_of_type("AWS::SQS::Queue")
    sources = {q for q, r in queues.items() if "RedrivePolicy" in (r.get("Properties") or {})}
    dlqs = set(queues) - sources
    for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
                   "ApproximateAgeOfOldestMessage"):
        assert sources <= _shown("AWS/SQS", metric), metric
    assert dlqs <= _shown("AWS/SQS", "ApproximateNumberOfMessagesVisible")


def test_the_api_panels_show_requests_errors_and_latency_percentiles() -> None:
    api = {m["name"] for _, m in METRICS if m["namespace"] == "AWS/ApiGateway"}
    assert {"Count", "4xx", "5xx", "Latency"} <= api
    stats = {line[-1].get("stat") for w in WIDGETS if w["type"] == "metric"
             for line in w["properties"]["metrics"]
             if isinstance(line[-1], dict) and "ApiGateway" in str(line)}
    assert {"p50", "p99"} <= stats


def test_database_panels_only_for_a_database_in_the_stack() -> None:
    """The database is the operator's (DatabaseSecretArn), not this stack's: no RDS
    panel then, since it would name an instance the template does not know."""
    has_db = bool(TEMPLATE.resources_of_type("AWS::RDS::DBInstance"))
    shows_db = any(m["namespace"] == "AWS/RDS" for _, m in METRICS)
    assert shows_db == has_db


def test_widgets_fit_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for widget in WIDGETS:
        x, y, w, h = widget["x"], widget["y"], widget["width"], widget["height"]
        assert x >= 0 and x + w <= 24, widget.get("properties", {}).get("title")
        cells = {(cx, cy) for cx in range(x, x + w) for cy in range(y, y + h)}
        assert not cells & taken, widget.get("properties", {}).get("title")
        taken |= cells


# ---------------------------------------------------------------- logs and queries


def _access_log_fields() -> set[str]:
    [api] = TEMPLATE.resources_of_type("AWS::Serverless::HttpApi").values()
    return set(json.loads(api["Properties"]["AccessLogSettings"]["Format"]))


# What Powertools' Logger writes on every line (with inject_lambda_context), and what
# the Lambda runtime adds to a log event.
POWERTOOLS_KEYS = {"level", "location", "message", "timestamp", "service", "cold_start",
                   "function_name", "function_memory_size", "function_arn",
                   "function_request_id", "correlation_id", "xray_trace_id", "exception",
                   "exception_name"}


def _logged_extra_keys() -> set[str]:
    """Keys the shipped code passes in `extra=` dicts, and those the consumer's job log
    lines spread in (subject_of, counts_of: "outcome" holds a job result's numbers)."""
    keys: set[str] = set()
    root = repo_root() / "shared" / "amazon_pilot"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "extra" and isinstance(
                    node.value, ast.Dict):
                keys |= {str(k.value) for k in node.value.keys if isinstance(k, ast.Constant)}
    from amazon_pilot.platform.consumer import counts_of, subject_of

    keys |= set(subject_of({"product_ids": [1], "product_id": 1, "report_id": "r",
                            "group_id": "g", "user_id": "u"}))
    keys |= set(counts_of({"n": 1}))
    return keys


def _fetch_result_keys() -> set[str]:
    """The keys of the dict a fetch job returns (tracking.service._fetch_and_store)."""
    tree = ast.parse((repo_root() / "shared/amazon_pilot/tracking/service.py").read_text())
    fn = next(n for n in ast.walk(tree)
              if isinstance(n, ast.FunctionDef) and n.name == "_fetch_and_store")
    keys: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
            keys |= {str(k.value) for k in node.value.keys if isinstance(k, ast.Constant)}
    return keys


KEYWORDS = {"fields", "filter", "stats", "sort", "limit", "by", "as", "and", "or", "not",
            "like", "desc", "asc", "parse", "display", "in", "SOURCE"}


def query_fields(query: str) -> set[str]:
    """The field names a Logs Insights query reads (comments, strings, regexes,
    function names and its own aliases left out)."""
    text = "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("#"))
    text = re.sub(r'"[^"]*"|\'[^\']*\'', " ", text)
    text = re.sub(r"/(?:\\.|[^/\n])+/", " ", text)
    aliases = set(re.findall(r"\bas\s+([A-Za-z_][\w]*)", text))
    aliases |= set(re.findall(r"\(\?<(\w+)>", query))  # parse's named groups
    names = set()
    for match in re.finditer(r"(?<![\w.])(@?[A-Za-z_][\w.]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name in KEYWORDS or name in aliases or name.isdigit():
            continue
        names.add(name)
    return names


@functools.cache
def _known_fields() -> set[str]:
    outcome = {f"outcome.{k}" for k in _fetch_result_keys()}
    return _access_log_fields() | POWERTOOLS_KEYS | _logged_extra_keys() | outcome


def _is_known(field: str, known: set[str]) -> bool:
    return field.startswith("@") or field in known


def _log_group_names(refs: list[Any]) -> set[str]:
    groups = TEMPLATE.resources_of_type("AWS::Logs::LogGroup")
    names = set()
    for ref in refs:
        assert isinstance(ref, dict) and ref.get("Ref") in groups, f"{ref} is not a log group"
        names.add(ref["Ref"])
    return names


QUERIES = TEMPLATE.resources_of_type("AWS::Logs::QueryDefinition")


def test_the_common_questions_have_saved_queries() -> None:
    names = {q["Properties"]["Name"]["Fn::Sub"].split("/", 1)[1] for q in QUERIES.values()}
    assert {"errors-by-function", "request-by-id", "slowest-requests",
            "product-fetch-history"} <= names


@pytest.mark.parametrize("logical_id", sorted(QUERIES))
def test_each_query_reads_log_groups_and_fields_that_exist(logical_id: str) -> None:
    props = QUERIES[logical_id]["Properties"]
    groups = _log_group_names(props["LogGroupNames"])
    assert groups
    unknown = {f for f in query_fields(props["QueryString"]) if not _is_known(f, _known_fields())}
    assert not unknown, f"{logical_id} reads fields nothing logs: {unknown}"


def test_errors_by_function_covers_every_function() -> None:
    groups = _log_group_names(QUERIES["ErrorsByFunctionQuery"]["Properties"]["LogGroupNames"])
    shorts = {s.short_name for s in TEMPLATE.functions.values()}
    named = {RESOURCES[g]["Properties"]["LogGroupName"]["Fn::Sub"].rsplit("-", 1)[-1]
             for g in groups}
    # worker-critical etc.: the last dash-part is enough to tell them apart here
    assert {s.rsplit("-", 1)[-1] for s in shorts} <= named


def test_the_dashboard_log_widget_reads_the_access_log() -> None:
    logs = [w for w in WIDGETS if w["type"] == "log"]
    assert logs
    groups = {RESOURCES[g]["Properties"]["LogGroupName"]["Fn::Sub"]: g
              for g in TEMPLATE.resources_of_type("AWS::Logs::LogGroup")}
    for widget in logs:
        query = widget["properties"]["query"]
        source = re.match(r"SOURCE '([^']+)'", query)
        assert source, query
        name = source.group(1).replace("<<", "${").replace(">>", "}")
        assert name in groups, name
        unknown = {f for f in query_fields(query.split("|", 1)[1])
                   if not _is_known(f, _known_fields())}
        assert not unknown, unknown


def test_the_fetch_history_filter_finds_the_product_in_a_real_log_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The product filter is a regex over the raw line: run it on a line the consumer's
    logger writes, for the product and for one whose number merely contains it."""
    from amazon_pilot.platform.observability import make_logger

    query = QUERIES["ProductFetchHistoryQuery"]["Properties"]["QueryString"]
    pattern = re.search(r"@message like /(\"product_ids\".*)/\n", query)
    assert pattern, query
    regex = re.compile(pattern.group(1))
    logger = make_logger("dashboard-test")
    for ids in ([42], [7, 42, 9], [142], [420, 1]):
        logger.info("job done", extra={"job": "fetch_products", "product_ids": ids})
    lines = [line for line in capsys.readouterr().out.splitlines() if "job done" in line]
    assert [bool(regex.search(line)) for line in lines] == [True, True, False, False]


def test_query_field_extraction_sees_fields_and_skips_the_rest() -> None:
    q = ('fields @timestamp, level, coalesce(a, "x") as b\n# note: ignored\n'
         '| filter message like /x y/ and job = "fetch" | stats count(*) as n by service')
    assert query_fields(q) == {"@timestamp", "level", "a", "message", "job", "service"}


def test_the_catalog_documents_each_metric() -> None:
    slos = (Path(repo_root()) / "docs" / "slos.md").read_text()
    for spec in CATALOG:
        assert spec.description and spec.unit
        assert f"`{spec.name}`" in slos, f"docs/slos.md does not list {spec.name}"


def test_each_metric_is_recorded_where_the_catalog_says() -> None:
    for spec in CATALOG:
        for module in spec.emitted_by:
            path = repo_root() / "shared" / (module.replace(".", "/") + ".py")
            assert f'"{spec.name}"' in path.read_text(), f"{spec.name} not in {module}"

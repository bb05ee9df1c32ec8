"""The local alarm evaluator (pilot_dev/runtime/alarms.py) decides as CloudWatch
documents: M of N periods, TreatMissingData, percentiles, metric math and SEARCH; and
every alarm of the template can be read and evaluated locally."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pilot_dev.runtime.alarms import (
    ALARM,
    INSUFFICIENT,
    KEEP_S,
    OK,
    AlarmDefinition,
    Evaluator,
    MetricsTap,
    MetricStore,
    alarm_definitions,
    severity_of,
    statistic,
)
from pilot_dev.runtime.gateway import AccessLog
from pilot_dev.runtime.template import ResolveContext, evaluate_conditions, load_template

NOW = 1_800_000_000.0  # a period boundary for 60 and 300
DIMS = {"FunctionName": "stack-auth"}


def alarm(**props: Any) -> AlarmDefinition:
    base = {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Statistic": "Sum",
            "Dimensions": [{"Name": "FunctionName", "Value": "stack-auth"}], "Period": 60,
            "EvaluationPeriods": 5, "DatapointsToAlarm": 2, "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}
    base.update(props)
    return AlarmDefinition("AuthFunctionErrorsAlarm", "stack-AuthFunctionErrorsAlarm", "",
                           "ticket", base)


def state_after(definition: AlarmDefinition, points: dict[int, list[float]],
                metric: str = "Errors") -> str:
    """`points`: minutes before NOW -> values put in that minute."""
    store = MetricStore()
    for minutes_ago, values in points.items():
        for v in values:
            store.put("AWS/Lambda", metric, DIMS, v, at=NOW + 1 - 60 * minutes_ago)
    evaluator = Evaluator([definition], store, clock=lambda: NOW + 1)
    evaluator.evaluate()
    return evaluator.states[definition.name].value


def test_datapoints_to_alarm_m_out_of_n() -> None:
    assert state_after(alarm(), {0: [1]}) == OK  # 1 of 5 breaching: not enough
    assert state_after(alarm(), {0: [1], 3: [2]}) == ALARM  # 2 of 5
    assert state_after(alarm(), {0: [1], 5: [2]}) == OK  # the second is outside the window


@pytest.mark.parametrize(("treat", "expected"), [
    ("missing", INSUFFICIENT), ("notBreaching", OK), ("breaching", ALARM),
    ("ignore", INSUFFICIENT)])  # ignore keeps the state it has (the initial one here)
def test_no_data_at_all(treat: str, expected: str) -> None:
    assert state_after(alarm(TreatMissingData=treat), {}) == expected


def test_missing_periods_count_as_breaching_when_told() -> None:
    # one good datapoint, four missing: breaching missing data makes 4 of 5 breach
    assert state_after(alarm(TreatMissingData="breaching"), {0: [0]}) == ALARM
    assert state_after(alarm(TreatMissingData="notBreaching"), {0: [0]}) == OK


def test_percentile_statistic() -> None:
    latency = alarm(MetricName="Duration", Statistic=None, ExtendedStatistic="p99",
                    Threshold=2000, EvaluationPeriods=1, DatapointsToAlarm=1)
    assert state_after(latency, {0: [100] * 98 + [5000, 5000]}, "Duration") == ALARM
    assert state_after(latency, {0: [100] * 200 + [5000]}, "Duration") == OK
    assert statistic([1, 2, 3, 4], "p50") == 2 and statistic([], "Sum") is None


def test_metric_math_and_search() -> None:
    store = MetricStore()
    api = [{"Name": "ApiId", "Value": "api"}]
    for status in [200] * 90 + [500] * 10:
        store.put("AWS/ApiGateway", "Count", {"ApiId": "api"}, 1, at=NOW + 10)
        store.put("AWS/ApiGateway", "5xx", {"ApiId": "api"}, 1 if status >= 500 else 0,
                  at=NOW + 10)
    rate = AlarmDefinition("Api5xxAlarm", "s-Api5xxAlarm", "", "ticket", {
        "Metrics": [
            {"Id": "errors", "ReturnData": False, "MetricStat": {"Metric": {
                "Namespace": "AWS/ApiGateway", "MetricName": "5xx", "Dimensions": api},
                "Period": 300, "Stat": "Sum"}},
            {"Id": "requests", "ReturnData": False, "MetricStat": {"Metric": {
                "Namespace": "AWS/ApiGateway", "MetricName": "Count", "Dimensions": api},
                "Period": 300, "Stat": "Sum"}},
            {"Id": "rate", "Expression": "IF(requests > 0, 100 * errors / requests, 0)",
             "ReturnData": True}],
        "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching"})
    for name in ("stack-auth", "stack-products", "other-stack-auth"):
        store.put("AWS/Lambda", "Errors", {"FunctionName": name}, 3, at=NOW + 10)
    search = AlarmDefinition("FunctionErrorsAlarm", "s-FunctionErrorsAlarm", "", "ticket", {
        "Metrics": [{"Id": "errors", "Period": 300, "ReturnData": True, "Expression":
                     "SUM(SEARCH('{AWS/Lambda,FunctionName} MetricName=\"Errors\" "
                     "FunctionName=\"stack-\"', 'Sum', 300))"}],
        "EvaluationPeriods": 1, "Threshold": 5, "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching"})
    evaluator = Evaluator([rate, search], store, clock=lambda: NOW + 20)
    assert evaluator.datapoints(rate, NOW + 20)[-1][1] == pytest.approx(10.0)
    # "stack-" matches stack-auth and stack-products (and, as a partial match, other-stack-auth)
    assert evaluator.datapoints(search, NOW + 20)[-1][1] == 9.0
    evaluator.evaluate()
    assert evaluator.states["s-Api5xxAlarm"].value == ALARM
    assert evaluator.states["s-FunctionErrorsAlarm"].value == ALARM
    history = evaluator.snapshot()[0]["history"]
    assert history[0]["from"] == INSUFFICIENT and history[0]["to"] == ALARM


def test_transitions_are_reported_once_with_history() -> None:
    store = MetricStore()
    seen: list[str] = []
    definition = alarm(EvaluationPeriods=1, DatapointsToAlarm=1)
    evaluator = Evaluator([definition], store, clock=lambda: NOW + 1,
                          on_transition=lambda d, s: seen.append(s.value))
    evaluator.evaluate()
    store.put("AWS/Lambda", "Errors", DIMS, 1, at=NOW + 1)
    evaluator.evaluate()
    evaluator.evaluate()
    assert seen == [OK, ALARM]
    assert [h["to"] for h in evaluator.states[definition.name].history] == [OK, ALARM]


ACCESS_FORMAT = '{"status":"$context.status","latency":"$context.responseLatency"}'


def test_access_log_and_emf_lines_become_metrics() -> None:
    store = MetricStore()
    shipped: list[tuple[str, Any]] = []
    tap = MetricsTap(lambda group, lines: shipped.append((group, lines)), store,
                     access_group="/api", api_id="api")
    access = AccessLog(ACCESS_FORMAT, "/api", tap, measure=tap.access)
    access.write({"status": "503", "responseLatency": "12"})
    access.write({"status": "200", "responseLatency": "30"})
    emf = {"_aws": {"Timestamp": int(NOW * 1000), "CloudWatchMetrics": [
        {"Namespace": "AP", "Dimensions": [["service"]],
         "Metrics": [{"Name": "JobsProcessed"}]}]}, "service": "worker", "JobsProcessed": 2}
    tap("/aws/lambda/f", [json.dumps(emf), "plain"])
    # shipping renders them, unchanged; the access metrics are taken as a line renders
    assert [lines() for _, lines in shipped[:2]] == [['{"status":"503","latency":"12"}'],
                                                     ['{"status":"200","latency":"30"}']]
    assert len(shipped[2][1]()) == 2
    assert store.samples("AWS/ApiGateway", "5xx", {"ApiId": "api"}, 0, 2e10) == [1, 0]
    assert store.samples("AWS/ApiGateway", "Latency", {"ApiId": "api"}, 0, 2e10) == [12, 30]
    assert store.samples("AP", "JobsProcessed", {"service": "worker"}, NOW, NOW + 1) == [2]


def test_severity_is_read_leniently() -> None:
    assert severity_of({}, "Messages in the DLQ") == "ticket"
    assert severity_of({"Metadata": {"Severity": "page"}}, "x") == "page"
    assert severity_of({}, "[page] API down") == "page"
    assert severity_of({"Properties": {"Tags": [{"Key": "severity", "Value": "PAGE"}]}},
                       "") == "page"


def test_every_template_alarm_is_read_and_evaluated() -> None:
    template = load_template()
    ctx = ResolveContext("stack", "us-east-1", {**template.parameter_defaults(),
                                               "Stage": "local"})
    ctx.conditions = evaluate_conditions(template.raw, ctx)
    for logical_id, resource in template.resources.items():
        if resource.get("Type") == "AWS::SQS::Queue":
            ctx.attrs[(logical_id, "QueueName")] = f"stack-{logical_id}"
        ctx.refs.setdefault(logical_id, f"stack-{logical_id}")
        ctx.attrs.setdefault((logical_id, "Arn"), f"arn:aws:local:{logical_id}")
    definitions = alarm_definitions(template, ctx)
    declared = [k for k, r in template.resources.items()
                if r.get("Type") in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
                and ctx.conditions.get(r.get("Condition", ""), True)]
    assert sorted(d.logical_id for d in definitions) == sorted(declared)
    evaluator = Evaluator(definitions, MetricStore(), clock=lambda: NOW)
    evaluator.evaluate()
    # no data yet: every alarm decided (all treat missing data as not breaching today)
    assert {s.value for s in evaluator.states.values()} <= {OK, INSUFFICIENT}
    assert all(evaluator.states[d.name].history for d in definitions
               if d.treat_missing != "ignore")


def test_a_composite_alarm_follows_its_rule() -> None:
    store = MetricStore()
    errors = alarm(EvaluationPeriods=1, DatapointsToAlarm=1)
    latency = alarm(MetricName="Duration", Threshold=1000, EvaluationPeriods=1,
                    DatapointsToAlarm=1)
    latency.name = "stack-AuthFunctionLatencyAlarm"
    incident = AlarmDefinition("ApiIncident", "stack-ApiIncident", "", "page", {
        "AlarmRule": 'ALARM("stack-AuthFunctionErrorsAlarm") OR (ALARM(arn:aws:cloudwatch:'
                     'us-east-1:1:alarm:stack-AuthFunctionLatencyAlarm) AND NOT OK(x))'},
        composite=True)
    evaluator = Evaluator([incident, errors, latency], store, clock=lambda: NOW + 1)
    evaluator.definitions.sort(key=lambda d: d.composite)  # as alarm_definitions orders them
    evaluator.evaluate()
    assert evaluator.states["stack-ApiIncident"].value == OK
    store.put("AWS/Lambda", "Duration", DIMS, 5000, at=NOW + 1)
    evaluator.evaluate()
    assert evaluator.states["stack-AuthFunctionLatencyAlarm"].value == ALARM
    assert evaluator.states["stack-ApiIncident"].value == ALARM
    assert "the rule holds" in evaluator.states["stack-ApiIncident"].reason


def test_a_window_holds_exactly_the_samples_stamped_inside_it_and_old_ones_expire() -> None:
    store = MetricStore()
    dims = {"FunctionName": "f"}
    stamps = [NOW + 0.25, NOW + 0.75, NOW + 1.5, NOW + 2.0, NOW + 2.5, NOW + 3.9]
    for value, at in enumerate(stamps):
        store.put("AWS/Lambda", "Duration", dims, value, at=at)
    store.put("AWS/Lambda", "Duration", dims, 99, at=NOW + 1.2)  # a late EMF stamp
    # (in order of their second; no statistic depends on the order)
    assert sorted(store.samples("AWS/Lambda", "Duration", dims, NOW + 0.5, NOW + 2.5)) == [
        1, 2, 3, 99]
    assert sorted(store.samples("AWS/Lambda", "Duration", dims, NOW, NOW + 10)) == [
        0, 1, 2, 3, 4, 5, 99]
    assert store.samples("AWS/Lambda", "Duration", dims, NOW + 4, NOW + 10) == []
    store.put("AWS/Lambda", "Duration", dims, 7, at=NOW + KEEP_S + 3)  # hours later
    assert store.samples("AWS/Lambda", "Duration", dims, 0, 2e10) == [5, 7]


def test_a_settled_period_keeps_its_datapoint_and_the_current_one_moves() -> None:
    store = MetricStore()
    clock = [NOW + 1]
    evaluator = Evaluator([alarm()], store, clock=lambda: clock[0])
    store.put("AWS/Lambda", "Errors", DIMS, 1, at=NOW - 120 + 5)  # two minutes ago
    store.put("AWS/Lambda", "Errors", DIMS, 1, at=NOW + 0.5)  # this minute
    assert [v for _, v in evaluator.datapoints(alarm(), clock[0])][-3:] == [1, None, 1]
    # a line stamped two minutes back arrives late: that period has settled, its
    # datapoint stays; the current period takes what arrives in it
    store.put("AWS/Lambda", "Errors", DIMS, 5, at=NOW - 120 + 6)
    store.put("AWS/Lambda", "Errors", DIMS, 2, at=NOW + 0.7)
    assert [v for _, v in evaluator.datapoints(alarm(), clock[0])][-3:] == [1, None, 3]


def test_an_access_line_stays_json_whatever_the_path_holds() -> None:
    got: list[str] = []
    access = AccessLog('{"path":"$context.path","status":"$context.status"}', "/api",
                       lambda group, lines: got.extend(lines()))
    hostile = '/v1/"x\\y\n\x01'
    access.write({"path": hostile, "status": "404"})
    access.write({"path": "/v1/products"})  # no status: "-", as API Gateway writes
    assert [json.loads(line) for line in got] == [{"path": hostile, "status": "404"},
                                                  {"path": "/v1/products", "status": "-"}]

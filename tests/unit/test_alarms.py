"""Every AWS::CloudWatch::Alarm in template.yaml, checked against the rules CloudWatch
applies to PutMetricAlarm when CloudFormation creates it. cfn-lint, `sam validate
--lint` and LocalStack accept alarms CloudWatch then rejects (the first deploy rolled
back on FunctionErrorsAlarm), so the rules are written out here, each with its source:

[API]  Amazon CloudWatch API Reference, PutMetricAlarm and MetricDataQuery
       (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html,
       .../API_MetricDataQuery.html); the same text ships as botocore's
       cloudwatch/2010-08-01 service model, which test_rules_match_the_published_model
       reads to check the enumerations and limits below.
[NULL] "Period must not be null (Service: CloudWatch, Status Code: 400)": an alarm
       whose Metrics hold no MetricStat takes its period from the returned expression,
       which then needs Period (hashicorp/terraform-provider-aws#11011 with a SEARCH
       expression, aws/aws-cdk#7155 with INSIGHT_RULE_METRIC).
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import botocore
import pytest
import yaml

from pilot_dev.runtime.template import _CfnLoader, load_template

STATISTICS = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"}  # [API] Statistic
OPERATORS = {"GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold",
             "LessThanOrEqualToThreshold"}  # [API] ComparisonOperator, static thresholds
BAND_OPERATORS = {"LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold",
                  "GreaterThanUpperThreshold"}  # [API] only with anomaly detection bands
MISSING = {"breaching", "notBreaching", "ignore", "missing"}  # [API] TreatMissingData
# [API] ExtendedStatistic: p90, tm90, tc90, ts90, wm90, IQM, PR(n:m), TC/TM/TS/WM(X%:X%)
_PCT = r"(100(\.0+)?|\d{1,2}(\.\d+)?)"
_TRIM = r"(1\d|[2-8]\d|90)(\.\d+)?%"
EXTENDED = re.compile(
    rf"^(p|tm|tc|ts|wm){_PCT}$|^IQM$|^PR\([^:()]*:[^:()]*\)$"
    rf"|^(TC|TM|TS|WM)\(({_TRIM})?:({_TRIM})?\)$")
METRIC_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")  # [API] MetricDataQuery.Id
SINGLE_METRIC_ONLY = ("Namespace", "MetricName", "Dimensions", "Period", "Unit", "Statistic",
                      "ExtendedStatistic")  # [API] Metrics: none of these beside it


def _alarm_period_ok(period: int) -> bool:
    return period in (10, 20, 30) or (period >= 60 and period % 60 == 0)  # [API] Period


def _query_period_ok(period: int) -> bool:
    return period in (1, 5, 10, 20, 30) or (period >= 60 and period % 60 == 0)  # [API] MDQ


def alarm_problems(props: dict[str, Any]) -> list[str]:
    """What CloudWatch would refuse in one alarm's Properties (empty list: accepted)."""
    problems: list[str] = []
    has_metrics, has_name = "Metrics" in props, "MetricName" in props
    if has_metrics == has_name:
        problems.append("give exactly one of MetricName and Metrics")
    evaluation = props.get("EvaluationPeriods")
    if not isinstance(evaluation, int) or evaluation < 1:
        problems.append("EvaluationPeriods must be an integer >= 1")
        evaluation = 1
    datapoints = props.get("DatapointsToAlarm", evaluation)
    if not isinstance(datapoints, int) or not 1 <= datapoints <= evaluation:
        problems.append("DatapointsToAlarm must be between 1 and EvaluationPeriods")
    period: int | None = None
    if has_name:
        period = _single_metric(props, problems)
    if has_metrics:
        period = _metric_math(props, problems)
    if period:
        # [API] Period: Period x EvaluationPeriods <= 7 days; <= 1 day below 1-hour periods
        limit = 86_400 if period < 3600 else 604_800
        if period * evaluation > limit:
            problems.append(f"Period x EvaluationPeriods = {period * evaluation} s > {limit} s")
    static = "Threshold" in props
    if static == ("ThresholdMetricId" in props):
        problems.append("give exactly one of Threshold and ThresholdMetricId")
    operator = props.get("ComparisonOperator")
    if operator not in (OPERATORS if static else BAND_OPERATORS):
        problems.append(f"ComparisonOperator {operator!r} does not fit a "
                        f"{'static threshold' if static else 'band'}")
    if props.get("TreatMissingData", "missing") not in MISSING:
        problems.append(f"TreatMissingData must be one of {MISSING}")
    for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        if len(props.get(key) or []) > 5:  # [API] ResourceList max 5
            problems.append(f"{key} takes at most 5 actions")
    return problems


def _single_metric(props: dict[str, Any], problems: list[str]) -> int | None:
    if "Namespace" not in props:
        problems.append("MetricName needs its Namespace")
    if ("Statistic" in props) == ("ExtendedStatistic" in props):
        problems.append("give exactly one of Statistic and ExtendedStatistic")
    if "Statistic" in props and props["Statistic"] not in STATISTICS:
        problems.append(f"Statistic {props['Statistic']!r} is not one of {STATISTICS}")
    if "ExtendedStatistic" in props and not EXTENDED.match(str(props["ExtendedStatistic"])):
        problems.append(f"ExtendedStatistic {props['ExtendedStatistic']!r} is malformed")
    if "EvaluateLowSampleCountPercentile" in props and (
            "ExtendedStatistic" not in props
            or props["EvaluateLowSampleCountPercentile"] not in ("evaluate", "ignore")):
        problems.append("EvaluateLowSampleCountPercentile is for percentiles: evaluate or ignore")
    period = props.get("Period")
    if not isinstance(period, int) or not _alarm_period_ok(period):
        problems.append(f"Period {period!r} must be 10, 20, 30 or a multiple of 60")
        return None
    return period


def _metric_math(props: dict[str, Any], problems: list[str]) -> int | None:
    problems += [f"{key} cannot stand beside Metrics" for key in SINGLE_METRIC_ONLY
                 if key in props]
    queries = props["Metrics"] if isinstance(props["Metrics"], list) else []
    problems += _query_problems(queries)
    returned = [q for q in queries if q.get("ReturnData", True) is not False]
    if len(returned) != 1:
        return None
    if not any("MetricStat" in q for q in queries) and "Period" not in returned[0]:
        problems.append("no MetricStat: the returned expression needs Period [NULL]")
    period = returned[0].get("Period") or (returned[0].get("MetricStat") or {}).get("Period")
    return period if isinstance(period, int) else None


def _query_problems(queries: list[dict[str, Any]]) -> list[str]:
    problems = []
    if not queries:
        problems.append("Metrics is empty")
    stats = [q for q in queries if "MetricStat" in q]
    expressions = [q for q in queries if "Expression" in q]
    if len(queries) > 20 or len(stats) > 10 or len(expressions) > 10:  # [API] MDQ
        problems.append("at most 20 queries, 10 MetricStat and 10 Expression")
    ids = [q.get("Id") for q in queries]
    if len(set(ids)) != len(ids):
        problems.append("query Ids must be unique")
    for query in queries:
        qid = query.get("Id")
        if not isinstance(qid, str) or not METRIC_ID.match(qid):
            problems.append(f"query Id {qid!r}: letters, digits, _; a lowercase first letter")
        if ("MetricStat" in query) == ("Expression" in query):
            problems.append(f"query {qid}: exactly one of MetricStat and Expression")
        stat = query.get("MetricStat") or {}
        if "MetricStat" in query:
            if not isinstance(stat.get("Period"), int) or not _query_period_ok(stat["Period"]):
                problems.append(f"query {qid}: MetricStat.Period {stat.get('Period')!r} "
                                f"must be 1, 5, 10, 20, 30 or a multiple of 60")
            name = stat.get("Stat")
            if name not in STATISTICS and not EXTENDED.match(str(name)):
                problems.append(f"query {qid}: Stat {name!r} is not a statistic")
        if "Period" in query and (not isinstance(query["Period"], int)
                                  or not _query_period_ok(query["Period"])):
            problems.append(f"query {qid}: Period {query['Period']!r} is not a valid period")
    # [API] ReturnData defaults to true; exactly one query is the alarm's value
    returned = [q for q in queries if q.get("ReturnData", True) is not False]
    if len(returned) != 1:
        problems.append(f"exactly one query may return data, {len(returned)} do")
    return problems


def _alarms() -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties") or {}
            for k, v in load_template().resources_of_type("AWS::CloudWatch::Alarm").items()}


@pytest.mark.parametrize("name", sorted(_alarms()))
def test_cloudwatch_accepts_the_alarm(name: str) -> None:
    assert alarm_problems(_alarms()[name]) == []


def _composites() -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties") or {} for k, v in
            load_template().resources_of_type("AWS::CloudWatch::CompositeAlarm").items()}


SEVERITY = re.compile(r"^\[(page|ticket)\] ")


def severity(props: dict[str, Any]) -> str | None:
    """An alarm's severity: the "[page]" or "[ticket]" its AlarmDescription starts with
    (docs/slos.md, "Alert routing"; the local evaluator reads the same prefix)."""
    description = props.get("AlarmDescription")
    if isinstance(description, dict):  # !Sub "[ticket] ${Fn} ..."
        description = description.get("Fn::Sub")
    match = SEVERITY.match(description) if isinstance(description, str) else None
    return match.group(1) if match else None


def _rule_members(rule: Any) -> set[str]:
    """Logical ids of the alarms an AlarmRule names (ALARM("${X}")), in every branch of
    an Fn::If."""
    if isinstance(rule, dict) and "Fn::If" in rule:
        return _rule_members(rule["Fn::If"][1]) | _rule_members(rule["Fn::If"][2])
    text = rule.get("Fn::Sub") if isinstance(rule, dict) else rule
    assert isinstance(text, str), rule
    return set(re.findall(r'ALARM\("\$\{([A-Za-z0-9]+)\}"\)', text))


@pytest.mark.parametrize("name", sorted(_alarms()))
def test_every_ticket_alarm_notifies_on_alarm_and_on_ok(name: str) -> None:
    props = _alarms()[name]
    assert severity(props) in ("page", "ticket"), f"{name}: no [page]/[ticket] prefix"
    if severity(props) == "ticket":
        assert props.get("AlarmActions") == [{"Ref": "TicketTopic"}]
        assert props.get("OKActions") == [{"Ref": "TicketTopic"}]


def test_every_page_alarm_pages_once_through_exactly_one_composite() -> None:
    """A page-severity metric alarm notifies nobody itself; the composite it belongs to
    pages (and sends OK) on PageTopic, so one incident is one page."""
    alarms, composites = _alarms(), _composites()
    assert composites, "no composite alarm"
    membership: dict[str, list[str]] = {}
    for composite, props in composites.items():
        assert severity(props) == "page", composite
        assert props.get("AlarmActions") == [{"Ref": "PageTopic"}], composite
        assert props.get("OKActions") == [{"Ref": "PageTopic"}], composite
        members = _rule_members(props["AlarmRule"])
        assert members and members <= set(alarms), f"{composite}: {members - set(alarms)}"
        for member in members:
            membership.setdefault(member, []).append(composite)
    for name, props in alarms.items():
        if severity(props) == "page":
            assert "AlarmActions" not in props and "OKActions" not in props, name
            assert len(membership.get(name, [])) == 1, f"{name}: in {membership.get(name)}"
        else:
            assert name not in membership, f"{name} is a ticket inside a page composite"


def test_a_composite_names_only_alarms_that_exist_whatever_the_conditions() -> None:
    """A member alarm with a Condition (ProbeFailedAlarm) is named only in the branch of
    an Fn::If on that same condition: CloudFormation refuses a rule naming an alarm
    that was not created."""
    template = load_template()
    for composite, props in _composites().items():
        rule = props["AlarmRule"]
        plain = rule if not (isinstance(rule, dict) and "Fn::If" in rule) else None
        for member in _rule_members(plain) if plain is not None else set():
            assert "Condition" not in template.resources[member], (composite, member)
        if plain is None:
            condition, when_true, when_false = rule["Fn::If"]
            for member in _rule_members(when_true) - _rule_members(when_false):
                assert template.resources[member].get("Condition") == condition, member
            for member in _rule_members(when_false):
                assert "Condition" not in template.resources[member], member


def test_composite_rules_are_within_cloudwatch_limits() -> None:
    """[API] PutCompositeAlarm: AlarmRule at most 10240 characters, up to 100 alarms."""
    for composite, props in _composites().items():
        members = _rule_members(props["AlarmRule"])
        assert 1 <= len(members) <= 100, composite
        assert "ActionsSuppressor" not in props or props.get("ActionsSuppressorWaitPeriod")


def test_the_probe_alarm_fires_when_the_probe_is_silent() -> None:
    """No datapoint from the probe is a failure too (it could not run)."""
    probe = _alarms()["ProbeFailedAlarm"]
    assert probe["TreatMissingData"] == "breaching"
    assert (probe["Namespace"], probe["MetricName"]) == ("AmazonPilot", "ProbeSuccess")
    from amazon_pilot.platform.metrics_catalog import BY_NAME

    assert "ProbeSuccess" in BY_NAME


def test_every_function_has_its_errors_and_p99_latency_alarm() -> None:
    template, alarms = load_template(), _alarms()
    for logical_id, spec in template.functions.items():
        errors = alarms.get(f"{logical_id}ErrorsAlarm")
        latency = alarms.get(f"{logical_id}LatencyAlarm")
        assert errors and latency, f"{logical_id}: ErrorsAlarm and LatencyAlarm expected"
        for alarm, metric in ((errors, "Errors"), (latency, "Duration")):
            assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
            assert alarm["Dimensions"] == [{"Name": "FunctionName",
                                            "Value": {"Ref": logical_id}}]
        assert latency["ExtendedStatistic"] == "p99"
        # a latency alarm that could only fire after the function timed out is no alarm
        assert latency["Threshold"] < spec.timeout * 1000, logical_id


# ---------------------------------------------------------------- the checker can fail


def _yaml(text: str) -> dict[str, Any]:
    return dict(yaml.load(text, Loader=_CfnLoader))


# The alarm that rolled back the first deploy, as it was.
ORIGINAL_FUNCTION_ERRORS = """
Metrics:
  - Id: errors
    Expression: !Sub 'SUM(SEARCH(''{AWS/Lambda,FunctionName} MetricName="Errors"'', ''Sum'', 300))'
    ReturnData: true
EvaluationPeriods: 1
Threshold: 5
ComparisonOperator: GreaterThanThreshold
"""
GOOD = {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Statistic": "Sum",
        "Period": 60, "EvaluationPeriods": 5, "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold"}


@pytest.mark.parametrize(("change", "complaint"), [
    ({"Period": 45}, "multiple of 60"),
    ({"Period": 60, "EvaluationPeriods": 1441}, "86400"),
    ({"Period": 3600, "EvaluationPeriods": 169}, "604800"),
    ({"DatapointsToAlarm": 6}, "DatapointsToAlarm"),
    ({"ExtendedStatistic": "p99"}, "exactly one of Statistic and ExtendedStatistic"),
    ({"Statistic": "P99"}, "is not one of"),
    ({"ThresholdMetricId": "band"}, "exactly one of Threshold"),
    ({"ComparisonOperator": "GreaterThanUpperThreshold"}, "does not fit"),
    ({"TreatMissingData": "NotBreaching"}, "TreatMissingData"),
    ({"Metrics": [{"Id": "m", "Expression": "1"}]}, "cannot stand beside Metrics"),
    ({"OKActions": ["arn"] * 6}, "at most 5"),
])
def test_the_checker_refuses_what_cloudwatch_refuses(change: dict[str, Any],
                                                     complaint: str) -> None:
    assert alarm_problems(GOOD) == []
    assert any(complaint in p for p in alarm_problems({**GOOD, **change}))


def test_the_checker_refuses_the_alarm_that_rolled_back_the_deploy() -> None:
    problems = alarm_problems(_yaml(ORIGINAL_FUNCTION_ERRORS))
    assert problems == ["no MetricStat: the returned expression needs Period [NULL]"]


@pytest.mark.parametrize(("queries", "complaint"), [
    ([{"Id": "Errors", "Expression": "1", "Period": 60}], "lowercase first letter"),
    ([{"Id": "a", "Expression": "1", "Period": 60},
      {"Id": "b", "Expression": "a", "Period": 60}], "exactly one query may return"),
    ([{"Id": "a", "Expression": "1", "Period": 60, "ReturnData": False}], "exactly one"),
    ([{"Id": "a", "MetricStat": {"Metric": {}, "Period": 90, "Stat": "Sum"}}], "Period 90"),
    ([{"Id": "a", "MetricStat": {"Metric": {}, "Period": 60, "Stat": "Total"}}],
     "not a statistic"),
])
def test_the_checker_refuses_bad_metric_queries(queries: list[dict[str, Any]],
                                                complaint: str) -> None:
    props = {"Metrics": queries, "EvaluationPeriods": 1, "Threshold": 1,
             "ComparisonOperator": "GreaterThanThreshold"}
    assert any(complaint in p for p in alarm_problems(props)), alarm_problems(props)


@pytest.mark.parametrize("statistic", ["p99", "p99.9", "p0.0", "p100", "tm90", "IQM",
                                       "TM(10%:90%)", "PR(100:2000)", "WM(:90%)"])
def test_extended_statistics_cloudwatch_documents_pass(statistic: str) -> None:
    assert EXTENDED.match(statistic)


@pytest.mark.parametrize("statistic", ["p101", "P99", "99", "TM(5%:90%)", "WM(:95%)", "pct99"])
def test_malformed_extended_statistics_fail(statistic: str) -> None:
    assert not EXTENDED.match(statistic)


def test_rules_match_the_published_model() -> None:
    """The enumerations and limits above are those of the API model AWS publishes."""
    model_path = (Path(botocore.__file__).parent / "data" / "cloudwatch" / "2010-08-01"
                  / "service-2.json.gz")
    shapes = json.loads(gzip.decompress(model_path.read_bytes()))["shapes"]
    assert set(shapes["Statistic"]["enum"]) == STATISTICS
    assert set(shapes["ComparisonOperator"]["enum"]) == OPERATORS | BAND_OPERATORS
    assert shapes["ResourceList"]["max"] == 5
    members = shapes["PutMetricAlarmInput"]["members"]
    assert "604,800" in members["Period"]["documentation"]
    assert "86,400" in members["Period"]["documentation"]
    assert "first character must be a lowercase letter" in (
        shapes["MetricDataQuery"]["members"]["Id"]["documentation"])

"""Checks of template.yaml that cfn-lint does not make: the template is the single
source of truth, so a mistake here breaks the cloud and the local runtime alike."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from pilot_dev.runtime.schedules import parse_schedule
from pilot_dev.runtime.template import TemplateError, load_template, repo_root

TEMPLATE = load_template()
RESOURCES = TEMPLATE.resources
PARAMETERS = set(TEMPLATE.raw.get("Parameters", {}))
PSEUDO = {"AWS::StackName", "AWS::Region", "AWS::AccountId", "AWS::NoValue", "AWS::Partition",
          "AWS::URLSuffix"}
QUEUE_WEIGHTS = {"CriticalQueue": 6, "DefaultQueue": 3, "LowQueue": 1}


def _walk(node: Any) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("Ref", "Fn::GetAtt", "Fn::Sub"):
                found.append((key, value))
            found.extend(_walk(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_walk(item))
    return found


@pytest.mark.parametrize("logical_id", sorted(TEMPLATE.functions))
def test_every_handler_resolves_to_a_function_in_a_real_file(logical_id: str) -> None:
    spec = TEMPLATE.functions[logical_id]
    assert spec.handler_file.is_file(), f"{spec.handler} -> {spec.handler_file} missing"
    tree = ast.parse(spec.handler_file.read_text())
    names = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
             if isinstance(t, ast.Name)}
    names |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert spec.handler_attr in names, f"{spec.handler_file} defines no {spec.handler_attr}"


def test_every_ref_and_getatt_names_something_that_exists() -> None:
    import re

    for kind, value in _walk(TEMPLATE.raw):
        if kind == "Ref":
            assert value in RESOURCES or value in PARAMETERS or value in PSEUDO, value
        elif kind == "Fn::GetAtt":
            assert value[0] in RESOURCES, f"!GetAtt {'.'.join(value)}"
        else:
            text = value if isinstance(value, str) else value[0]
            local = set(value[1]) if isinstance(value, list) else set()
            for name in re.findall(r"\$\{([^}!]+)\}", text):
                base = name.split(".")[0]
                assert base in RESOURCES or base in PARAMETERS or name in PSEUDO or base in local, (
                    f"!Sub names unknown ${{{name}}}"
                )


def test_schedule_expressions_parse_and_name_known_jobs() -> None:
    from amazon_pilot.platform.scheduler import PLANNERS, QUEUED_JOBS

    assert TEMPLATE.schedules, "the template declares no schedule"
    for schedule in TEMPLATE.schedules:
        parse_schedule(schedule.expression)
        if schedule.function == "ProbeFunction":  # runs the outside check, no job
            assert schedule.input == {"job": "probe"}
            continue
        assert schedule.input.get("job") in {**QUEUED_JOBS, **PLANNERS}, schedule


def test_queues_have_dlqs_and_visibility_six_times_the_consumer_timeout() -> None:
    consumers = {m.queue: TEMPLATE.functions[m.function] for m in TEMPLATE.queue_mappings}
    for logical_id in QUEUE_WEIGHTS:
        props = RESOURCES[logical_id]["Properties"]
        redrive = props["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] in RESOURCES
        assert 1 <= int(redrive["maxReceiveCount"]) <= 10
        assert int(props["VisibilityTimeout"]) >= 6 * consumers[logical_id].timeout, logical_id


def test_consumers_report_partial_failures_with_weights_six_three_one() -> None:
    mappings = {m.queue: m for m in TEMPLATE.queue_mappings}
    assert set(mappings) == set(QUEUE_WEIGHTS)
    unit_batch = mappings["LowQueue"].batch_size
    unit_concurrency = mappings["LowQueue"].max_concurrency
    for queue, weight in QUEUE_WEIGHTS.items():
        mapping = mappings[queue]
        assert mapping.report_failures, queue
        assert mapping.batch_size == weight * unit_batch, queue
        assert mapping.max_concurrency == weight * unit_concurrency, queue
        assert mapping.max_concurrency >= 2  # AWS refuses less


def test_every_function_has_a_log_group_with_retention_and_a_sample_event() -> None:
    groups = [r["Properties"] for r in TEMPLATE.resources_of_type("AWS::Logs::LogGroup").values()]
    group_names = {g["LogGroupName"]["Fn::Sub"] for g in groups}
    events = [p.name for p in (repo_root() / "events").glob("*.json")]
    for spec in TEMPLATE.functions.values():
        assert f"/aws/lambda/${{AWS::StackName}}-{spec.short_name}" in group_names, spec.logical_id
        assert any(e.startswith(spec.short_name) for e in events), spec.short_name
    assert all("RetentionInDays" in g for g in groups)


def test_alarms_cover_dlqs_errors_5xx_latency_and_message_age() -> None:
    alarms = TEMPLATE.resources_of_type("AWS::CloudWatch::Alarm")
    text = str(alarms)
    for dlq in ("CriticalDLQ", "DefaultDLQ", "LowDLQ"):
        assert dlq in text
    for metric in ("Errors", "5xx", "Latency", "ApproximateAgeOfOldestMessage"):
        assert metric in text, metric


def test_function_lookup_explains_unknown_names() -> None:
    assert TEMPLATE.function("worker-critical").logical_id == "CriticalWorkerFunction"
    assert TEMPLATE.function("system").logical_id == "SystemFunction"
    with pytest.raises(TemplateError, match="known: "):
        TEMPLATE.function("nope")


def test_a_broken_template_is_reported_not_crashed(tmp_path: Path) -> None:
    bad = tmp_path / "template.yaml"
    bad.write_text("Resources: [unclosed\n")
    with pytest.raises(TemplateError, match="does not parse"):
        load_template(bad)
    with pytest.raises(TemplateError, match="not found"):
        load_template(tmp_path / "missing.yaml")


# What only some requests need is imported when they first need it, not at cold start
# (issue 2's cold-start target). Each entry was once imported eagerly by some handler.
ON_FIRST_USE = ("numpy", "openai", "apify_client", "argon2")


def test_cold_starts_leave_the_heavy_libraries_for_first_use() -> None:
    import json
    import os
    import subprocess
    import sys

    probe = (
        "import importlib.util, json, sys\n"
        "loaded = {}\n"
        "for name, path in json.loads(sys.argv[1]).items():\n"
        "    spec = importlib.util.spec_from_file_location('fn_' + name, path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        f"    loaded[name] = [m for m in {ON_FIRST_USE!r} if m in sys.modules]\n"
        "print(json.dumps(loaded))\n"
    )
    # one process per function: what one handler imports must not hide another's
    for logical_id, spec in sorted(TEMPLATE.functions.items()):
        env = {**os.environ, "QUEUE_PRIORITY": "default", "AWS_DEFAULT_REGION": "us-east-1",
               "POWERTOOLS_TRACE_DISABLED": "true"}
        out = subprocess.run(
            [sys.executable, "-c", probe, json.dumps({logical_id: str(spec.handler_file)})],
            env=env, capture_output=True, text=True, check=True, cwd=repo_root(),
        ).stdout
        assert json.loads(out) == {logical_id: []}, f"{logical_id} imports {out}"

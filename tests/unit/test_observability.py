"""The instrumentation every handler wears: metrics flushed as EMF, nothing when none."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from amazon_pilot.platform.observability import lambda_entry, make_logger, make_metrics, make_tracer
from pilot_dev.runtime.invoker import LambdaContext


def _entry(record: bool) -> Any:
    metrics = make_metrics("observability-test")

    @lambda_entry(make_logger("observability-test"), metrics, make_tracer("observability-test"))
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if record:
            metrics.add_metric(name="JobsProcessed", unit=MetricUnit.Count, value=2)
        return {"ok": True}

    return handler


def test_recorded_metrics_are_flushed_as_one_emf_document(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert _entry(record=True)({}, LambdaContext("fn", 256, 10)) == {"ok": True}
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                 if line.startswith("{") and "_aws" in line]
    assert len(documents) == 1
    emf = documents[0]
    assert emf["JobsProcessed"] == [2.0]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AmazonPilot"


def test_an_invocation_without_metrics_prints_and_warns_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Powertools' log_metrics would warn here
        assert _entry(record=False)({}, LambdaContext("fn", 256, 10)) == {"ok": True}
    assert "_aws" not in capsys.readouterr().out


def test_a_catalogued_metric_recorded_anywhere_leaves_with_the_function_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """record_metric is what services call; the entry point's flush carries it, with
    the catalog's unit and the flushing function's service as its dimension."""
    from amazon_pilot.platform.observability import record_metric

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    metrics = make_metrics("worker-default")

    @lambda_entry(make_logger("worker-default"), metrics, make_tracer("worker-default"))
    def handler(event: dict[str, Any], context: Any) -> None:
        record_metric("SnapshotsIngested", 3)
        record_metric("ApifyCostUsd", 0.25)

    handler({}, LambdaContext("fn", 256, 10))
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                 if line.startswith("{") and "_aws" in line]
    assert len(documents) == 1
    emf = documents[0]
    assert emf["SnapshotsIngested"] == [3.0] and emf["ApifyCostUsd"] == [0.25]
    assert emf["service"] == "worker-default"
    declared = {m["Name"]: m["Unit"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert declared == {"SnapshotsIngested": "Count", "ApifyCostUsd": "None"}
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]


def test_a_metric_missing_from_the_catalog_is_refused() -> None:
    from amazon_pilot.platform.observability import record_metric

    with pytest.raises(KeyError, match="metrics_catalog"):
        record_metric("SnapshotsIngestd")


def test_outside_an_invocation_nothing_is_recorded(capsys: pytest.CaptureFixture[str]) -> None:
    """A CLI command or a test running a service directly: nothing would flush the
    metrics, and Powertools would print them into the command's output after 100."""
    from aws_lambda_powertools import Metrics

    from amazon_pilot.platform.observability import record_metric

    for _ in range(150):
        record_metric("SnapshotsIngested", 1)
    assert "SnapshotsIngested" not in Metrics(namespace="AmazonPilot").metric_set
    assert "_aws" not in capsys.readouterr().out


def test_concurrent_invocations_of_two_functions_each_flush_their_own_metrics(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local runtime runs functions side by side in one process, where Powertools
    shares one metric set: each document still holds its own invocation's sums, under
    its own service."""
    import threading

    from amazon_pilot.platform.observability import record_metric

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    both_recorded = threading.Barrier(2)

    def function(service: str, metric: str, times: int) -> Any:
        @lambda_entry(make_logger(service), make_metrics(service), make_tracer(service))
        def handler(event: dict[str, Any], context: Any) -> None:
            for _ in range(times):
                record_metric(metric)
            both_recorded.wait(5)  # neither flushes before the other recorded

        return handler

    threads = [threading.Thread(target=function(s, m, n), args=({}, LambdaContext(s, 256, 10)))
               for s, m, n in (("worker-low", "JobsProcessed", 3),
                               ("probe", "ProbeSuccess", 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    documents = {d["service"]: d for d in (json.loads(line) for line in
                 capsys.readouterr().out.splitlines() if line.startswith('{"_aws"'))}
    assert documents["worker-low"]["JobsProcessed"] == [3.0]
    assert "ProbeSuccess" not in documents["worker-low"]
    assert documents["probe"]["ProbeSuccess"] == [1.0]
    assert "JobsProcessed" not in documents["probe"]

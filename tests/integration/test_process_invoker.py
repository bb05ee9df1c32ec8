"""The from-build host (runtime/process_invoker.py) on a small built folder written here:
each instance is a Python 3.13 process that sees only its artifact and its environment;
errors, init failures and timeouts come back as Lambda reports them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilot_dev.runtime.process_invoker import FunctionError, ProcessFunctionHost, python313
from pilot_dev.runtime.template import FunctionSpec, TemplateError, load_template

HANDLERS = '''
import os, sys, time
import helper  # from the layer

print("cold start")

def handler(event, context):
    print("invoked", event.get("n"))
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"path": sys.path, "env": dict(os.environ), "helper": helper.VALUE,
            "pid": os.getpid(), "remaining": context.get_remaining_time_in_millis(),
            "request_id": context.aws_request_id, "version": list(sys.version_info[:2])}
'''


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        python313()
    except Exception:
        pytest.skip("no Python 3.13 on this machine")
    root = tmp_path_factory.mktemp("build")
    (root / "Fn").mkdir()
    (root / "Fn" / "app.py").write_text(HANDLERS)
    (root / "Broken").mkdir()
    (root / "Broken" / "app.py").write_text("import amazon_pilot  # not in this artifact\n")
    (root / "Layer" / "python").mkdir(parents=True)
    (root / "Layer" / "python" / "helper.py").write_text("VALUE = 42\n")
    (root / "template.yaml").write_text(
        "Globals: {Function: {Runtime: python3.13, Timeout: 2, Layers: [!Ref Layer]}}\n"
        "Resources:\n"
        "  Layer: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: Layer}}\n"
        "  Fn: {Type: AWS::Serverless::Function,\n"
        "       Properties: {CodeUri: Fn, Handler: app.handler,\n"
        "                    Environment: {Variables: {GREETING: hello}}}}\n"
        "  Broken: {Type: AWS::Serverless::Function,\n"
        "           Properties: {CodeUri: Broken, Handler: app.handler}}\n")
    return root


@pytest.fixture()
def host(build: Path) -> Iterator[Any]:
    specs: dict[str, FunctionSpec] = load_template(build / "template.yaml").functions
    logs: list[tuple[str, list[str]]] = []

    def sink(group: str, lines: Any) -> None:
        logs.append((group, lines() if callable(lines) else lines))

    running = ProcessFunctionHost(build, {"Fn": "stack-fn", "Broken": "stack-broken"},
                                  {"Fn": {"GREETING": "hello"}, "Broken": {}}, specs,
                                  log_sink=sink, max_instances=2)
    running.logs = logs  # type: ignore[attr-defined]
    yield running
    running.stop()


def test_the_function_sees_its_artifact_and_environment_only(host: Any, build: Path) -> None:
    result = host.invoke("Fn", {"n": 1})
    assert result["version"] == [3, 13] and result["helper"] == 42
    assert [Path(p) for p in result["path"][:2]] == [build / "Fn", build / "Layer" / "python"]
    assert not any("site-packages" in p or ".venv" in p for p in result["path"]), result["path"]
    env = result["env"]
    assert env["GREETING"] == "hello" and env["AWS_LAMBDA_FUNCTION_NAME"] == "stack-fn"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13" and env["_HANDLER"] == "app.handler"
    assert "VIRTUAL_ENV" not in env and "PYTHONPATH" not in env
    assert 0 < result["remaining"] <= 2000
    # the same warm process serves the next invocation; its lines reach the log group
    assert host.invoke("Fn", {"n": 2})["pid"] == result["pid"]
    lines = [line for group, batch in host.logs if group == "/aws/lambda/stack-fn"
             for line in batch]
    assert "cold start" in lines and "invoked 1" in lines and "invoked 2" in lines
    reports = [line for line in lines if line.startswith("REPORT RequestId: ")]
    assert reports[0].startswith(f"REPORT RequestId: {result['request_id']}")
    assert "Init Duration: " in reports[0] and "Init Duration" not in reports[1]
    json.dumps(result)  # what came back is plain JSON


def test_a_raising_handler_is_a_function_error_and_the_instance_lives_on(host: Any) -> None:
    first = host.invoke("Fn", {})["pid"]
    with pytest.raises(FunctionError) as raised:
        host.invoke("Fn", {"fail": True})
    assert raised.value.error["errorType"] == "ValueError"
    assert "asked to fail" in raised.value.error["errorMessage"]
    assert host.invoke("Fn", {})["pid"] == first


def test_an_import_error_fails_the_init(host: Any) -> None:
    with pytest.raises(FunctionError) as raised:
        host.invoke("Broken", {})
    assert raised.value.error["errorType"] == "ModuleNotFoundError"
    assert "amazon_pilot" in raised.value.error["errorMessage"]


def test_a_timeout_kills_the_instance(host: Any) -> None:
    first = host.invoke("Fn", {})["pid"]
    with pytest.raises(FunctionError) as raised:
        host.invoke("Fn", {"sleep": 5})
    assert raised.value.error["errorType"] == "Sandbox.Timedout"
    assert host.invoke("Fn", {})["pid"] != first  # a fresh instance (a cold start)


def test_concurrent_invocations_get_instances_of_their_own(host: Any) -> None:
    pids: list[int] = []
    threads = [threading.Thread(target=lambda: pids.append(
        host.invoke("Fn", {"sleep": 0.5})["pid"])) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(pids)) == 2


def test_artifacts_of_another_architecture_are_refused(build: Path, tmp_path: Path) -> None:
    import os
    import shutil

    foreign = tmp_path / "foreign"
    shutil.copytree(build, foreign)
    other = "arm64" if os.uname().machine == "x86_64" else "x86_64"
    (foreign / "pilot-build.json").write_text(json.dumps({"architecture": other}))
    specs = load_template(foreign / "template.yaml").functions
    with pytest.raises(TemplateError, match=f"holds {other} artifacts.*make build ARCH="):
        ProcessFunctionHost(foreign, {"Fn": "f", "Broken": "b"}, {"Fn": {}, "Broken": {}},
                            specs)

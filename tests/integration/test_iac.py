"""The template as tools we did not write read it: checkov (make iac-scan) and the SAM
translator (what `sam deploy` sends to CloudFormation). Both run from their own venvs
(scripts/checkov.sh, scripts/sam.sh install them on first use)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pilot_dev.iac_scan import scan
from pilot_dev.runtime.template import _CfnLoader, load_template, repo_root

pytestmark = pytest.mark.iac

ROOT = repo_root()
DOC = ROOT / "docs" / "deploy.md"


def test_the_template_has_no_finding_that_deploy_md_does_not_justify() -> None:
    findings, open_, _stale = scan(ROOT / "template.yaml", DOC)
    assert findings, "checkov reported nothing at all: it did not scan the template"
    assert open_ == []


def test_the_scan_fails_on_a_public_bucket_and_plain_http(tmp_path: Path) -> None:
    raw = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    bucket = raw["Resources"]["WebBucket"]["Properties"]
    del bucket["PublicAccessBlockConfiguration"], bucket["VersioningConfiguration"]
    config = raw["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] = "allow-all"
    broken = tmp_path / "template.json"
    broken.write_text(json.dumps(raw))
    _, open_, _ = scan(broken, DOC)
    failed = {(f.check_id, f.resource) for f in open_}
    assert {("CKV_AWS_53", "WebBucket"), ("CKV_AWS_21", "WebBucket"),
            ("CKV_AWS_34", "Distribution")} <= failed
    # the edge is off by default: only the variants that turn it on see it
    assert {f.variant for f in open_} == {"edge", "edge-domain"}


def _translate(template: Path, parameters: dict[str, str]) -> dict[str, Any]:
    """The SAM transform, as `sam deploy` applies it, by the SAM CLI's own translator."""
    subprocess.run([str(ROOT / "scripts" / "sam.sh"), "--version"], check=True,
                   capture_output=True, timeout=600)
    program = (
        "import json, sys\n"
        "from samtranslator.translator.transform import transform\n"
        "from samtranslator.yaml_helper import yaml_parse\n"
        "class NoManagedPolicies:\n"
        "    def load(self): return {}\n"
        "tpl = yaml_parse(open(sys.argv[1]).read())\n"
        "for r in tpl['Resources'].values():\n"
        "    p = r.get('Properties') or {}\n"
        "    for key in ('CodeUri', 'ContentUri'):\n"
        "        if isinstance(p.get(key), str): p[key] = 's3://bucket/code.zip'\n"
        "out = transform(tpl, json.loads(sys.argv[2]), NoManagedPolicies())\n"
        "print(json.dumps(out, default=str))\n"
    )
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([str(ROOT / ".pilot" / "sam-venv" / "bin" / "python"), "-c", program,
                           str(template), json.dumps(parameters)],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def test_http_api_routes_invoke_the_live_alias_shifted_by_codedeploy_with_alarms() -> None:
    template = load_template()
    out = _translate(ROOT / "template.yaml", {"EnableEdge": "true"})
    resources = out["Resources"]
    body = json.dumps(resources["HttpApi"]["Properties"]["Body"])
    for route in template.routes:
        assert f"${{{route.function}Aliaslive}}/invocations" in body, route
        assert f"${{{route.function}.Arn}}/invocations" not in body, route
    groups = {k: v for k, v in resources.items() if v["Type"] == "AWS::CodeDeploy::DeploymentGroup"}
    api_functions = {route.function for route in template.routes}
    assert set(groups) == {f"{fn}DeploymentGroup" for fn in api_functions}
    for fn in api_functions:
        props = groups[f"{fn}DeploymentGroup"]["Properties"]
        alarms = [a["Name"]["Ref"] for a in props["AlarmConfiguration"]["Alarms"]]
        assert alarms == [f"{fn}ErrorsAlarm", f"{fn}LatencyAlarm"]
        assert "DEPLOYMENT_STOP_ON_ALARM" in props["AutoRollbackConfiguration"]["Events"]
        alias = resources[f"{fn}Aliaslive"]
        assert alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    # the edge's resources pass through the transform untouched
    assert resources["Distribution"]["Condition"] == "HasEdge"

"""The pipeline's workflow and its dry run: the stages deploy in order dev -> staging ->
prod, every stage deploys the one artifact the build job packaged, prod waits for the
`production` environment, deploys of a stage never overlap, actions are pinned."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pilot_dev import pipeline

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = yaml.safe_load((ROOT / ".github/workflows/ci-cd.yml").read_text())


def test_the_dry_run_deploys_the_same_artifact_to_dev_then_staging_then_prod() -> None:
    lines = pipeline.plan()
    deploys = [line.strip() for line in lines if line.strip().startswith("sam deploy ")]
    assert [re.search(r"--config-env (\S+)", d).group(1) for d in deploys] == [  # type: ignore[union-attr]
        "dev", "staging", "prod"]
    assert all("--no-execute-changeset" in d and "--template-file packaged.yaml" in d
               for d in deploys)
    stacks = [re.search(r"--stack-name (\S+)", d).group(1) for d in deploys]  # type: ignore[union-attr]
    assert stacks == ["amazon-pilot-dev", "amazon-pilot-staging", "amazon-pilot"]
    assert [f"Stage={s}" in d for s, d in zip(["dev", "staging", "prod"], deploys,
                                              strict=True)] == [True] * 3
    # one digest, one artifact name, checked by every stage before it deploys
    digests = set(re.findall(r"sha256(?:sum -c:| ) ?([0-9a-f]{64})", "\n".join(lines)))
    assert len(digests) == 1
    names = set(re.findall(r"artifact (packaged-[0-9a-f]{40})", "\n".join(lines)))
    assert len(names) == 1
    packaged = [line for line in lines if "sam package" in line]
    assert len(packaged) == 1  # built and packaged once
    # the smoke suite runs after staging's deploy and before prod's
    text = "\n".join(lines)
    assert text.index("--config-env staging") < text.index("-m smoke") < text.index(
        "--config-env prod")


def test_the_dry_run_takes_a_packaged_template_digest(tmp_path: Path) -> None:
    artifact = tmp_path / "packaged.yaml"
    artifact.write_text("Resources: {}\n")
    import hashlib

    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    lines = pipeline.plan(str(artifact))
    assert sum(digest in line for line in lines) == 5  # header, upload, three stages


def test_the_workflow_jobs_deploy_in_order_with_oidc_and_no_overlap() -> None:
    jobs = WORKFLOW["jobs"]
    assert jobs["build"]["needs"] == "checks" and "refs/heads/main" in jobs["build"]["if"]
    stages = pipeline.stages()
    assert [(s.config_env, s.environment) for s in stages] == [
        ("dev", "dev"), ("staging", "staging"), ("prod", "production")]
    for stage in stages:
        job = jobs[stage.job]
        assert job["permissions"]["id-token"] == "write"
        assert job["concurrency"] == {"group": f"deploy-{stage.config_env}",
                                      "cancel-in-progress": False}
        uses = [s.get("uses", "") for s in job["steps"]]
        assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
        assert any(u.startswith("actions/download-artifact@") for u in uses)
        assert not any("sam build" in str(s.get("run", "")) or "make build" in
                       str(s.get("run", "")) for s in job["steps"])  # never rebuilt
    assert [s.config_env for s in stages if s.smoke] == ["staging"]
    text = (ROOT / ".github/workflows/ci-cd.yml").read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def test_every_action_is_pinned_by_commit_with_its_version() -> None:
    lines = [line for line in (ROOT / ".github/workflows/ci-cd.yml").read_text().splitlines()
             if re.match(r"\s*(- )?uses:", line)]
    assert lines
    for line in lines:
        assert re.search(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_samconfig_has_the_three_stages() -> None:
    for env, stack in (("dev", "amazon-pilot-dev"), ("staging", "amazon-pilot-staging"),
                       ("prod", "amazon-pilot")):
        params = pipeline.deploy_parameters(env)
        assert params["stack_name"] == stack
        assert f"Stage={env}" in params["parameter_overrides"]


def test_the_bootstrap_binds_each_deploy_role_to_its_environment() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: suffix)
    template = yaml.load((ROOT / "deploy/bootstrap.yaml").read_text(), Loader=Loader)
    resources = template["Resources"]
    subs = {}
    for name in ("DevDeployRole", "StagingDeployRole", "ProdDeployRole", "PackageRole"):
        statement = resources[name]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
        subs[name] = statement["Condition"]["StringEquals"][
            "token.actions.githubusercontent.com:sub"]
    assert subs == {"DevDeployRole": "Sub", "StagingDeployRole": "Sub", "ProdDeployRole": "Sub",
                    "PackageRole": "Sub"}
    raw = (ROOT / "deploy/bootstrap.yaml").read_text()
    for environment in ("environment:dev", "environment:staging",
                        "environment:${ProductionEnvironment}", "ref:refs/heads/main"):
        assert f"repo:${{GitHubOrg}}/${{GitHubRepo}}:{environment}" in raw
    assert "ArtifactsBucket" in resources

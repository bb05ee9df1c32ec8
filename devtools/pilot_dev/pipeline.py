"""The deploy steps of the CI/CD pipeline (.github/workflows/ci-cd.yml), and its dry run.

The workflow calls this module for each stage, so the commands it runs and the ones the
dry run prints come from one place: samconfig.toml's environment for the stage, and the
one packaged template the build job made (`sam package` of the arm64 build into the
artifacts bucket under amazon-pilot/<commit>).

    python -m pilot_dev.pipeline plan [--artifact packaged.yaml]   # the dry run, in order
    python -m pilot_dev.pipeline deploy --config-env dev --template packaged.yaml
    python -m pilot_dev.pipeline url --config-env staging          # the smoke suite's target

`plan` reads the workflow itself: the stages are its jobs that run in a GitHub
environment, in the order their `needs:` put them, each with its SAM_CONFIG_ENV.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pilot_dev.runtime.template import repo_root

WORKFLOW = Path(".github/workflows/ci-cd.yml")
PACKAGED = "packaged.yaml"
S3_PREFIX = "amazon-pilot"  # + /<commit>: where sam package puts the code of one commit


class PipelineError(Exception):
    pass


@dataclass(frozen=True)
class Stage:
    job: str
    environment: str
    config_env: str
    needs: tuple[str, ...]
    smoke: bool


def samconfig(root: Path | None = None) -> dict[str, Any]:
    with ((root or repo_root()) / "samconfig.toml").open("rb") as handle:
        return tomllib.load(handle)


def deploy_parameters(config_env: str, root: Path | None = None) -> dict[str, Any]:
    """The environment's global then deploy parameters: what `sam deploy --config-env`
    reads (only that environment's tables)."""
    config = samconfig(root)
    if config_env not in config:
        raise PipelineError(f"samconfig.toml has no [{config_env}] environment")
    merged: dict[str, Any] = {}
    for section in ("global", "deploy"):
        merged.update(config[config_env].get(section, {}).get("parameters", {}))
    for required in ("stack_name", "region"):
        if not merged.get(required):
            raise PipelineError(f"samconfig.toml [{config_env}] sets no {required}")
    return merged


def deploy_command(config_env: str, template: str, *, execution_role: str | None,
                   dry_run: bool, root: Path | None = None) -> list[str]:
    """`sam deploy` of the packaged template with every samconfig parameter spelled out."""
    params = deploy_parameters(config_env, root)
    command = ["sam", "deploy", "--config-env", config_env, "--template-file", template,
               "--stack-name", str(params["stack_name"]), "--region", str(params["region"])]
    capabilities = params.get("capabilities", "CAPABILITY_IAM")
    command += ["--capabilities", *str(capabilities).split()]
    if params.get("resolve_s3"):
        command.append("--resolve-s3")
    overrides = str(params.get("parameter_overrides", "")).split()
    if overrides:
        command += ["--parameter-overrides", *overrides]
    if execution_role:
        command += ["--role-arn", execution_role]
    command += ["--no-confirm-changeset", "--no-fail-on-empty-changeset"]
    if dry_run:
        command.append("--no-execute-changeset")
    return command


def stages(root: Path | None = None) -> list[Stage]:
    """The workflow's deploy jobs (those in a GitHub environment), in `needs:` order."""
    workflow = yaml.safe_load(((root or repo_root()) / WORKFLOW).read_text())
    found: dict[str, Stage] = {}
    for name, job in workflow["jobs"].items():
        environment = job.get("environment")
        if environment is None:
            continue
        env_name = environment["name"] if isinstance(environment, dict) else str(environment)
        needs = job.get("needs", [])
        config_env = (job.get("env") or {}).get("SAM_CONFIG_ENV")
        if not config_env:
            raise PipelineError(f"job {name} deploys without env SAM_CONFIG_ENV")
        runs = " ".join(str(step.get("run", "")) for step in job.get("steps", []))
        found[name] = Stage(name, env_name, str(config_env),
                            tuple([needs] if isinstance(needs, str) else needs),
                            "-m smoke" in runs)
    ordered: list[Stage] = []
    while len(ordered) < len(found):
        ready = [s for s in found.values() if s not in ordered
                 and all(n not in found or found[n] in ordered for n in s.needs)]
        if not ready:
            raise PipelineError("the deploy jobs' needs: form a cycle")
        ordered.extend(sorted(ready, key=lambda s: s.job))
    return ordered


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True,
                          check=True).stdout.strip()


def artifact_digest(artifact: str | None) -> tuple[str, str]:
    """(what, sha256): the packaged template when there is one here, else the commit's
    tree (what the build job packages)."""
    if artifact and Path(artifact).is_file():
        return artifact, hashlib.sha256(Path(artifact).read_bytes()).hexdigest()
    tree = _git("rev-parse", "HEAD^{tree}")
    return f"tree {tree}", hashlib.sha256(tree.encode()).hexdigest()


def plan(artifact: str | None = None, root: Path | None = None) -> list[str]:
    commit = _git("rev-parse", "HEAD")
    what, digest = artifact_digest(artifact)
    prefix = f"{S3_PREFIX}/{commit}"
    lines = [
        f"# pipeline dry run: commit {commit}",
        f"# artifact: {PACKAGED} (sha256 {digest}, from {what}); code under "
        f"s3://$ARTIFACTS_BUCKET/{prefix}/",
        "step 1  checks (every push): make lint typecheck jslint workflow-lint template-check;"
        " pytest",
        "step 2  build (main): scripts/fetch-rds-ca.sh && make build ARCH=arm64",
        "step 3  package once: " + shlex.join([
            "sam", "package", "--template-file", ".aws-sam/build/template.yaml",
            "--s3-bucket", "$ARTIFACTS_BUCKET", "--s3-prefix", prefix,
            "--output-template-file", PACKAGED]),
        f"        upload artifact packaged-{commit} ({PACKAGED}, sha256 {digest})",
    ]
    step = 4
    for stage in stages(root):
        lines.append(f"step {step}  deploy {stage.config_env} (job {stage.job}, GitHub "
                     f"environment {stage.environment}"
                     + (", approval by a required reviewer" if stage.environment ==
                        "production" else "") + ")")
        lines.append(f"        download artifact packaged-{commit}; sha256sum -c: {digest}")
        lines.append(f"        assume role secrets.DEPLOY_ROLE_ARN of {stage.environment} (OIDC)")
        lines.append("        " + shlex.join(deploy_command(
            stage.config_env, PACKAGED, execution_role="$CFN_EXECUTION_ROLE_ARN",
            dry_run=True, root=root)))
        if stage.smoke:
            lines.append(f"        PILOT_SMOKE_URL=$(python -m pilot_dev.pipeline url "
                         f"--config-env {stage.config_env}) pytest -q -m smoke")
        step += 1
    return lines


def stack_outputs(config_env: str) -> dict[str, str]:
    import boto3

    params = deploy_parameters(config_env)
    cfn = boto3.client("cloudformation", region_name=str(params["region"]))
    stack = cfn.describe_stacks(StackName=str(params["stack_name"]))["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stage_url(outputs: dict[str, str]) -> str:
    """Where users go: the edge's DashboardUrl when the stack has one, else ApiUrl."""
    for key in ("DashboardUrl", "ApiUrl"):
        value = outputs.get(key)
        if value and value != "None":
            return value.rstrip("/")
    raise PipelineError("the stack has neither a DashboardUrl nor an ApiUrl output")


def _deploy(args: argparse.Namespace) -> int:
    command = deploy_command(args.config_env, args.template,
                             execution_role=args.execution_role, dry_run=args.dry_run)
    print("+ " + shlex.join(command), flush=True)
    sam = str(repo_root() / "scripts" / "sam.sh")
    subprocess.run([sam, *command[1:]], cwd=repo_root(), check=True)
    if args.dry_run:
        return 0
    params = deploy_parameters(args.config_env)
    if stack_outputs(args.config_env).get("WebBucketName"):  # the edge: dashboard files
        subprocess.run([sys.executable, "-m", "pilot_dev.publish_web", "--stack",
                        str(params["stack_name"]), "--region", str(params["region"])],
                       cwd=repo_root(), check=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pilot_dev.pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    plan_p = sub.add_parser("plan", help="print the main-branch pipeline's steps in order")
    plan_p.add_argument("--artifact", help="a packaged template to take the digest of")
    deploy_p = sub.add_parser("deploy", help="sam deploy of the packaged template to a stage")
    deploy_p.add_argument("--config-env", required=True)
    deploy_p.add_argument("--template", default=PACKAGED)
    deploy_p.add_argument("--execution-role", help="CloudFormation's role (bootstrap output)")
    deploy_p.add_argument("--dry-run", action="store_true", help="--no-execute-changeset")
    url_p = sub.add_parser("url", help="the deployed stage's URL, from its stack outputs")
    url_p.add_argument("--config-env", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "plan":
            print("\n".join(plan(args.artifact)))
            return 0
        if args.command == "url":
            print(stage_url(stack_outputs(args.config_env)))
            return 0
        return _deploy(args)
    except PipelineError as exc:
        print(f"pipeline: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

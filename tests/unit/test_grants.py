"""Least privilege, both ways: each function's role in template.yaml grants exactly the
AWS calls its code can make, on the resources it makes them on.

The calls come from the code (devtools/pilot_dev/grants.py: every boto3 call reachable
from the function's handler, its IAM action named by botocore's model). The grants come
from the template as `sam deploy` sees it: the SAM transform (samtranslator) expands each
function's Policies, policy templates included, and the intrinsics are resolved for a
stack. A call without a grant, or a grant without a call, fails here; the integration
suite then runs every function with just its role, IAM enforced (test_iam.py).
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import re
from typing import Any

import pytest

from pilot_dev.grants import AwsCall, Graph, handler_module, package_graph, refused_jobs
from pilot_dev.runtime.iam import expand_template, function_roles, resolved_policies
from pilot_dev.runtime.template import (
    ResolveContext,
    Template,
    _interpret,
    evaluate_conditions,
    load_template,
    repo_root,
    resolve,
)

TEMPLATE = load_template()
GRAPH = package_graph(TEMPLATE.functions)
PRIORITIES = ("critical", "default", "low")
ACCOUNT, REGION, STACK = "111122223333", "eu-west-1", "pilot"
SECRET_PARAMETERS = ("DatabaseSecretArn", "ApifyTokenSecretArn", "OpenAISecretArn",
                     "KeepaApiKeySecretArn", "ProbeSecretArn")

# Actions AWS authorizes only on "*": the Service Authorization Reference lists no
# resource type for them, so a narrower Resource would never match.
STAR_ONLY = {"ses:ListIdentities", "ses:VerifyEmailIdentity", "cloudwatch:GetMetricData",
             "cloudwatch:ListMetrics"}


def _settings_variables() -> dict[str, str]:
    """Settings field -> the environment variable load_settings reads it from."""
    tree = ast.parse((repo_root() / "shared/amazon_pilot/platform/settings.py").read_text())
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg and isinstance(node.value, ast.Call):
            call = node.value
            if (isinstance(call.func, ast.Attribute) and call.func.attr in ("text", "integer")
                    and call.args and isinstance(call.args[0], ast.Constant)):
                found[node.arg] = str(call.args[0].value)
    return found


SETTINGS = _settings_variables()


def _context(template: Template) -> ResolveContext:
    """What the intrinsics resolve to in a deployed stack (names as CloudFormation and
    Secrets Manager make them); every optional secret is given, so every grant shows."""
    parameters = {**template.parameter_defaults(), **{
        name: f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
        for name in SECRET_PARAMETERS}}
    ctx = ResolveContext(STACK, REGION, parameters, account_id=ACCOUNT)
    ctx.conditions = evaluate_conditions(template.raw, ctx)
    for logical_id, resource in template.resources.items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::SQS::Queue":
            name = resolve(props.get("QueueName"), ctx)
            ctx.refs[logical_id] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
            ctx.attrs[(logical_id, "QueueName")] = name
            ctx.attrs[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        elif resource.get("Type") == "AWS::SecretsManager::Secret":
            ctx.refs[logical_id] = (f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
                                    f"{resolve(props.get('Name'), ctx)}-XyZabc")
        else:
            ctx.refs.setdefault(logical_id, f"{STACK}-{logical_id}")
            ctx.attrs.setdefault((logical_id, "Arn"), f"arn:aws:local:{logical_id}")
    return ctx


def _queue_arn(ctx: ResolveContext, url: str) -> str:
    for (logical_id, attr), value in ctx.attrs.items():
        if attr == "Arn" and ctx.refs.get(logical_id) == url:
            return value
    raise AssertionError(f"no queue has the URL {url}")


def _priorities(graph: Graph, reached: set[str]) -> set[str]:
    """The queues reachable code sends to: enqueue("low", ...) literals, and for a
    priority passed along (the scheduler's table) the priorities named in the tables
    the sending code reads."""
    found: set[str] = set()
    for name in reached:
        node = graph.nodes[name]
        found |= {p for p in node.enqueue_priorities if p}
        if None in node.enqueue_priorities:
            for ref in node.refs:
                if ref in graph.nodes:
                    found |= graph.nodes[ref].strings & set(PRIORITIES)
    return found


def needed(template: Template, logical_id: str, ctx: ResolveContext) -> set[tuple[str, str]]:
    """(action, resource) pairs the function's code can call."""
    env = {k: str(v) for k, v in resolve(template.functions[logical_id].environment,
                                          ctx).items()}
    # a consumer runs only its queue's jobs (platform/jobs.py QUEUES)
    consumer = any(m.function == logical_id for m in template.queue_mappings)
    refused = refused_jobs(env["QUEUE_PRIORITY"]) if consumer else frozenset()
    reached = GRAPH.reachable([handler_module(logical_id)], refused)
    read = {attr for name in reached for attr in GRAPH.nodes[name].attributes}
    pairs: set[tuple[str, str]] = set()
    for call in GRAPH.aws_calls(reached):
        for resource in _resources(call, template, logical_id, env, ctx, reached, read):
            pairs.add((call.action, resource))
    return pairs


def _resources(call: AwsCall, template: Template, logical_id: str, env: dict[str, str],
               ctx: ResolveContext, reached: set[str], read: set[str]) -> list[str]:
    """Which resources a call site works on: the one table here, each rule naming the
    setting the code takes the resource from."""
    module, _, where = call.node.partition(":")
    if call.action == "secretsmanager:GetSecretValue" and module.endswith("adapters.secrets"):
        # the secret ARNs of the settings the reachable code reads (DATABASE_SECRET_ARN ...)
        arns = [env.get(SETTINGS[field], "") for field in sorted(read & set(SETTINGS))
                if field.endswith("secret_arn")]
        return [arn for arn in arns if arn]
    if module.endswith("adapters.queues"):
        # the scheduled relay sends every pending row, whoever wrote it; elsewhere the
        # nudge after a commit sends just the rows that code wrote
        relays_all = "amazon_pilot.platform.outbox:scheduled_relay" in reached
        priorities = set(PRIORITIES) if relays_all else _priorities(GRAPH, reached)
        return [_queue_arn(ctx, env[f"QUEUE_URL_{p.upper()}"]) for p in sorted(priorities)]
    if module.endswith("platform.consumer"):
        # a consumer works on the queue its event source mapping names, and its DLQ
        own = next(m.queue for m in template.queue_mappings if m.function == logical_id)
        if call.action == "sqs:SendMessage" and where == "JobConsumer.dead_letter":
            return [_queue_arn(ctx, env[f"DLQ_URL_{env['QUEUE_PRIORITY'].upper()}"])]
        return [ctx.attrs[(own, "Arn")]]
    if module.endswith("platform.system") and call.action == "sqs:GetQueueAttributes":
        return [_queue_arn(ctx, env[f"QUEUE_URL_{p.upper()}"]) for p in PRIORITIES]
    if (module.endswith(("operations.service", "adapters.dead_letters"))
            and call.action.startswith("sqs:")):
        # the console reads the queues and their DLQs, works on the DLQs, and sends
        # redriven messages back to the queues (QUEUE_URL_*, DLQ_URL_*); the dead-letter
        # helpers work on the client and URLs the console hands them
        queues = [_queue_arn(ctx, env[f"QUEUE_URL_{p.upper()}"]) for p in PRIORITIES]
        dlqs = [_queue_arn(ctx, env[f"DLQ_URL_{p.upper()}"]) for p in PRIORITIES]
        if call.action == "sqs:SendMessage":
            return queues
        if call.action == "sqs:GetQueueAttributes":
            return queues + dlqs
        return dlqs
    if call.action == "cloudwatch:DescribeAlarms":
        return [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"]
    if call.action in STAR_ONLY:
        return ["*"]
    if call.action.startswith("kms:") and module.endswith("adapters.crypto"):
        return [ctx.attrs[("SecretsKey", "Arn")]]  # SECRETS_KMS_KEY_ID: the stack's key
    if call.action == "ses:SendEmail":
        return [f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{env['NOTIFY_FROM_EMAIL']}"]
    raise AssertionError(f"{call.node} calls {call.action}: add the rule for its resource "
                         "to tests/unit/test_grants.py")


_expanded: dict[int, tuple[Template, dict[str, Any]]] = {}


def _roles(template: Template, ctx: ResolveContext) -> dict[str, Any]:
    """The transform's roles, once per template (it takes about a second)."""
    cached = _expanded.get(id(template))
    if cached is None or cached[0] is not template:
        roles = function_roles(template, expand_template(template, ctx.parameters, REGION))
        cached = _expanded[id(template)] = (template, roles)
    return cached[1]


def granted(template: Template, logical_id: str,
            ctx: ResolveContext) -> set[tuple[str, str]]:
    """(action pattern, resource) pairs the function's own Policies grant."""
    role = _roles(template, ctx)[logical_id]
    pairs: set[tuple[str, str]] = set()
    for document in resolved_policies(role, ctx).values():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", f"{logical_id}: only Allow statements"
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for resource in [resources] if isinstance(resources, str) else resources:
                    pairs.add((action, resource))
    return pairs


def _destinations(template: Template, logical_id: str, ctx: ResolveContext) -> set[tuple[str, str]]:
    """Lambda itself sends an asynchronous invocation's failure record to the function's
    OnFailure destination, with the function's role (SAM adds that grant): needed, though
    no code of ours calls it."""
    config = template.functions[logical_id].properties.get("EventInvokeConfig") or {}
    on_failure = (config.get("DestinationConfig") or {}).get("OnFailure") or {}
    if on_failure.get("Type") != "SQS":
        return set()
    return {("sqs:SendMessage", str(resolve(on_failure["Destination"], ctx)))}


def grant_problems(template: Template, logical_id: str) -> list[str]:
    ctx = _context(template)
    need = needed(template, logical_id, ctx) | _destinations(template, logical_id, ctx)
    grant = granted(template, logical_id, ctx)
    problems = []
    for action, resource in sorted(need):
        if not any(fnmatch.fnmatchcase(action, pattern) and resource == granted_resource
                   for pattern, granted_resource in grant):
            problems.append(f"missing: {action} on {resource}")
    for pattern, resource in sorted(grant):
        if resource == "*" and not all(a in STAR_ONLY for a, _ in need
                                        if fnmatch.fnmatchcase(a, pattern)):
            problems.append(f"excessive: {pattern} on * (only {sorted(STAR_ONLY)} may be)")
        if not any(fnmatch.fnmatchcase(a, pattern) and resource == r for a, r in need):
            problems.append(f"excessive: {pattern} on {resource} (no code calls it)")
    return problems


@pytest.mark.parametrize("logical_id", sorted(TEMPLATE.functions))
def test_each_role_grants_exactly_what_its_code_calls(logical_id: str) -> None:
    assert grant_problems(TEMPLATE, logical_id) == []


def test_the_analysis_sees_the_calls_the_issue_found_missing() -> None:
    """The calls the grants once lacked are found in the code (so a grant for them is
    required, not just allowed)."""
    ctx = _context(TEMPLATE)
    worker = {a for a, _ in needed(TEMPLATE, "CriticalWorkerFunction", ctx)}
    assert {"sqs:ChangeMessageVisibility", "ses:SendEmail", "ses:VerifyEmailIdentity",
            "secretsmanager:GetSecretValue"} <= worker
    def secrets(logical_id: str) -> str:
        return " ".join(r for a, r in needed(TEMPLATE, logical_id, ctx)
                        if a == "secretsmanager:GetSecretValue")

    # each worker needs the secrets of its own queue's jobs only
    assert "OpenAISecretArn" in secrets("LowWorkerFunction")  # suggestions
    assert "ApifyTokenSecretArn" not in secrets("LowWorkerFunction")
    assert "ApifyTokenSecretArn" in secrets("DefaultWorkerFunction")  # daily fetches
    assert "KeepaApiKeySecretArn" in secrets("DefaultWorkerFunction")  # PRODUCT_SOURCE=keepa
    assert "KeepaApiKeySecretArn" not in secrets("LowWorkerFunction")
    assert "OpenAISecretArn" not in secrets("CriticalWorkerFunction")
    # the probe reads only its own secret: it reaches the service through its public URL
    assert secrets("ProbeFunction") == ctx.parameters["ProbeSecretArn"]
    for logical_id in TEMPLATE.functions:
        if logical_id == "ProbeFunction":
            continue
        database = ctx.parameters["DatabaseSecretArn"]
        assert ("secretsmanager:GetSecretValue", database) in needed(TEMPLATE, logical_id, ctx)


def _with_policies(change: Any) -> Template:
    raw = copy.deepcopy(TEMPLATE.raw)
    change(raw["Resources"])
    return _interpret(TEMPLATE.path, raw)


def test_a_removed_grant_is_reported_missing() -> None:
    def drop_own_queue(resources: dict[str, Any]) -> None:
        policies = resources["DefaultWorkerFunction"]["Properties"]["Policies"]
        policies[:] = [p for p in policies if "ChangeMessageVisibility" not in str(p)]

    problems = grant_problems(_with_policies(drop_own_queue), "DefaultWorkerFunction")
    assert any(re.match(r"missing: sqs:ChangeMessageVisibility on .*:pilot-default$", p)
               for p in problems), problems


def test_an_extra_or_wildcard_grant_is_reported_excessive() -> None:
    def widen(resources: dict[str, Any]) -> None:
        policies = resources["AuthFunction"]["Properties"]["Policies"]
        policies.append({"SQSSendMessagePolicy": {"QueueName": "anything"}})
        policies.append({"SESCrudPolicy": {"IdentityName": "*"}})

    problems = grant_problems(_with_policies(widen), "AuthFunction")
    assert any(p.startswith("excessive: sqs:SendMessage*") for p in problems), problems
    assert any("ses:SendEmail" in p or "ses:*" in p for p in problems), problems

"""Least privilege, enforced locally: every function runs as its own role.

The roles are what `sam deploy` would create: the SAM transform (samtranslator, the
library behind `sam validate` and CloudFormation's own transform) expands each
function's `Policies` (policy templates included) into an AWS::IAM::Role; the
intrinsics are resolved against the local resources' ARNs; the role and its inline
policies are created on the AWS endpoint, and the function gets that role's session
credentials (sts:AssumeRole), in its own environment, as Lambda gives them.

Then the endpoint is told to enforce IAM (moto's /moto-api/reset-auth, the server-mode
form of `set_initial_no_auth_action_count(0)`): from that call on, every request must
be signed by a known identity and be allowed by its policies, so a missing grant shows
as AccessDenied. The runtime itself (provisioning, pollers, log shipping, tests) works
as an operator user with full rights.

The managed policies SAM attaches (basic execution, X-Ray, the SQS event source's) are
attached too, with AWS's published documents: the SQS pollers receive and delete as the
consumer's role, as Lambda's event source mapping does.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pilot_dev.runtime.template import ResolveContext, Template, TemplateError, resolve

log = logging.getLogger("pilot.runtime")

OPERATOR_USER = "pilot-operator"
# Lambda's credentials last as long as the execution environment; a local stack runs
# for hours, so ask for the longest session STS allows.
SESSION_SECONDS = 43200
SQS_BATCH_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                     "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}


@dataclass
class FunctionRole:
    function: str  # logical id
    policies: dict[str, dict[str, Any]]  # inline policy name -> document (intrinsics kept)
    managed_arns: list[Any] = field(default_factory=list)


def expand_template(template: Template, parameters: dict[str, str],
                    region: str) -> dict[str, Any]:
    """The CloudFormation template `sam deploy` would submit (the SAM transform)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # "Feature '...' not available in Feature Toggle Config" on every start: the local
    # runtime passes no feature toggle config, and the defaults are what it wants
    logging.getLogger("samtranslator.feature_toggle.feature_toggle").setLevel(logging.ERROR)

    raw = copy.deepcopy(template.raw)
    for resource in raw.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        # the transform wants packaged code; where it lives does not change a role
        for key in ("CodeUri", "ContentUri"):
            if key in props:
                props[key] = "s3://pilot-local/code.zip"
    translator = Translator(None, Parser(),
                            boto_session=boto3.session.Session(region_name=region))
    try:
        expanded: dict[str, Any] = translator.translate(
            raw, parameter_values=dict(parameters), get_managed_policy_map=lambda: {})
    except Exception as exc:  # samtranslator's InvalidDocumentException lists every error
        raise TemplateError(f"the SAM transform rejects the template: {exc}") from exc
    return expanded


def function_roles(template: Template, expanded: dict[str, Any]) -> dict[str, FunctionRole]:
    """Each function's execution role, as the transform generated it."""
    resources = expanded["Resources"]
    roles: dict[str, FunctionRole] = {}
    for logical_id in template.functions:
        function = resources.get(logical_id) or {}
        role_ref = (function.get("Properties") or {}).get("Role")
        role_id = (role_ref or {}).get("Fn::GetAtt", [None])[0] if isinstance(
            role_ref, dict) else None
        if role_id is None or role_id not in resources:
            raise TemplateError(f"{logical_id}: the transform gave it no role of its own")
        props = resources[role_id].get("Properties") or {}
        policies: dict[str, dict[str, Any]] = {}
        for entry in props.get("Policies") or []:
            if "Fn::If" in entry:
                # SAM keeps a conditional policy as Fn::If [cond, policy, NoValue]
                policies[f"__if__{len(policies)}"] = entry
                continue
            policies[str(entry["PolicyName"])] = entry["PolicyDocument"]
        roles[logical_id] = FunctionRole(logical_id, policies,
                                         list(props.get("ManagedPolicyArns") or []))
    return roles


def resolved_policies(role: FunctionRole, ctx: ResolveContext) -> dict[str, dict[str, Any]]:
    """The role's inline policies with the intrinsics evaluated (conditions included)."""
    out: dict[str, dict[str, Any]] = {}
    for name, document in role.policies.items():
        if name.startswith("__if__"):
            chosen = resolve(document, ctx)
            if not isinstance(chosen, dict) or "PolicyName" not in chosen:
                continue  # the condition chose AWS::NoValue
            out[str(chosen["PolicyName"])] = chosen["PolicyDocument"]
        else:
            out[name] = resolve(document, ctx)
    return out


class IamUnavailable(RuntimeError):
    pass


@dataclass
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def environment(self) -> dict[str, str]:
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id,
               "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


@functools.cache
def published_managed_policies() -> dict[str, Any]:
    """AWS's managed policies as moto ships them: one JSON text of several MB, parsed
    once (parsed per role, it was 9 of `pilot run`'s 25 s start)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return dict(json.loads(aws_managed_policies_data))


class LocalIam:
    """Creates the roles and the operator on the endpoint, then turns enforcement on."""

    def __init__(self, client: Callable[[str], Any], endpoint_url: str, stack_name: str) -> None:
        self.client = client
        self.endpoint_url = endpoint_url.rstrip("/")
        self.stack_name = stack_name
        self.role_arns: dict[str, str] = {}
        # each managed policy's local ARN, created once for every role that attaches it
        # (asking again answered EntityAlreadyExists: two calls more a role and policy)
        self.managed_arns: dict[str, str] = {}

    def can_enforce(self) -> bool:
        """Whether the endpoint is moto (which has the switch); LocalStack is not."""
        import httpx

        try:
            return httpx.get(f"{self.endpoint_url}/moto-api/data.json", timeout=5).is_success
        except httpx.HTTPError:
            return False

    def role_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"[:64]

    def attach_aws_managed(self, role: str, arns: list[Any]) -> None:
        """The AWS managed policies SAM attaches (basic execution, X-Ray, the SQS event
        source's), with AWS's own documents as moto ships them, created under this
        account (the aws-owned ARNs cannot be created through the API)."""
        published = published_managed_policies()
        iam = self.client("iam")
        for arn in arns:
            name = str(arn).rsplit("/", 1)[-1]
            if not isinstance(arn, str) or name not in published:
                log.warning("%s: managed policy %r left out (no published document)", role, arn)
                continue
            local_arn = self.managed_arns.get(name)
            if local_arn is None:
                local_arn = self.managed_arns[name] = self._create_managed(
                    f"aws-managed-{name}", published[name]["Document"])
            iam.attach_role_policy(RoleName=role, PolicyArn=local_arn)

    def _create_managed(self, local_name: str, document: dict[str, Any]) -> str:
        iam = self.client("iam")
        try:
            arn: str = iam.create_policy(PolicyName=local_name,
                                         PolicyDocument=json.dumps(document))["Policy"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:  # an earlier stack's, same endpoint
            account = self.client("sts").get_caller_identity()["Account"]
            arn = f"arn:aws:iam::{account}:policy/{local_name}"
        return arn

    def create_role(self, logical_id: str, policies: dict[str, dict[str, Any]],
                    managed: list[Any] | None = None) -> Credentials:
        iam = self.client("iam")
        name = self.role_name(logical_id)
        try:
            arn = iam.create_role(RoleName=name,
                                  AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
            for old in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=name, PolicyName=old)
        for policy_name, document in policies.items():
            # SAM's policy templates carry no Version; AWS takes that as 2008-10-17,
            # moto refuses it. Nothing in them depends on the version.
            document = {"Version": "2012-10-17", **document}
            iam.put_role_policy(RoleName=name, PolicyName=policy_name,
                                PolicyDocument=json.dumps(document))
        self.attach_aws_managed(name, managed or [])
        self.role_arns[logical_id] = arn
        creds = self.client("sts").assume_role(
            RoleArn=arn, RoleSessionName=name[:64], DurationSeconds=SESSION_SECONDS,
        )["Credentials"]
        return Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])

    def create_operator(self) -> Credentials:
        iam = self.client("iam")
        name = f"{OPERATOR_USER}-{self.stack_name}"[:64]
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="operator", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    # moto's switch is process-wide (and endpoint-wide): it goes off only when the last
    # stack that turned it on stops, so a second stack in a test session cannot turn
    # it off under the first.
    _enforcing = 0
    _enforcing_lock = threading.Lock()

    def enforce(self, enabled: bool = True) -> None:
        with LocalIam._enforcing_lock:
            LocalIam._enforcing += 1 if enabled else -1
            if not enabled and LocalIam._enforcing > 0:
                return
            self._switch(enabled)

    def _switch(self, enabled: bool) -> None:
        import httpx

        count = "0" if enabled else "inf"
        response = httpx.post(f"{self.endpoint_url}/moto-api/reset-auth", content=count,
                              timeout=5)
        if not response.is_success:
            raise IamUnavailable(f"the AWS endpoint refused to enforce IAM "
                                 f"({response.status_code})")


def teach_moto_resources() -> None:
    """Tell the embedded moto which resource a Secrets Manager or SES request is about.

    moto checks a policy's Resource only where the service names it (SQS, S3, IAM,
    STS); elsewhere it asks about "*", which a grant on one secret never matches. AWS
    authorizes GetSecretValue against the secret's ARN and SendEmail against the
    sender's identity ARN (the Service Authorization Reference); these resolvers give
    moto the same, so a grant on the wrong secret is refused as it would be in AWS.
    Actions that AWS only authorizes on "*" keep "*".
    """
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.ses.responses import EmailResponse
    from moto.sqs.responses import SQSResponse

    queue_resource = getattr(SQSResponse, "_pilot_original", SQSResponse._determine_resource)

    def sqs_queue(self: Any) -> str:
        # moto finds the queue from QueueUrl; GetQueueUrl names it by QueueName
        if self._get_action() in ("StartMessageMoveTask", "ListMessageMoveTasks"):
            # named by the source queue's ARN, as AWS authorizes them
            return str(self._get_param("SourceArn") or "*")
        if self._get_action() == "GetQueueUrl":
            name = self._get_param("QueueName")
            queue = self.sqs_backend.queues.get(name) if name else None
            return str(queue.queue_arn) if queue is not None else "*"
        return str(queue_resource(self))

    def secret_arn(self: Any) -> str:
        secret_id = self._get_param("SecretId")
        if not secret_id:
            return "*"
        secret = self.backend.secrets.get(secret_id)
        return str(secret.arn) if secret is not None else "*"

    def ses_identity(self: Any) -> str:
        if self._get_action() not in ("SendEmail", "SendRawEmail", "SendTemplatedEmail"):
            return "*"
        source = str(self._get_param("Source") or "")
        address = source.rsplit("<", 1)[-1].rstrip(">").strip()
        return f"arn:aws:ses:{self.region}:{self.current_account}:identity/{address}"

    from moto.iam.access_control import IAMRequest

    class BatchAsSingle(IAMRequest):
        """AWS authorizes SQS's batch calls as their single-message actions
        (SendMessageBatch needs sqs:SendMessage); moto asks for the batch name."""

        def __init__(self, account_id: str, method: str, path: str, data: dict[str, str],
                     body: bytes, headers: dict[str, str], action: str) -> None:
            super().__init__(account_id, method, path, data, body, headers,
                             SQS_BATCH_ACTIONS.get(action, action))

    def sqs_authorize(self: Any, resource: str = "*") -> None:
        self._authenticate_and_authorize_action(BatchAsSingle, resource)

    class CloudWatchAction(IAMRequest):
        """CloudWatch signs as "monitoring"; IAM names its actions "cloudwatch:...",
        which moto would otherwise never match (the operator console's grants)."""

        def __init__(self, account_id: str, method: str, path: str, data: dict[str, str],
                     body: bytes, headers: dict[str, str], action: str) -> None:
            super().__init__(account_id, method, path, data, body, headers, action)
            self._action = self._action.replace("monitoring:", "cloudwatch:", 1)

    def cloudwatch_authorize(self: Any, resource: str = "*") -> None:
        self._authenticate_and_authorize_action(CloudWatchAction, resource)

    def cloudwatch_alarms(self: Any) -> str:
        # DescribeAlarms is authorized on the alarms (alarm:*); the metric calls on "*"
        if self._get_action() == "DescribeAlarms":
            return f"arn:aws:cloudwatch:{self.region}:{self.current_account}:alarm:*"
        return "*"

    from moto.cloudwatch.responses import CloudWatchResponse

    CloudWatchResponse._authenticate_and_authorize_normal_action = cloudwatch_authorize  # type: ignore[method-assign]
    CloudWatchResponse._determine_resource = cloudwatch_alarms  # type: ignore[attr-defined]
    SQSResponse._authenticate_and_authorize_normal_action = sqs_authorize  # type: ignore[method-assign]
    SQSResponse._pilot_original = queue_resource  # type: ignore[attr-defined]
    SQSResponse._determine_resource = sqs_queue  # type: ignore[method-assign]
    SecretsManagerResponse._determine_resource = secret_arn  # type: ignore[attr-defined]
    EmailResponse._determine_resource = ses_identity  # type: ignore[attr-defined]

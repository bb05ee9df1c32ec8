"""Reads template.yaml: the one list of functions, routes, queues and schedules.

The local runtime, the tests and the docs ask this module; nothing else keeps a
second copy of those facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "000000000000"


class TemplateError(ValueError):
    """The template cannot be read or names something that does not exist."""


class _CfnLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def default_template_path() -> Path:
    return repo_root() / "template.yaml"


@dataclass(frozen=True)
class Route:
    method: str  # GET, POST, ... or ANY
    path: str  # /v1/products/{id} or /v1/products/{proxy+}
    function: str  # logical id


@dataclass(frozen=True)
class QueueMapping:
    function: str
    queue: str  # logical id of the queue
    batch_size: int
    max_concurrency: int
    report_failures: bool


@dataclass(frozen=True)
class ScheduleEvent:
    name: str
    function: str
    expression: str
    input: dict[str, Any]
    enabled: bool = True
    dead_letter_queue: str | None = None  # logical id of the queue failed runs go to


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, Any]
    properties: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def handler_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return repo_root() / self.code_uri / (module.replace(".", "/") + ".py")

    @property
    def short_name(self) -> str:
        """The FunctionName after the stack prefix: "worker-critical" for
        !Sub "${AWS::StackName}-worker-critical"; else the logical id in lower case."""
        raw = self.properties.get("FunctionName")
        if isinstance(raw, dict) and isinstance(raw.get("Fn::Sub"), str):
            return str(raw["Fn::Sub"]).rsplit("}-", 1)[-1]
        return self.logical_id.lower().removesuffix("function")

    @property
    def handler_attr(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass
class Template:
    path: Path
    raw: dict[str, Any]
    functions: dict[str, FunctionSpec]
    routes: list[Route]
    queue_mappings: list[QueueMapping]
    schedules: list[ScheduleEvent]

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.raw.get("Resources", {}))

    def resources_of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == cfn_type}

    def function(self, name: str) -> FunctionSpec:
        """Find a function by logical id, physical-name suffix or short name."""
        if name in self.functions:
            return self.functions[name]
        wanted = name.lower().replace("-", "").replace("_", "")
        for logical_id, spec in self.functions.items():
            short = logical_id.lower().removesuffix("function")
            if wanted in (short, logical_id.lower(), spec.short_name.replace("-", "")):
                return spec
        known = ", ".join(sorted(self.functions))
        raise TemplateError(f"no function named {name!r} in the template; known: {known}")

    def parameter_defaults(self) -> dict[str, str]:
        params = self.raw.get("Parameters", {}) or {}
        return {k: str(v.get("Default", "")) for k, v in params.items()}


def load_template(path: Path | None = None) -> Template:
    path = path or default_template_path()
    try:
        raw = yaml.load(path.read_text(), Loader=_CfnLoader)
    except FileNotFoundError as exc:
        raise TemplateError(f"template not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"template {path} does not parse: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("Resources"), dict):
        raise TemplateError(f"template {path} has no Resources section")
    return _interpret(path, raw)


def _interpret(path: Path, raw: dict[str, Any]) -> Template:
    globals_fn = (raw.get("Globals") or {}).get("Function") or {}
    global_env = ((globals_fn.get("Environment") or {}).get("Variables")) or {}
    functions: dict[str, FunctionSpec] = {}
    routes: list[Route] = []
    mappings: list[QueueMapping] = []
    schedules: list[ScheduleEvent] = []
    for logical_id, resource in raw["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        env = dict(global_env)
        env.update(((props.get("Environment") or {}).get("Variables")) or {})
        spec = FunctionSpec(
            logical_id=logical_id,
            code_uri=str(props.get("CodeUri", "")).rstrip("/"),
            handler=str(props.get("Handler", "")),
            timeout=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
            memory=int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
            environment=env,
            properties=props,
        )
        functions[logical_id] = spec
        for event_name, event in (props.get("Events") or {}).items():
            kind, eprops = event.get("Type"), event.get("Properties") or {}
            if kind == "HttpApi":
                routes.append(Route(str(eprops.get("Method", "ANY")).upper(),
                                    str(eprops["Path"]), logical_id))
            elif kind == "SQS":
                mappings.append(
                    QueueMapping(
                        function=logical_id,
                        queue=_ref_target(eprops.get("Queue"), event_name),
                        batch_size=int(eprops.get("BatchSize", 10)),
                        max_concurrency=int(
                            (eprops.get("ScalingConfig") or {}).get("MaximumConcurrency", 2)
                        ),
                        report_failures="ReportBatchItemFailures"
                        in (eprops.get("FunctionResponseTypes") or []),
                    )
                )
            elif kind in ("Schedule", "ScheduleV2"):
                expression = eprops.get("Schedule") or eprops.get("ScheduleExpression")
                schedules.append(
                    ScheduleEvent(
                        name=event_name,
                        function=logical_id,
                        expression=str(expression),
                        input=_schedule_input(eprops.get("Input")),
                        enabled=eprops.get("Enabled", True) is not False
                        and eprops.get("State", "ENABLED") != "DISABLED",
                    )
                )
    schedules += _scheduler_schedules(raw["Resources"], functions)
    return Template(path, raw, functions, routes, mappings, schedules)


def _scheduler_schedules(resources: dict[str, Any],
                         functions: dict[str, FunctionSpec]) -> list[ScheduleEvent]:
    """AWS::Scheduler::Schedule resources whose target is one of the template's
    functions; named by logical id without the "Schedule" suffix (DailyRefresh)."""
    found = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Scheduler::Schedule":
            continue
        props = resource.get("Properties") or {}
        target = props.get("Target") or {}
        arn = target.get("Arn")
        if not (isinstance(arn, dict) and isinstance(arn.get("Fn::GetAtt"), list)
                and arn["Fn::GetAtt"][0] in functions):
            raise TemplateError(f"{logical_id}: Target.Arn must be !GetAtt <Function>.Arn "
                                f"of a function in the template, got {arn!r}")
        dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
        found.append(ScheduleEvent(
            name=logical_id.removesuffix("Schedule") or logical_id,
            function=str(arn["Fn::GetAtt"][0]),
            expression=str(props.get("ScheduleExpression")),
            input=_schedule_input(target.get("Input")),
            enabled=props.get("State", "ENABLED") != "DISABLED",
            dead_letter_queue=_ref_target(dlq, logical_id) if dlq else None,
        ))
    return found


def _ref_target(value: Any, where: str) -> str:
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
        if "Ref" in value:
            return str(value["Ref"])
    raise TemplateError(f"event {where}: Queue must be !GetAtt <Queue>.Arn, got {value!r}")


def _schedule_input(value: Any) -> dict[str, Any]:
    import json

    if value is None:
        return {}
    if isinstance(value, str):
        parsed = json.loads(value)
        if not isinstance(parsed, dict):
            raise TemplateError(f"schedule Input must be a JSON object, got {value!r}")
        return parsed
    raise TemplateError(f"schedule Input must be a JSON string, got {value!r}")


# ---------------------------------------------------------------- intrinsics

_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


@dataclass
class ResolveContext:
    """What !Ref, !GetAtt and !Sub resolve against in the local runtime."""

    stack_name: str
    region: str
    parameters: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)  # logical id -> Ref value
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)  # (id, attr) -> value
    conditions: dict[str, bool] = field(default_factory=dict)
    account_id: str = ACCOUNT_ID  # the AWS endpoint's account, once it is known

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)


class _NoValue:
    pass


NO_VALUE = _NoValue()


def resolve(value: Any, ctx: ResolveContext) -> Any:
    """Evaluate the intrinsics the runtime needs; unknown ones raise TemplateError."""
    if isinstance(value, list):
        items = [resolve(v, ctx) for v in value]
        return [v for v in items if v is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return _ref(str(arg), ctx)
        if key == "Fn::GetAtt":
            logical, attr = arg
            if (logical, attr) not in ctx.attrs:
                raise TemplateError(f"!GetAtt {logical}.{attr}: no such resource attribute")
            return ctx.attrs[(logical, attr)]
        if key == "Fn::Sub":
            return _sub(arg, ctx)
        if key == "Fn::If":
            name, yes, no = arg
            return resolve(yes if ctx.conditions.get(name, False) else no, ctx)
        if key == "Fn::Join":
            sep, parts = arg
            return str(sep).join(str(p) for p in resolve(parts, ctx))
        if key in _LOGICAL and (key != "Condition" or isinstance(arg, str)):
            return _logical(key, arg, ctx)
        if key.startswith("Fn::"):
            raise TemplateError(f"intrinsic {key} is not supported by the local runtime")
    out = {k: resolve(v, ctx) for k, v in value.items()}
    return {k: v for k, v in out.items() if v is not NO_VALUE}


_LOGICAL = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition")


def _logical(key: str, arg: Any, ctx: ResolveContext) -> Any:
    """The condition functions; "Condition" is !Condition X inside !And/!Or/!Not."""
    if key == "Fn::Equals":
        left, right = resolve(arg, ctx)
        return left == right
    if key == "Fn::Not":
        return not resolve(arg[0], ctx)
    if key == "Fn::And":
        return all(resolve(item, ctx) for item in arg)
    if key == "Fn::Or":
        return any(resolve(item, ctx) for item in arg)
    if arg not in ctx.conditions:
        raise TemplateError(f"!Condition {arg}: no such condition (or declared later)")
    return ctx.conditions[arg]


def _ref(name: str, ctx: ResolveContext) -> Any:
    if name == "AWS::NoValue":
        return NO_VALUE
    pseudo = ctx.pseudo(name)
    if pseudo is not None:
        return pseudo
    if name in ctx.parameters:
        return ctx.parameters[name]
    if name in ctx.refs:
        return ctx.refs[name]
    raise TemplateError(f"!Ref {name}: no such parameter or resource")


def _sub(arg: Any, ctx: ResolveContext) -> str:
    if isinstance(arg, list):
        template, variables = arg[0], {k: resolve(v, ctx) for k, v in arg[1].items()}
    else:
        template, variables = arg, {}

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return str(variables[name])
        if "." in name:
            logical, attr = name.split(".", 1)
            if (logical, attr) in ctx.attrs:
                return ctx.attrs[(logical, attr)]
            raise TemplateError(f"!Sub ${{{name}}}: no such resource attribute")
        return str(_ref(name, ctx))

    return _SUB_VAR.sub(one, str(template))


def evaluate_conditions(raw: dict[str, Any], ctx: ResolveContext) -> dict[str, bool]:
    """Each condition in template order; one may name those declared before it."""
    conditions: dict[str, bool] = {}
    ctx.conditions = conditions
    for name, expression in (raw.get("Conditions") or {}).items():
        conditions[name] = bool(resolve(expression, ctx))
    return conditions

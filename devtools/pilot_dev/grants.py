"""Which AWS calls each function can make, read from the code (no import, no run).

A reference graph of the shipped package: a node per module (its top-level code), per
function or method, and per module-level constant. An edge wherever a node names
another (a call, a callback, a FastAPI dependency, a "module:function" string in a
job table), so what a handler can reach is what it can run. On the reachable nodes,
every boto3 call made through `adapters.aws.client("<service>")` is an AWS call; its
IAM action is the operation's name in botocore's model (the names the Service
Authorization Reference uses). Deliberately generous: reaching a function counts as
calling it, so the grants are what the code *can* do, not what a test happened to do.

tests/unit/test_grants.py turns the calls into (action, resource) pairs and checks that
template.yaml grants exactly those.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pilot_dev.runtime.template import FunctionSpec, repo_root

PACKAGE = "amazon_pilot"
CLIENT = f"{PACKAGE}.adapters.aws:client"
# parameters annotated with these names hold a client of that service (handed in)
CLIENT_TYPES = {f"{PACKAGE}.adapters.aws:SqsClient": "sqs"}
# batch calls that IAM authorizes with the single-message action
BATCH_ACTIONS = {("sqs", "SendMessageBatch"): "SendMessage",
                 ("sqs", "DeleteMessageBatch"): "DeleteMessage",
                 ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility"}
IAM_PREFIX = {"email": "ses"}  # botocore's endpoint prefix -> IAM's service prefix


@dataclass(frozen=True)
class AwsCall:
    node: str  # "module:qualname" where the call is written
    service: str  # boto3's service name ("sqs", "ses", ...)
    method: str  # boto3's method ("send_message"), or the paginated operation's

    @property
    def action(self) -> str:
        operation = _operation(self.service, self.method)
        operation = BATCH_ACTIONS.get((self.service, operation), operation)
        prefix = IAM_PREFIX.get(self.service, self.service)
        return f"{prefix}:{operation}"


@cache
def _operations(service: str) -> dict[str, str]:
    """boto3 method name -> operation name, from botocore's model of the service."""
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): str(name) for name in model.operation_names}


def _operation(service: str, method: str) -> str:
    try:
        return _operations(service)[method]
    except KeyError:
        raise LookupError(f"{service}.{method} is not an operation of {service}") from None


@dataclass
class Node:
    name: str
    body: list[ast.AST]
    refs: set[str] = field(default_factory=set)
    aws: list[AwsCall] = field(default_factory=list)
    attributes: set[str] = field(default_factory=set)  # .attr names read (settings fields)
    strings: set[str] = field(default_factory=set)  # string constants
    enqueue_priorities: set[str | None] = field(default_factory=set)  # None: not a literal


class Graph:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or repo_root()) / "shared"
        self.nodes: dict[str, Node] = {}
        self.modules: set[str] = set()
        self._class_methods: dict[str, list[str]] = {}
        paths = sorted((self.root / PACKAGE).rglob("*.py"))
        for path in paths:
            if "web_assets" not in path.parts:
                self.modules.add(self._module_name(path))
        for path in paths:
            if "web_assets" not in path.parts:
                self._add_module(self._module_name(path), ast.parse(path.read_text()))

    def _module_name(self, path: Path) -> str:
        parts = path.relative_to(self.root).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    def add_file(self, module: str, path: Path) -> None:
        self.modules.add(module)
        self._add_module(module, ast.parse(path.read_text()))

    # ------------------------------------------------------------ building

    def _add_module(self, module: str, tree: ast.Module) -> None:
        aliases = self._aliases(module, tree)
        top: list[ast.AST] = []
        local: dict[str, str] = {}
        pending: list[tuple[str, list[ast.AST], str | None]] = []
        registered: list[str] = []
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                local[stmt.name] = f"{module}:{stmt.name}"
                pending.append((f"{module}:{stmt.name}", [stmt], None))
                if stmt.decorator_list:  # a decorator registers it (a route, an entry)
                    registered.append(f"{module}:{stmt.name}")
            elif isinstance(stmt, ast.ClassDef):
                cls = f"{module}:{stmt.name}"
                local[stmt.name] = cls
                methods = []
                rest: list[ast.AST] = []
                for item in stmt.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        name = f"{module}:{stmt.name}.{item.name}"
                        methods.append(name)
                        pending.append((name, [item], stmt.name))
                    else:
                        rest.append(item)
                pending.append((cls, [*rest, *stmt.bases, *stmt.decorator_list], None))
                self._class_methods[cls] = methods
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names:
                    for name in names:
                        local[name] = f"{module}:{name}"
                        pending.append((f"{module}:{name}", [stmt.value], None))
                        # a value computed by a call runs at import; a table of names
                        # (a dict of "module:function") only runs what reads it
                        if any(isinstance(n, ast.Call) for n in ast.walk(stmt.value)):
                            registered.append(f"{module}:{name}")
                else:
                    top.append(stmt)
            else:
                top.append(stmt)
        scope = {**aliases, **local}
        self._scan(Node(module, top, refs=set(registered)), scope, None)
        for name, body, owner in pending:
            self._scan(Node(name, body), scope, owner)
            if name in self._class_methods:
                self.nodes[name].refs.update(self._class_methods[name])

    def _aliases(self, module: str, tree: ast.Module) -> dict[str, str]:
        """Every import in the module, top-level or inside a function: name -> target."""
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        aliases[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:
                    parent = module.split(".")[: -node.level]
                    base = ".".join([*parent, node.module])
                if base.split(".")[0] != PACKAGE:
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    aliases[alias.asname or alias.name] = (
                        full if full in self.modules else f"{base}:{alias.name}")
        return aliases

    def _resolve(self, expr: ast.AST, scope: dict[str, str]) -> str | None:
        if isinstance(expr, ast.Name):
            return scope.get(expr.id)
        if isinstance(expr, ast.Attribute):
            base = self._resolve(expr.value, scope)
            if base is not None and ":" not in base:
                full = f"{base}.{expr.attr}"
                return full if full in self.modules else f"{base}:{expr.attr}"
        return None

    def _scan(self, node: Node, scope: dict[str, str], cls: str | None) -> None:  # noqa: C901
        module = node.name.split(":")[0]
        clients: dict[str, str] = {}  # local variable -> service, for `ses = client("ses")`
        for stmt in node.body:
            for sub in ast.walk(stmt):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    for alias in sub.names:
                        target = scope.get(alias.asname or alias.name)
                        if target:  # importing runs the module's top-level code
                            node.refs.add(target.split(":")[0])
                elif isinstance(sub, (ast.Name, ast.Attribute)):
                    target = self._resolve(sub, scope)
                    if target:
                        node.refs.add(target)
                    if isinstance(sub, ast.Attribute):
                        node.attributes.add(sub.attr)
                        if (cls and isinstance(sub.value, ast.Name) and sub.value.id == "self"):
                            node.refs.add(f"{module}:{cls}.{sub.attr}")
                elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    node.strings.add(sub.value)
                    if sub.value.startswith(f"{PACKAGE}.") and ":" in sub.value:
                        node.refs.add(sub.value)
                        node.refs.add(sub.value.split(":")[0])
                elif isinstance(sub, ast.arg) and sub.annotation is not None:
                    handed = CLIENT_TYPES.get(self._resolve(sub.annotation, scope) or "")
                    if handed:
                        clients[sub.arg] = handed
                elif isinstance(sub, ast.Assign) and isinstance(sub.value, ast.Call):
                    service = self._client_service(sub.value, scope)
                    if service:
                        for assigned in sub.targets:
                            if isinstance(assigned, ast.Name):
                                clients[assigned.id] = service
            self._scan_calls(node, stmt, scope, clients)
        self.nodes[node.name] = node

    def _scan_calls(self, node: Node, stmt: ast.AST, scope: dict[str, str],
                    clients: dict[str, str]) -> None:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
                owner = sub.func.value
                service = self._client_service(owner, scope) if isinstance(
                    owner, ast.Call) else clients.get(getattr(owner, "id", ""))
                if service:
                    method = sub.func.attr
                    if method == "get_paginator" and sub.args and isinstance(
                            sub.args[0], ast.Constant):
                        method = str(sub.args[0].value)
                    if method not in ("exceptions", "meta"):
                        node.aws.append(AwsCall(node.name, service, method))
            if isinstance(sub, ast.Call):
                target = self._resolve(sub.func, scope)
                # platform.outbox writes the job in the caller's transaction (its first
                # argument is the connection); the relay then sends what that code wrote
                position = {f"{PACKAGE}.adapters.queues:enqueue": 0,
                            f"{PACKAGE}.adapters.queues:enqueue_many": 0,
                            f"{PACKAGE}.platform.outbox:enqueue": 1,
                            f"{PACKAGE}.platform.outbox:enqueue_many": 1}.get(target or "")
                if position is not None:
                    first = sub.args[position] if len(sub.args) > position else None
                    node.enqueue_priorities.add(
                        first.value if isinstance(first, ast.Constant)
                        and isinstance(first.value, str) else None)

    def _client_service(self, call: ast.Call, scope: dict[str, str]) -> str | None:
        if (self._resolve(call.func, scope) == CLIENT and call.args
                and isinstance(call.args[0], ast.Constant)):
            return str(call.args[0].value)
        return None

    # ------------------------------------------------------------ reading

    def reachable(self, starts: list[str], exclude: frozenset[str] = frozenset()) -> set[str]:
        """What `starts` can run; `exclude` are nodes known not to run from there (the
        jobs a consumer refuses)."""
        seen: set[str] = set()
        todo = list(starts)
        while todo:
            name = todo.pop()
            if name in seen or name not in self.nodes or name in exclude:
                continue
            seen.add(name)
            todo.extend(self.nodes[name].refs)
            if ":" in name:  # a function runs in a loaded module
                todo.append(name.split(":")[0])
        return seen

    def aws_calls(self, names: set[str]) -> Iterator[AwsCall]:
        for name in sorted(names):
            yield from self.nodes[name].aws


def package_graph(functions: dict[str, FunctionSpec]) -> Graph:
    """The package's graph plus every function's handler module, named by logical id."""
    graph = Graph()
    for logical_id, spec in functions.items():
        graph.add_file(handler_module(logical_id), spec.handler_file)
    return graph


def refused_jobs(priority: str) -> frozenset[str]:
    """The job functions a consumer of `priority` never runs (platform/jobs.py's QUEUES:
    it dead-letters them), read from the module's tables."""
    tree = ast.parse((repo_root() / "shared" / PACKAGE / "platform" / "jobs.py").read_text())
    tables: dict[str, Any] = {}
    for stmt in tree.body:
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or stmt.value is None:
            continue
        target = stmt.target if isinstance(stmt, ast.AnnAssign) else stmt.targets[0]
        if isinstance(target, ast.Name) and target.id in ("JOBS", "QUEUES", "ANY_QUEUE"):
            value = stmt.value
            if target.id == "QUEUES":  # ANY_QUEUE is a name in it
                value = _inline(value, tables.get("ANY_QUEUE", ()))
            tables[target.id] = ast.literal_eval(value)
    jobs: dict[str, str] = tables["JOBS"]
    queues: dict[str, tuple[str, ...]] = tables["QUEUES"]
    return frozenset(target for job, target in jobs.items()
                     if priority not in queues.get(job, ()))


def _inline(value: ast.expr, any_queue: tuple[str, ...]) -> ast.expr:
    class Inline(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id == "ANY_QUEUE":
                return ast.Tuple([ast.Constant(q) for q in any_queue], ast.Load())
            return node

    return Inline().visit(value)


def handler_module(logical_id: str) -> str:
    return f"handler:{logical_id}".replace(":", "_")

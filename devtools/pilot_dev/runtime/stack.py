"""`pilot run`: the whole service on one machine, driven by template.yaml.

Postgres (DATABASE_URL or an embedded server under .pilot/), the AWS endpoint
(AWS_ENDPOINT_URL or moto in process), the template's queues, secrets and log
groups created from their own properties, the offline Apify and OpenAI stand-ins
when no keys are set, the HTTP API, the SQS pollers and the schedule clock.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilot_dev.runtime.alarms import (
    LocalAlarms,
    MeteredHost,
    MetricsTap,
    MetricStore,
    QueueSampler,
    alarm_definitions,
)
from pilot_dev.runtime.gateway import MAX_PAYLOAD, AccessLog, Gateway
from pilot_dev.runtime.http_server import HttpServer
from pilot_dev.runtime.invoker import CREDENTIALS, FunctionHost, Invoker, release_thread_loop
from pilot_dev.runtime.logs import CloudWatchShipper, moto_log_trimmer, moto_log_writer
from pilot_dev.runtime.routes import RouteTable
from pilot_dev.runtime.template import (
    ACCOUNT_ID,
    ResolveContext,
    Template,
    TemplateError,
    evaluate_conditions,
    load_template,
    repo_root,
    resolve,
)
from pilot_dev.runtime.workers import OutboxRelayThread, QueuePoller, ScheduleClock

log = logging.getLogger("pilot.runtime")

DEFAULT_PORT = 3000
DEFAULT_STACK = "amazon-pilot-local"
DATABASE_NAME = "amazon_pilot"
# Settings the production configuration reads only from secrets: never in a function's
# environment when StackConfig.secrets_only (the default).
PLAINTEXT_SETTINGS = frozenset({"DATABASE_URL", "APIFY_TOKEN", "OPENAI_API_KEY", "JWT_SECRET",
                                "KEEPA_API_KEY"})


class StackError(RuntimeError):
    """A start-up problem, with the fix in its message."""


@dataclass
class StackConfig:
    template_path: Path | None = None
    stack_name: str = DEFAULT_STACK
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=lambda: repo_root() / ".pilot")
    database_url: str | None = None
    aws_endpoint_url: str | None = None
    region: str = "us-east-1"
    pollers: bool = True
    schedules: bool = True
    standins: bool = True
    parameters: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    poll_wait_s: int = 5  # SQS long polling: a message wakes the poll at once
    # each access line also on stdout, as a development server prints them (off for a
    # bench, whose figures would drown in them)
    echo_access_log: bool = True
    # `pilot run --workers N`: the queue consumers run in N worker processes (0: in this
    # process, as before); None is the number of cores
    workers: int | None = 0
    # `pilot run --http-processes N`: the API served by N processes, this one included
    # (runtime/http_processes.py); None is the number of cores
    http_processes: int | None = 1
    # `pilot run --from-build DIR`: run each function from sam build's artifacts in a
    # Python 3.13 process of its own (runtime/process_invoker.py), not in this process
    from_build: Path | None = None
    # The production configuration (docs/iam.md): settings only from secrets by ARN,
    # and each function as its own role with IAM enforced by the embedded endpoint.
    secrets_only: bool = True
    enforce_iam: bool = True

    @classmethod
    def from_env(cls, **overrides: Any) -> StackConfig:
        cfg = cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            # PILOT_DATA_DIR (`pilot --data-dir`): a second stack from the same checkout
            data_dir=Path(os.environ["PILOT_DATA_DIR"]) if os.environ.get("PILOT_DATA_DIR")
            else repo_root() / ".pilot",
            aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1",
        )
        for key, value in overrides.items():
            setattr(cfg, key, value)
        return cfg


def check_port_free(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StackError(
                f"port {port} on {host} is in use ({exc.strerror}); stop what uses it or "
                f"choose another with `pilot run --port N`"
            ) from exc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class EmbeddedPostgres:
    """A Postgres server in a project folder, from the pgserver wheel's binaries."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server: Any = None

    def start(self) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        # pgserver's platformdirs wants a runtime dir; keep it inside the project
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.directory.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
        import pgserver

        try:
            self.server = pgserver.get_server(str(self.directory), cleanup_mode="stop")
        except Exception as exc:
            raise StackError(
                f"the embedded Postgres in {self.directory} did not start ({exc}); "
                f"remove that folder to start afresh, or set DATABASE_URL"
            ) from exc
        uri: str = self.server.get_uri()
        return uri

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None


def ensure_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server of `admin_url` if missing; return its URL."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise StackError(
            f"cannot reach Postgres at {_redact(admin_url)} ({first}); start it, or unset "
            f"DATABASE_URL to use the embedded server"
        ) from exc
    return with_database(admin_url, name)


def with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or parts.query or "local socket"
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def _product_source(config: StackConfig) -> str | None:
    """PRODUCT_SOURCE from the stack's extra variables or the process environment."""
    source = config.extra_env.get("PRODUCT_SOURCE") or os.environ.get("PRODUCT_SOURCE")
    return source.strip().lower() if source and source.strip() else None


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.template: Template = load_template(config.template_path)
        self.postgres: EmbeddedPostgres | None = None
        self.moto: Any = None
        self.standins: dict[str, Any] = {}
        self._clients: dict[tuple[str, ...], Any] = {}
        self._clients_lock = threading.Lock()
        self._recording: Any = None  # APIFY_REPLAY's recorded exports, when set
        self.database_url = ""
        self.endpoint_url = ""
        self.ctx = ResolveContext(
            stack_name=config.stack_name,
            region=config.region,
            # a sender address, so the SES grant names an identity as a deploy's does
            parameters={**self.template.parameter_defaults(), "Stage": "local",
                        "NotifyFromEmail": "alerts@amazon-pilot.local",
                        # `PRODUCT_SOURCE=keepa pilot run`: the template's ProductSource
                        **({"ProductSource": source} if (source := _product_source(config))
                           else {}),
                        **config.parameters},
        )
        self.queue_urls: dict[str, str] = {}  # logical id -> URL
        self.function_names: dict[str, str] = {}
        self.environments: dict[str, dict[str, str]] = {}
        self.host: Invoker | None = None
        self.invoker: Invoker | None = None
        self.pollers: list[QueuePoller] = []
        self.worker_processes: Any = None  # `--workers N`: runtime/worker_processes.py
        self.http_processes: Any = None  # `--http-processes N`: runtime/http_processes.py
        self.control_server: HttpServer | None = None  # /_pilot/... for the HTTP processes
        self.access_settings: tuple[str, str] | None = None  # the HttpApi's format, group
        self.clock: ScheduleClock | None = None
        self.relay: OutboxRelayThread | None = None
        self.shipper: CloudWatchShipper | None = None
        self.server: HttpServer | None = None
        self.access_log_group: str | None = None  # the HttpApi's, when the template has one
        self.timings: dict[str, float] = {}
        self._started = 0.0
        # required by /_pilot/... (see gateway.OPERATOR_TOKEN_HEADER); new every start
        self.operator_token = secrets.token_urlsafe(32)
        self.iam: Any = None  # LocalIam, when the endpoint enforces IAM
        self.operator_env: dict[str, str] = {}  # the runtime's own identity, then
        self.hidden: frozenset[str] = frozenset()  # process variables no function sees
        # the local metrics (AWS/SQS, AWS/Lambda, AWS/ApiGateway, EMF) and the template's
        # alarms evaluated on them (runtime/alarms.py)
        self.metrics = MetricStore()
        self.tap: MetricsTap | None = None
        self.alarms: LocalAlarms | None = None

    # ------------------------------------------------------------ start

    def start(self, *, serve_in_thread: bool = True) -> Stack:
        started = self._started = time.perf_counter()
        check_port_free(self.config.host, self.config.port)
        self._recording = self._load_recording()  # an unusable export stops us first
        # Import what the functions and the endpoint need while Postgres starts (that
        # is mostly waiting on a subprocess, so the two overlap).
        threading.Thread(target=_preimport, name="preimport", daemon=True).start()
        try:
            self._start_database()
            self._mark("database", started)
            self._start_aws()
            self._mark("aws", started)
            self._provision()
            self._mark("provision", started)
            self._start_standins()
            self._prepare_secrets_key()
            self._provision_configuration_secrets()
            self._export_environment()
            self._provision_iam()
            self._mark("iam", started)
            self._start_functions()
            if serve_in_thread:
                self._serve_in_thread()
                self._mark("http", started)
            # After the API answers: the worker and HTTP processes loading on every core
            # would otherwise slow this process's last steps (the start took 5.4-6.0 s
            # instead of 4.5 with them ahead of the listener).
            self._start_consumers()
            if serve_in_thread:
                self._start_http_processes()
        except Exception:
            self.stop()
            raise
        return self

    def _mark(self, step: str, started: float) -> None:
        self.timings[step] = round(time.perf_counter() - started, 3)

    def _start_database(self) -> None:
        # The schema comes later, from the migration function (_run_custom_resources).
        if self.config.database_url:
            url = self.config.database_url
            name = _database_of(url) or DATABASE_NAME
            self.database_url = ensure_database(with_database(url, "postgres"), name)
        else:
            self.postgres = EmbeddedPostgres(self.config.data_dir / "postgres")
            self.database_url = ensure_database(self.postgres.start(), DATABASE_NAME)

    def _start_aws(self) -> None:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ["AWS_DEFAULT_REGION"] = self.config.region
        os.environ["AWS_REGION"] = self.config.region
        if self.config.aws_endpoint_url:
            self.endpoint_url = self.config.aws_endpoint_url.rstrip("/")
        else:
            from moto.server import ThreadedMotoServer

            from pilot_dev.runtime.moto_heap import install as untracked_models
            from pilot_dev.runtime.moto_sqs import install as flat_sqs_costs

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call
            flat_sqs_costs()  # a send's cost must not grow with the queue's depth
            untracked_models()  # nor the heap with every message and log line served

            self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self.moto.start()
            host, port = self.moto.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
        if self.moto is not None:
            return  # just started in this process: nothing to probe
        try:
            self.client("sts").get_caller_identity()
        except Exception as exc:
            raise StackError(
                f"the AWS endpoint {self.endpoint_url} does not answer ({exc}); start it, or "
                f"unset AWS_ENDPOINT_URL to use the embedded one"
            ) from exc

    def client(self, service: str) -> Any:
        """A client with the process's current credentials (the setup's, then the
        operator's once IAM is enforced). Kept per service and credentials: making one
        reads its service model from disk, ≈ 0.15 s, and the start makes ≈ 90."""
        return self._cached_client(service, os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                                   os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"), None)

    def _cached_client(self, service: str, key_id: str, secret: str,
                       token: str | None) -> Any:
        from amazon_pilot.adapters.aws import session_client

        key = (service, key_id, secret, token or "", self.endpoint_url)
        with self._clients_lock:
            made = self._clients.get(key)
            if made is None:
                # the process's one session, which the in-process functions share
                made = self._clients[key] = session_client(
                    service, region_name=self.config.region, endpoint_url=self.endpoint_url,
                    aws_access_key_id=key_id, aws_secret_access_key=secret,
                    aws_session_token=token)
        return made

    def function_client(self, logical_id: str, service: str) -> Any:
        """A client as the function's role (what Lambda's event source mapping polls
        with); the process's credentials when IAM is not enforced."""
        env = self.environments.get(logical_id, {})
        if self.iam is None or "AWS_ACCESS_KEY_ID" not in env:
            return self.client(service)
        return self._cached_client(service, env["AWS_ACCESS_KEY_ID"],
                                   env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN"))

    def _provision(self) -> None:
        """Create what the template declares, from its own resource properties."""
        # ARNs the grants name carry the endpoint's account
        self.ctx.account_id = str(self.client("sts").get_caller_identity()["Account"])
        resources = self.template.resources
        self.ctx.conditions = evaluate_conditions(self.template.raw, self.ctx)
        for logical_id, resource in resources.items():
            kind = resource.get("Type", "")
            if kind in ("AWS::Serverless::HttpApi", "AWS::Serverless::LayerVersion",
                        "AWS::SNS::Topic", "AWS::CloudWatch::Alarm"):
                self.ctx.refs[logical_id] = f"{self.config.stack_name}-{logical_id}"
            elif kind == "AWS::KMS::Key":
                # Not made locally: the embedded endpoint forgets its keys at every
                # restart, Postgres does not forget what they sealed. `pilot run` seals
                # with the key file instead (_prepare_secrets_key); "" = no KMS key.
                self.ctx.refs[logical_id] = ""
                self.ctx.attrs[(logical_id, "Arn")] = (
                    f"arn:aws:kms:{self.config.region}:{ACCOUNT_ID}:key/{logical_id}-local")
        sqs = self.client("sqs")
        # DLQs first: the source queues' redrive policies name their ARNs.
        queues = self.template.resources_of_type("AWS::SQS::Queue")
        ordered = sorted(
            queues, key=lambda q: "RedrivePolicy" in (queues[q].get("Properties") or {})
        )
        for logical_id in ordered:
            props = resolve(queues[logical_id].get("Properties") or {}, self.ctx)
            name = props.pop("QueueName", f"{self.config.stack_name}-{logical_id}")
            attributes = {k: (json.dumps(v) if isinstance(v, dict) else str(v))
                          for k, v in props.items() if k != "Tags"}
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
            self.queue_urls[logical_id] = url
            self.ctx.refs[logical_id] = url
            self.ctx.attrs[(logical_id, "Arn")] = arn
            self.ctx.attrs[(logical_id, "QueueName")] = name
            self.ctx.attrs[(logical_id, "QueueUrl")] = url
        self._provision_secrets()
        for logical_id, group in self.template.resources_of_type("AWS::Logs::LogGroup").items():
            name = resolve((group.get("Properties") or {}).get("LogGroupName"), self.ctx)
            self.ctx.attrs[(logical_id, "Arn")] = (
                f"arn:aws:logs:{self.config.region}:{ACCOUNT_ID}:log-group:{name}")
        # Log groups only matter once functions log: create them off the start-up path.
        self._log_groups = threading.Thread(target=self._provision_log_groups,
                                            name="log-groups", daemon=True)
        self._log_groups.start()
        for logical_id in self.template.functions:
            props = self.template.functions[logical_id].properties
            name = resolve(props.get("FunctionName"), self.ctx) or (
                f"{self.config.stack_name}-{logical_id}")
            self.function_names[logical_id] = str(name)
            self.ctx.refs[logical_id] = str(name)
            self.ctx.attrs[(logical_id, "Arn")] = (
                f"arn:aws:lambda:{self.config.region}:{ACCOUNT_ID}:function:{name}")

    def _provision_secrets(self) -> None:
        secrets_client = self.client("secretsmanager")
        for logical_id, resource in self.template.resources_of_type(
            "AWS::SecretsManager::Secret"
        ).items():
            props = resolve(resource.get("Properties") or {}, self.ctx)
            name = props.get("Name", f"{self.config.stack_name}/{logical_id}")
            try:
                arn = secrets_client.describe_secret(SecretId=name)["ARN"]
            except secrets_client.exceptions.ResourceNotFoundException:
                value = props.get("SecretString") or self._generated_secret(logical_id)
                arn = secrets_client.create_secret(Name=name, SecretString=value)["ARN"]
            self.ctx.refs[logical_id] = arn

    def _generated_secret(self, logical_id: str) -> str:
        """A generated secret's value (GenerateSecretString in AWS). The embedded endpoint
        forgets it at every stop, so it is kept under the data folder (0600): the JWT key
        must outlive a restart or a crash, or every sign-in ends with it. JWT_SECRET, when
        given, is the JWT key's value (it then reaches the functions only as the secret)."""
        if logical_id == "JwtSigningSecret" and self._plaintext("JWT_SECRET"):
            return self._plaintext("JWT_SECRET")
        path = self.config.data_dir / "generated-secrets.json"
        kept: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
        if logical_id not in kept:
            kept[logical_id] = secrets.token_urlsafe(48)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(json.dumps(kept))
        return kept[logical_id]

    def _provision_log_groups(self) -> None:
        logs = self.client("logs")
        for resource in self.template.resources_of_type("AWS::Logs::LogGroup").values():
            props = resolve(resource.get("Properties") or {}, self.ctx)
            name = props["LogGroupName"]
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=name)
            if props.get("RetentionInDays"):
                logs.put_retention_policy(logGroupName=name,
                                          retentionInDays=int(props["RetentionInDays"]))

    def _start_standins(self) -> None:
        """Offline Apify and OpenAI servers (and Keepa's, with PRODUCT_SOURCE=keepa), for
        each service whose key is not set."""
        if not self.config.standins:
            return
        wanted = [  # (name, key variable, module, class, URL variable, sandbox key)
            ("apify", "APIFY_TOKEN", "apify_server", "ApifyStandIn", "APIFY_API_URL",
             "sandbox-token"),
            ("openai", "OPENAI_API_KEY", "openai_server", "OpenAIStandIn", "OPENAI_BASE_URL",
             "sandbox-key"),
        ]
        if _product_source(self.config) == "keepa":  # the Keepa product source too
            wanted.append(("keepa", "KEEPA_API_KEY", "keepa_server", "KeepaStandIn",
                           "KEEPA_BASE_URL", "sandbox-key"))
        for name, key_var, module, cls, url_var, sandbox_key in wanted:
            if os.environ.get(key_var, sandbox_key) != sandbox_key:
                continue  # a real key: the real service
            server_class = getattr(importlib.import_module(f"pilot_dev.standins.{module}"), cls)
            server = server_class(port=0, **self._standin_options(name)).start()
            self.standins[name] = server
            self.config.extra_env.setdefault(url_var, server.url)
            self.config.extra_env.setdefault(key_var, sandbox_key)

    def _prepare_secrets_key(self) -> None:
        """The local key ring that seals secrets at rest (.pilot/secrets.key, 0600),
        made once and kept: losing it makes the stored webhook secrets unreadable."""
        from amazon_pilot.adapters.crypto import create_key_file

        configured = os.environ.get("SECRETS_KEY_FILE")
        path = Path(configured) if configured else self.config.data_dir / "secrets.key"
        if create_key_file(path):
            log.info("made a new key for secrets at rest: %s", path)
        if not configured:  # (a configured one is in the environment already)
            self.config.extra_env.setdefault("SECRETS_KEY_FILE", str(path))

    def _standin_options(self, name: str) -> dict[str, Any]:
        return {"recording": self._recording} if name == "apify" else {}

    @staticmethod
    def _load_recording() -> Any:
        """APIFY_REPLAY=FILE[,FILE...]: real dataset exports answer every actor run."""
        from pilot_dev.standins.replay import Recording, ReplayError

        try:
            return Recording.from_setting(os.environ.get("APIFY_REPLAY"))
        except ReplayError as exc:
            raise StackError(str(exc)) from None

    def _export_environment(self) -> None:
        """The stack-wide variables go into the process environment (every function
        shares this process); per-function extras are applied at each cold start."""
        stack_env = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_DEV": os.environ.get("POWERTOOLS_DEV", "false"),
            # One process here stands for every instance of every function, on many
            # threads: it keeps a larger pool than a Lambda instance's 1 + 1.
            "DATABASE_POOL_SIZE": "5",
            "DATABASE_MAX_OVERFLOW": "10",
            **self.config.extra_env,
        }
        global_keys = set(((self.template.raw.get("Globals") or {}).get("Function") or {})
                          .get("Environment", {}).get("Variables", {}))
        for logical_id, spec in self.template.functions.items():
            env = {k: str(v) for k, v in resolve(spec.environment, self.ctx).items()}
            if not self.config.secrets_only:
                env["DATABASE_URL"] = self.database_url
            env.update(stack_env)
            for key in self.hidden:
                env.pop(key, None)
            env["AWS_LAMBDA_FUNCTION_NAME"] = self.function_names[logical_id]
            self.environments[logical_id] = env
        first = next(iter(self.environments.values()), {})
        shared = {k: v for k, v in first.items() if k in global_keys or k in stack_env}
        shared["DATABASE_URL"] = self.database_url
        os.environ.update(shared)
        from amazon_pilot.adapters.aws import reset_clients
        from amazon_pilot.platform.db import dispose_engine
        from amazon_pilot.platform.settings import reset_settings

        reset_settings()
        reset_clients()
        dispose_engine()

    def _recover(self) -> None:
        """What a crash left behind, before any worker runs: with the embedded AWS endpoint
        (its queues die with this process) the outbox's sent jobs that no consumer finished
        are sent again; then the reconciler fails abandoned runs and re-queues stuck work
        (nothing of an earlier process can still be working). Then the relay thread."""
        from amazon_pilot.platform import outbox
        from amazon_pilot.platform.reconcile import reconcile

        if self.moto is not None:
            resent = outbox.requeue_unfinished()
            if resent:
                log.info("outbox: %d job(s) sent before a stop and never finished are queued"
                         " again", resent)
        summary = reconcile(after_crash=True)
        fixed = {k: v for k, v in summary.items() if k != "job" and v}
        if fixed:
            log.info("reconciled at start: %s", ", ".join(f"{k}={v}" for k, v in fixed.items()))
        self.relay = OutboxRelayThread().start()

    def _free_orphaned_claims(self) -> None:
        """Jobs this runtime's previous process was running when it died stay claimed
        until their lease (the function's timeout) runs out; this process is the only
        consumer of its database, so it frees them before its pollers start."""
        from amazon_pilot.platform.consumer import release_orphaned_claims

        freed = release_orphaned_claims()
        if freed:
            log.info("freed %d job claim(s) left by a stopped runtime", freed)

    def _start_functions(self) -> None:
        trim = moto_log_trimmer(self.config.region) if self.moto is not None else None
        self.shipper = CloudWatchShipper(self.client("logs"), self._log_writer(), trim).start()
        self.tap = MetricsTap(self.shipper, self.metrics,
                              api_id=str(self.ctx.refs.get("HttpApi", "")))
        if self.config.from_build is not None:
            from pilot_dev.runtime.process_invoker import ProcessFunctionHost

            self.host = ProcessFunctionHost(self.config.from_build, self.function_names,
                                            self.environments, self.template.functions,
                                            log_sink=self.tap)
        else:
            self.host = FunctionHost(self.function_names, self.environments,
                                     self.template.functions, log_sink=self.tap,
                                     hidden=self.hidden)
        # what the gateway, pollers and clock call: the host, its invocations measured
        self.invoker = MeteredHost(self.host, self.metrics, self.function_names)
        for logical_id in self.template.functions:
            spec = self.template.functions[logical_id]
            if self.config.from_build is None and not spec.handler_file.is_file():
                raise TemplateError(f"{logical_id}: handler file {spec.handler_file} is missing")
        self._run_custom_resources()
        self._mark("custom_resources", self._started)
        # What a crash left behind, once the schema is there and before any poller runs
        # (or the API takes new work)
        self._recover()
        self._free_orphaned_claims()

    def _start_consumers(self) -> None:
        """The queue consumers, the schedules and the alarms, once the schema is there."""
        assert self.invoker is not None
        workers = self.worker_count()
        if self.config.pollers and workers:
            self.worker_processes = self._start_worker_processes(workers)
        elif self.config.pollers:
            for mapping in self.template.queue_mappings:
                url = self.queue_urls[mapping.queue]
                poller = QueuePoller(
                    self.function_client(mapping.function, "sqs"), self.invoker, mapping, url,
                    self.ctx.attrs[(mapping.queue, "Arn")],
                    self.config.region, threads=max(1, mapping.max_concurrency // 2),
                    wait_s=self.config.poll_wait_s,
                )
                poller.start()
                self.pollers.append(poller)
        self.clock = ScheduleClock(self.invoker, self.template.schedules, self.config.region,
                                   self.config.stack_name, dead_letter=self._dead_letter)
        if self.config.schedules:
            self.clock.start()
        self._start_alarms()

    def _start_alarms(self) -> None:
        """The template's alarms, evaluated on the local metrics and mirrored into the
        endpoint's CloudWatch (describe_alarms answers as in AWS)."""
        definitions = alarm_definitions(self.template, self.ctx)
        sampler = QueueSampler(self.client("sqs"), self.queue_urls, self.metrics)
        self.alarms = LocalAlarms(definitions, self.metrics, self.client("cloudwatch"),
                                  composites=self.moto is None or _moto_has_composites())
        self.alarms.start(sampler)

    def worker_count(self) -> int:
        """Worker processes for the queue consumers: 0 runs them in this process (and
        always with --from-build, whose functions have processes of their own)."""
        if self.config.from_build is not None:
            return 0
        workers = self.config.workers
        return max(0, os.cpu_count() or 1) if workers is None else max(0, workers)

    def _start_worker_processes(self, count: int) -> Any:
        """`pilot run --workers N`: every queue's poller runs in each of N processes,
        sharing the mapping's concurrency (runtime/worker_processes.py)."""
        from pilot_dev.runtime.worker_processes import WorkerProcesses, WorkerQueue, WorkerSpec

        queues = [WorkerQueue(
            function=m.function, queue=m.queue, batch_size=m.batch_size,
            max_concurrency=m.max_concurrency, report_failures=m.report_failures,
            url=self.queue_urls[m.queue], arn=str(self.ctx.attrs[(m.queue, "Arn")]),
            threads=max(1, -(-max(1, m.max_concurrency // 2) // count)))
            for m in self.template.queue_mappings]
        consumers = {m.function for m in self.template.queue_mappings}
        spec = WorkerSpec(
            template=str(self.template.path), names=dict(self.function_names),
            environments={k: v for k, v in self.environments.items() if k in consumers},
            hidden=sorted(self.hidden), region=self.config.region,
            endpoint_url=str(self.endpoint_url), wait_s=self.config.poll_wait_s,
            queues=queues)
        return WorkerProcesses(spec, count, self.metrics, self._child_log_shipper).start()

    def _child_log_shipper(self) -> CloudWatchShipper:
        """Where a child process's log lines go: a stream of its own, written as this
        process writes its own (into the in-process store when the endpoint is here)."""
        return CloudWatchShipper(self.client("logs"), self._log_writer()).start()

    def _log_writer(self) -> Any:
        """Writes straight into the endpoint's log store when it runs in this process."""
        return moto_log_writer(self.config.region) if self.moto is not None else None

    def http_process_count(self) -> int:
        """Processes serving the API, this one included (1 with --from-build, whose
        functions have processes of their own)."""
        if self.config.from_build is not None:
            return 1
        count = self.config.http_processes
        return max(1, os.cpu_count() or 1) if count is None else max(1, count)

    def _start_http_processes(self) -> None:
        """`pilot run --http-processes N`: N-1 more processes on this server's port
        (runtime/http_processes.py). This one keeps serving while they load."""
        children = self.http_process_count() - 1
        if children < 1:
            return
        from pilot_dev.runtime.http_processes import HttpProcesses, HttpSpec

        assert self.server is not None
        # /_pilot/... for the children, on a port of this process's own (the child that
        # took the call writes its access line)
        gateway = self.gateway(access_log=False)
        self.control_server = HttpServer(gateway, host="127.0.0.1", port=0,
                                         max_body=MAX_PAYLOAD, too_large=gateway.too_large,
                                         on_thread_exit=release_thread_loop).start()
        api = {route.function for route in self.template.routes}
        access_format, access_group = self.access_settings or (None, None)
        spec = HttpSpec(
            template=str(self.template.path), names=dict(self.function_names),
            environments={k: v for k, v in self.environments.items() if k in api},
            hidden=sorted(self.hidden), region=self.config.region, host=self.config.host,
            port=self.server.port, operator_token=self.operator_token,
            control_url=f"http://127.0.0.1:{self.control_server.port}",
            access_format=access_format, access_group=access_group,
            api_id=str(self.ctx.refs.get("HttpApi", "")),
            echo_access_log=self.config.echo_access_log)
        self.http_processes = HttpProcesses(spec, children, self.metrics,
                                            self._child_log_shipper).start()

    def _run_custom_resources(self) -> None:
        """Each custom resource's function, invoked as CloudFormation invokes it on a
        first deploy, before anything takes traffic: the schema migrations run here,
        through the same function and protocol as in AWS, on every start."""
        import uuid

        from pilot_dev.runtime.custom_resources import (
            ResponseReceiver,
            create_event,
            custom_resources,
        )

        assert self.invoker is not None
        resources = custom_resources(self.template)
        if not resources:
            return
        with ResponseReceiver() as receiver:
            for resource in resources:
                request_id = str(uuid.uuid4())
                event = create_event(resource, self.ctx, receiver.url(request_id), request_id)
                try:
                    self.invoker.invoke(resource.function, event)
                except Exception as exc:
                    raise StackError(f"{resource.logical_id}: {resource.function} failed "
                                     f"before answering CloudFormation: {exc!r}") from exc
                answer = receiver.wait(request_id, timeout_s=5.0)
                if answer is None:
                    raise StackError(f"{resource.logical_id}: {resource.function} returned "
                                     "without answering the ResponseURL")
                if answer.get("Status") != "SUCCESS":
                    reason = " / ".join(str(answer.get("Reason")).split("\n"))  # one line
                    raise StackError(f"{resource.logical_id} FAILED on "
                                     f"{_redact(self.database_url)}: {reason}")
                log.info("%s: %s", resource.logical_id, answer.get("Reason"))

    def _dead_letter(self, schedule: Any, exc: Exception) -> None:
        """The record Lambda sends an asynchronous invocation's OnFailure destination."""
        from datetime import UTC, datetime

        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "functionArn": self.ctx.attrs.get((schedule.function, "Arn"), ""),
                "condition": "RetriesExhausted", "approximateInvokeCount": 1},
            "requestPayload": schedule.input,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                "functionError": "Unhandled"},
            "responsePayload": {"errorType": type(exc).__name__, "errorMessage": str(exc)},
        }
        self.client("sqs").send_message(QueueUrl=self.queue_urls[schedule.dead_letter_queue],
                                         MessageBody=json.dumps(record))

    # ------------------------------------------------------------ production configuration

    def _provision_configuration_secrets(self) -> None:
        """Settings only from secrets by ARN: the database URL, the Apify token, the Keepa
        key and the OpenAI key go into Secrets Manager and the functions get the parameters'
        ARNs, as an operator deploys them; none of the values is in a function's
        environment. (The JWT key is a secret the template itself declares.)"""
        if not self.config.secrets_only:
            return
        plaintext = {
            "DatabaseSecretArn": ("database", json.dumps({"url": self.database_url})),
            "ApifyTokenSecretArn": ("apify-token", self._plaintext("APIFY_TOKEN")),
            "OpenAISecretArn": ("openai-api-key", self._plaintext("OPENAI_API_KEY")),
            "KeepaApiKeySecretArn": ("keepa-api-key", self._plaintext("KEEPA_API_KEY")),
        }
        declared = self.template.raw.get("Parameters") or {}
        client = self.client("secretsmanager")
        for parameter, (suffix, value) in plaintext.items():
            if parameter not in declared or self.config.parameters.get(parameter) or not value:
                continue  # not in the template, given by the operator, or nothing to keep
            name = f"{self.config.stack_name}/config/{suffix}"
            try:
                arn = client.describe_secret(SecretId=name)["ARN"]
                client.put_secret_value(SecretId=name, SecretString=value)
            except client.exceptions.ResourceNotFoundException:
                arn = client.create_secret(Name=name, SecretString=value)["ARN"]
            self.ctx.parameters[parameter] = arn
        self.hidden = PLAINTEXT_SETTINGS  # and the credentials, once each has its role's
        self.ctx.conditions = evaluate_conditions(self.template.raw, self.ctx)

    def _plaintext(self, name: str) -> str:
        return self.config.extra_env.get(name) or os.environ.get(name) or ""

    def _provision_iam(self) -> None:
        """Each function as its own role, built from the template's policies, with the
        embedded endpoint enforcing IAM (runtime/iam.py)."""
        if not self.config.enforce_iam:
            return
        if not self.config.secrets_only:
            # the roles name the secrets' ARNs: without the secrets there is nothing to grant
            log.warning("IAM is not enforced: the settings are plaintext (secrets_only off)")
            return
        if self.moto is None:
            log.warning("IAM is not enforced: %s is not the embedded moto endpoint; the "
                        "functions run with the process's credentials", self.endpoint_url)
            return
        from pilot_dev.runtime.iam import (
            LocalIam,
            expand_template,
            function_roles,
            resolved_policies,
            teach_moto_resources,
        )

        teach_moto_resources()
        local = LocalIam(self.client, self.endpoint_url, self.config.stack_name)
        expanded = expand_template(self.template, self.ctx.parameters, self.config.region)
        for logical_id, role in function_roles(self.template, expanded).items():
            creds = local.create_role(logical_id, resolved_policies(role, self.ctx),
                                      role.managed_arns)
            self.environments[logical_id].update(creds.environment())
        operator = local.create_operator()
        self._log_groups.join()  # created with the setup credentials, before enforcement
        os.environ.pop("AWS_SESSION_TOKEN", None)
        self.operator_env = operator.environment()
        os.environ.update(self.operator_env)
        self.hidden = self.hidden | CREDENTIALS
        from amazon_pilot.adapters.aws import reset_clients
        from amazon_pilot.platform.settings import reset_settings

        reset_settings()
        reset_clients()
        local.enforce()
        self.iam = local

    # ------------------------------------------------------------ HTTP

    def gateway(self, *, access_log: bool = True) -> Gateway:
        assert self.invoker is not None
        return Gateway(self.invoker, RouteTable(self.template.routes), control=self.control,
                       control_token=self.operator_token,
                       access_log=self._access_log() if access_log else None)

    def _access_log(self) -> AccessLog | None:
        """The HttpApi's AccessLogSettings: where API Gateway would write its access log."""
        for api in self.template.resources_of_type("AWS::Serverless::HttpApi").values():
            settings = (api.get("Properties") or {}).get("AccessLogSettings")
            if settings:
                settings = resolve(settings, self.ctx)
                group = str(settings["DestinationArn"]).split(":log-group:", 1)[-1]
                self.access_log_group = group
                self.access_settings = (str(settings["Format"]), group)
                if self.tap is not None:
                    self.tap.access_group = group
                return AccessLog(str(settings["Format"]), group, self.tap or self.shipper,
                                 echo=sys.stdout if self.config.echo_access_log else None,
                                 measure=self.tap.access if self.tap is not None else None)
        return None

    def _serve_in_thread(self) -> None:
        gateway = self.gateway()
        self.server = HttpServer(gateway, host=self.config.host, port=self.config.port,
                                 max_body=MAX_PAYLOAD, too_large=gateway.too_large,
                                 on_thread_exit=release_thread_loop,
                                 reuse_port=self.http_process_count() > 1)
        try:
            self.server.start()
        except OSError as exc:
            self.server = None
            raise StackError(f"the HTTP server could not listen on {self.config.host}:"
                             f"{self.config.port} ({exc.strerror}); choose another port with "
                             "`pilot run --port N`") from exc
        self.config.port = self.server.port

    def warm(self) -> None:
        """Load every function once (their cold starts) so first requests are fast."""
        assert self.host is not None
        for logical_id in self.template.functions:
            try:
                self.host.load(logical_id)
            except Exception as exc:
                log.error("%s failed to load: %r", logical_id, exc)

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    @property
    def operator_headers(self) -> dict[str, str]:
        """What a local operator (the CLI, a test) sends to reach /_pilot/..."""
        return {"X-Pilot-Operator-Token": self.operator_token}

    def write_operator_token(self, path: Path) -> None:
        """The token for other local processes (`pilot fire`), readable by this user only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # an older file keeps its mode otherwise
            os.write(fd, self.operator_token.encode())
        finally:
            os.close(fd)

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """/_pilot/...: the runtime's own surface (status, firing schedules on demand)."""
        parts = path.strip("/").split("/")
        if method == "GET" and parts == ["_pilot", "status"]:
            return 200, self.describe()
        if parts == ["_pilot", "alarms"] and method in ("GET", "POST"):
            if self.alarms is None:
                return 200, {"alarms": []}
            if method == "POST":  # evaluate now (sample the queues first)
                self.alarms.evaluate_now()
            return 200, {"alarms": self.alarms.evaluator.snapshot()}
        if method == "POST" and len(parts) == 4 and parts[1] == "schedules" and parts[3] == "fire":
            if self.clock is None:  # the API answers while the consumers are starting
                return 503, {"error": {"code": "STARTING", "message":
                                       "the schedules are not started yet; try again"}}
            try:
                return 200, {"fired": parts[2], "result": self.clock.fire(parts[2])}
            except KeyError as exc:
                return 404, {"error": {"code": "NOT_FOUND", "message": str(exc.args[0])}}
        return 404, {"error": {"code": "NOT_FOUND", "message": f"no runtime route {path}"}}

    def describe(self) -> dict[str, Any]:
        return {
            "api": self.url,
            "database": _redact(self.database_url),
            "aws_endpoint": self.endpoint_url,
            "iam": "enforced: each function as its own role" if self.iam is not None
            else "not enforced",
            "settings": "secrets by ARN" if self.config.secrets_only else "plaintext",
            "stack": self.config.stack_name,
            "functions": self.function_names,
            "queues": {k: v for k, v in self.queue_urls.items()},
            "schedules": {
                name: at.isoformat() for name, at in (self.clock.next_times() if self.clock
                                                      else {}).items()
            },
            "standins": {name: s.url for name, s in self.standins.items()},
            "alarms": len(self.alarms.evaluator.definitions) if self.alarms else 0,
            "startup_s": self.timings,
            "worker_processes": (self.worker_processes.pids if self.worker_processes
                                 is not None else []),
            # the processes serving the API besides this one, and which of them listen
            "http_processes": ([{"pid": pid, "serving": pid in self.http_processes.ready}
                                for pid in self.http_processes.pids]
                               if self.http_processes is not None else []),
        }

    # ------------------------------------------------------------ stop

    def _stop_processes(self) -> None:
        """The HTTP processes, the workers and the servers, each finishing what it holds."""
        if self.http_processes is not None:
            self.http_processes.stop()
            self.http_processes = None
        if self.worker_processes is not None:
            self.worker_processes.stop()
            self.worker_processes = None
        if self.server is not None:
            self.server.stop()
        if self.control_server is not None:
            self.control_server.stop()
            self.control_server = None

    def stop(self) -> None:
        """Stop taking work, finish what is in hand, then close everything."""
        if self.alarms is not None:
            self.alarms.stop()
        if self.relay is not None:
            self.relay.stop()
        for poller in self.pollers:
            poller.stop()
        if self.clock is not None:
            self.clock.stop()
        for poller in self.pollers:
            poller.join(timeout=60)
        self._stop_processes()
        stop_host = getattr(self.host, "stop", None)  # the from-build host's processes
        if stop_host is not None:
            stop_host()
        if self.shipper is not None:
            self.shipper.stop()  # ships what is pending first
        for standin in self.standins.values():
            try:
                standin.stop()
            except Exception as exc:
                log.warning("stand-in did not stop cleanly: %r", exc)
        from amazon_pilot.platform.db import dispose_engine

        dispose_engine()
        if self.iam is not None:
            with contextlib.suppress(Exception):
                self.iam.enforce(False)  # moto's switch is process-wide
            self.iam = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None


def _preimport() -> None:
    import contextlib

    with contextlib.suppress(Exception):
        import boto3  # noqa: F401
        import fastapi  # noqa: F401
        import mangum  # noqa: F401
        import moto.server  # noqa: F401
        import sqlalchemy  # noqa: F401
        from aws_lambda_powertools import Logger  # noqa: F401
        from samtranslator.translator.translator import Translator  # noqa: F401 (the roles)

        from pilot_dev.runtime.iam import published_managed_policies

        published_managed_policies()  # several MB of JSON, read once for the roles


def _database_of(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path.lstrip("/")


def _moto_has_composites() -> bool:
    """Whether the embedded endpoint implements PutCompositeAlarm (moto 5.2 does not)."""
    from moto.cloudwatch.responses import CloudWatchResponse

    return hasattr(CloudWatchResponse, "put_composite_alarm")

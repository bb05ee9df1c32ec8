"""The one settings object: every environment variable the shipped code reads, read
and validated in one place at cold start.

A malformed value stops the function at cold start with an error naming the variable
(a typo in a limit must be seen at deploy time, not turn into a default nobody chose).
Kept as a plain frozen dataclass (no pydantic-settings) so that importing it costs
nothing measurable; every value has a default that works for `pilot run`.

Where the variables come from: in Lambda, the process environment (template.yaml's
Globals and the function's own Environment). The local runtime runs every function in
one process, so it gives each invocation its function's own view with
`environment_view()`; code here never needs to know which of the two it is in.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from amazon_pilot.domain.plans import OVERRIDABLE_LIMITS, PLANS, Plan, plan_with_overrides

PRIORITIES = ("critical", "default", "low")
PRODUCT_SOURCES = ("apify", "keepa")
DEVELOPMENT_STAGES = frozenset({"local", "dev", "test"})


class SettingsError(RuntimeError):
    """A variable has a value the service cannot use (raised at cold start)."""


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    # The credentials in the environment (Lambda puts the function role's there). Kept
    # so clients and cached secrets belong to one identity: the local runtime runs every
    # function, each with its own role, in one process.
    aws_credentials: tuple[str, str, str | None] | None = field(default=None, repr=False)
    database_url: str | None = None
    database_secret_arn: str | None = None
    # TLS to Postgres (platform/dbtls.py): empty = required outside local runs,
    # verify-full against the RDS CA bundle for RDS hosts
    database_sslmode: str | None = None
    database_sslrootcert: str | None = None
    database_proxy_host: str | None = None  # an RDS Proxy endpoint replacing the URL's host
    # connections each process keeps (Lambda: 1 busy at a time; local: many threads)
    database_pool_size: int = 5
    database_max_overflow: int = 10
    # database timeouts (platform/db.py, docs/slos.md): the defaults suit jobs and local
    # tools; template.yaml gives the API functions shorter ones (an answer within seconds)
    db_connect_timeout_s: int = 3
    db_statement_timeout_ms: int = 30_000  # 0: no statement timeout (and no reply deadline)
    db_lock_timeout_ms: int = 10_000  # 0: wait for locks as long as the statement may
    # queues: the three priorities' URLs and DLQ URLs; which one this consumer drains
    queue_urls: dict[str, str] = field(default_factory=dict)
    dlq_urls: dict[str, str] = field(default_factory=dict)
    queue_priority: str = "default"
    # the operator console (operations/): the stack's name (its alarms and functions are
    # named "<stack>-...") and the HTTP API's id (its CloudWatch metrics)
    stack_name: str | None = None
    api_id: str | None = None
    retry_base_s: int = 30
    job_lease_s: int = 900  # a job's claim when the invocation's own deadline is unknown
    fetch_retries: int = 2  # re-fetches of a product whose item was unusable (robot check)
    # Apify
    apify_token: str | None = None
    apify_token_secret_arn: str | None = None
    apify_api_url: str | None = None
    apify_actor_id: str = "axesso_data/amazon-product-details-scraper"
    apify_batch_size: int = 200  # URLs per actor run: docs/architecture.md, "Daily refresh"
    # USD per result the actor returns (pay per result: $1.25 per 1,000); prices the
    # sellers' fetch budgets and `pilot cost` (devtools/pilot_dev/cost.py names the source)
    apify_price_per_result: float = 1.25 / 1000
    apify_max_retries: int = 4
    apify_retry_delay_ms: int = 500
    # the search actor of keyword rank tracking (docs/keywords.md)
    apify_search_actor_id: str = "automly/amazon-search-scraper"
    # where product data comes from: "apify" (actor runs) or "keepa" (Keepa's API,
    # priced by token capacity; adapters/keepa.py)
    product_source: str = "apify"
    keepa_api_key: str | None = None
    keepa_api_key_secret_arn: str | None = None
    keepa_base_url: str | None = None  # None: Keepa's own API
    keepa_max_wait_s: int = 120  # token refills a fetch may wait for before it is retried
    # OpenAI
    openai_api_key: str | None = None
    openai_secret_arn: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = 20.0
    openai_max_retries: int = 1
    # API edge
    jwt_secret_name: str = "amazon-pilot/jwt-signing-key"
    jwt_secret: str | None = None
    jwt_secret_arn: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    # Set when the stack runs behind CloudFront (EnableEdge): the value CloudFront adds
    # as X-Origin-Verify; requests without it bypassed the WAF and are refused.
    edge_origin_token: str | None = None
    login_max_failures: int = 5
    login_failure_window_s: int = 900
    register_per_ip: int = 5  # sign-ups per caller address per register window
    register_window_s: int = 3600
    rate_limit_window_s: int = 60
    rate_limit_ip: int = 60
    # authenticated traffic from one address, all its accounts together (at least the
    # caller's own plan limit): five free accounts cannot add up to five allowances
    rate_limit_ip_authenticated: int = 120
    # development only: webhook hosts ("127.0.0.1", "127.0.0.1:8080") that may be
    # loopback/private and plain http; empty (nothing allowed) unless an operator sets it
    webhook_allow_hosts: tuple[str, ...] = ()
    # secrets at rest: a KMS key (AWS) or a local key file (pilot run); see crypto.py
    secrets_kms_key_id: str | None = None
    secrets_key_file: str | None = None
    # plan limits after the *_<PLAN> overrides (domain.plans holds the table)
    plans: dict[str, Plan] = field(default_factory=lambda: dict(PLANS))
    notify_from_email: str | None = None
    migrations_dir: str | None = None
    # the synthetic check (platform/probe.py): the public URL it signs in through, and
    # the secret holding the probe user's {"email", "password"}; unset = not configured
    probe_api_url: str | None = None
    probe_secret_arn: str | None = None
    # Short links (a.co, amzn.to): resolved by following their redirects (SHORT_LINKS
    # on|off; unset: on unless the Apify stand-in serves data, i.e. an offline stack).
    # SHORT_LINK_VIA (development only): "a.co=127.0.0.1:8123,…" sends a shortener's
    # requests to a local stand-in instead of the host's public address.
    short_links: bool | None = None
    short_link_via: dict[str, str] = field(default_factory=dict)

    @property
    def sandbox_apify(self) -> bool:
        return not self.apify_token or self.apify_token.startswith("sandbox")

    @property
    def sandbox_openai(self) -> bool:
        return not self.openai_api_key or self.openai_api_key.startswith("sandbox")

    @property
    def resolve_short_links(self) -> bool:
        return self.short_links if self.short_links is not None else not self.sandbox_apify

    def plan(self, name: str) -> Plan:
        """The limits of a plan (an unknown name gets the free plan's: never more)."""
        return self.plans.get(name) or self.plans["free"]


class _Reader:
    """Reads typed values from one environment mapping; every error names its variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str | None = None) -> str | None:
        raw = self.env.get(name)
        return raw if raw else default

    def integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if value <= 0:
            raise SettingsError(f"{name} must be positive, got {value}")
        return value


def _plans(read: _Reader) -> dict[str, Plan]:
    overrides: dict[str, dict[str, int]] = {}
    for plan_name, plan in PLANS.items():
        for env_prefix, attribute in OVERRIDABLE_LIMITS.items():
            name = f"{env_prefix}_{plan_name.upper()}"
            if read.env.get(name):
                overrides.setdefault(plan_name, {})[attribute] = read.integer(
                    name, getattr(plan, attribute))
    return {name: plan_with_overrides(plan, overrides.get(name, {}))
            for name, plan in PLANS.items()}


def _credentials(read: _Reader) -> tuple[str, str, str | None] | None:
    key_id, secret = read.text("AWS_ACCESS_KEY_ID"), read.text("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        return None  # boto3's own chain (instance roles, profiles) decides
    return key_id, secret, read.text("AWS_SESSION_TOKEN")


def credential_scope() -> str:
    """Who the AWS calls of this environment are made as (the access key id; "" when
    boto3's default chain decides): what per-identity caches are keyed on."""
    creds = settings().aws_credentials
    return creds[0] if creds else ""


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    read = _Reader(os.environ if env is None else env)
    defaults = Settings()
    priority = read.text("QUEUE_PRIORITY", defaults.queue_priority) or defaults.queue_priority
    if priority not in PRIORITIES:
        raise SettingsError(f"QUEUE_PRIORITY must be one of {', '.join(PRIORITIES)}, "
                            f"got {priority!r}")
    stage = read.text("STAGE", "local") or "local"
    if read.text("WEBHOOK_ALLOW_HOSTS") and stage not in DEVELOPMENT_STAGES:
        raise SettingsError(f"WEBHOOK_ALLOW_HOSTS is for development only; the {stage!r} stage "
                            "must not allow webhooks to reach internal hosts (unset it)")
    if read.text("SHORT_LINK_VIA") and stage not in DEVELOPMENT_STAGES:
        raise SettingsError(f"SHORT_LINK_VIA is for development only; the {stage!r} stage "
                            "must resolve short links at their public addresses (unset it)")
    source = (read.text("PRODUCT_SOURCE") or defaults.product_source).strip().lower()
    if source not in PRODUCT_SOURCES:
        raise SettingsError(f"PRODUCT_SOURCE must be one of {', '.join(PRODUCT_SOURCES)}, "
                            f"got {source!r}")
    short_links = (read.text("SHORT_LINKS") or "").strip().lower()
    if short_links not in ("", "on", "off"):
        raise SettingsError(f"SHORT_LINKS must be on or off, got {short_links!r}")
    return Settings(
        stage=stage,
        short_links=None if not short_links else short_links == "on",
        short_link_via=dict(
            (k.strip().lower(), v.strip()) for k, _, v in
            (entry.partition("=") for entry in (read.text("SHORT_LINK_VIA") or "").split(","))
            if k.strip() and v.strip()),
        region=read.text("AWS_REGION") or read.text("AWS_DEFAULT_REGION") or "us-east-1",
        aws_endpoint_url=read.text("AWS_ENDPOINT_URL"),
        aws_credentials=_credentials(read),
        database_url=read.text("DATABASE_URL"),
        database_secret_arn=read.text("DATABASE_SECRET_ARN"),
        edge_origin_token=read.text("EDGE_ORIGIN_TOKEN"),
        queue_urls={p: u for p in PRIORITIES if (u := read.text(f"QUEUE_URL_{p.upper()}"))},
        dlq_urls={p: u for p in PRIORITIES if (u := read.text(f"DLQ_URL_{p.upper()}"))},
        queue_priority=priority,
        stack_name=read.text("STACK_NAME"),
        api_id=read.text("API_ID"),
        retry_base_s=read.integer("RETRY_BASE_SECONDS", defaults.retry_base_s, minimum=0),
        job_lease_s=read.integer("JOB_LEASE_SECONDS", defaults.job_lease_s),
        fetch_retries=read.integer("FETCH_RETRIES", defaults.fetch_retries, minimum=0),
        # libpq needs at least 2 s: a smaller connect_timeout is raised to 2 by libpq itself
        db_connect_timeout_s=read.integer("DB_CONNECT_TIMEOUT_SECONDS",
                                          defaults.db_connect_timeout_s, minimum=2),
        db_statement_timeout_ms=read.integer("DB_STATEMENT_TIMEOUT_MS",
                                             defaults.db_statement_timeout_ms, minimum=0),
        db_lock_timeout_ms=read.integer("DB_LOCK_TIMEOUT_MS", defaults.db_lock_timeout_ms,
                                        minimum=0),
        apify_token=read.text("APIFY_TOKEN"),
        apify_token_secret_arn=read.text("APIFY_TOKEN_SECRET_ARN"),
        apify_api_url=read.text("APIFY_API_URL"),
        apify_actor_id=read.text("APIFY_ACTOR_ID") or defaults.apify_actor_id,
        apify_batch_size=read.integer("APIFY_BATCH_SIZE", defaults.apify_batch_size),
        apify_price_per_result=read.number("APIFY_PRICE_PER_RESULT",
                                           defaults.apify_price_per_result),
        apify_search_actor_id=(read.text("APIFY_SEARCH_ACTOR_ID")
                               or defaults.apify_search_actor_id),
        apify_max_retries=read.integer("APIFY_MAX_RETRIES", defaults.apify_max_retries,
                                       minimum=0),
        apify_retry_delay_ms=read.integer("APIFY_RETRY_DELAY_MS",
                                          defaults.apify_retry_delay_ms, minimum=0),
        product_source=source,
        keepa_api_key=read.text("KEEPA_API_KEY"),
        keepa_api_key_secret_arn=read.text("KEEPA_API_KEY_SECRET_ARN"),
        keepa_base_url=read.text("KEEPA_BASE_URL"),
        keepa_max_wait_s=read.integer("KEEPA_MAX_WAIT_SECONDS", defaults.keepa_max_wait_s,
                                      minimum=0),
        openai_api_key=read.text("OPENAI_API_KEY"),
        openai_secret_arn=read.text("OPENAI_SECRET_ARN"),
        openai_base_url=read.text("OPENAI_BASE_URL"),
        openai_model=read.text("OPENAI_MODEL") or defaults.openai_model,
        openai_timeout_s=read.number("OPENAI_TIMEOUT_S", defaults.openai_timeout_s),
        openai_max_retries=read.integer("OPENAI_MAX_RETRIES", defaults.openai_max_retries,
                                        minimum=0),
        jwt_secret_name=read.text("JWT_SECRET_NAME") or defaults.jwt_secret_name,
        jwt_secret=read.text("JWT_SECRET"),
        jwt_secret_arn=read.text("JWT_SECRET_ARN"),
        cors_origins=tuple(o.strip() for o in (read.text("CORS_ORIGINS") or "").split(",")
                           if o.strip()),
        max_body_bytes=read.integer("MAX_BODY_BYTES", defaults.max_body_bytes),
        login_max_failures=read.integer("LOGIN_MAX_FAILURES", defaults.login_max_failures),
        login_failure_window_s=read.integer("LOGIN_FAILURE_WINDOW_SECONDS",
                                            defaults.login_failure_window_s),
        register_per_ip=read.integer("REGISTER_PER_IP", defaults.register_per_ip),
        register_window_s=read.integer("REGISTER_WINDOW_SECONDS", defaults.register_window_s),
        rate_limit_window_s=read.integer("RATE_LIMIT_WINDOW_SECONDS",
                                         defaults.rate_limit_window_s),
        rate_limit_ip=read.integer("RATE_LIMIT_IP", defaults.rate_limit_ip),
        rate_limit_ip_authenticated=read.integer("RATE_LIMIT_IP_AUTHENTICATED",
                                                 defaults.rate_limit_ip_authenticated),
        webhook_allow_hosts=tuple(h.strip().lower() for h in
                                  (read.text("WEBHOOK_ALLOW_HOSTS") or "").split(",")
                                  if h.strip()),
        secrets_kms_key_id=read.text("SECRETS_KMS_KEY_ID"),
        secrets_key_file=read.text("SECRETS_KEY_FILE"),
        plans=_plans(read),
        notify_from_email=read.text("NOTIFY_FROM_EMAIL"),
        migrations_dir=read.text("PILOT_MIGRATIONS_DIR"),
        probe_api_url=read.text("PROBE_API_URL"),
        probe_secret_arn=read.text("PROBE_SECRET_ARN"),
        database_sslmode=read.text("DATABASE_SSLMODE"),
        database_sslrootcert=read.text("DATABASE_SSLROOTCERT"),
        database_proxy_host=read.text("DATABASE_PROXY_HOST"),
        database_pool_size=read.integer("DATABASE_POOL_SIZE", defaults.database_pool_size),
        database_max_overflow=read.integer("DATABASE_MAX_OVERFLOW",
                                           defaults.database_max_overflow, minimum=0),
    )


# ---------------------------------------------------------------- environment views

_view: ContextVar[Mapping[str, str] | None] = ContextVar("environment_view", default=None)
_cache: dict[int, tuple[Mapping[str, str] | None, Settings]] = {}
_cache_lock = threading.Lock()


@contextmanager
def environment_view(env: Mapping[str, str]) -> Iterator[None]:
    """Run a block with `env` as the environment settings() reads (the local runtime's
    per-function view; Lambda never needs one)."""
    token = _view.set(env)
    try:
        yield
    finally:
        _view.reset(token)


def settings() -> Settings:
    """The settings of the environment in effect, loaded once per environment."""
    view = _view.get()
    cached = _cache.get(id(view))
    if cached is not None and cached[0] is view:
        return cached[1]
    with _cache_lock:
        loaded = load_settings(view)
        _cache[id(view)] = (view, loaded)
    return loaded


def reset_settings() -> None:
    """Forget the loaded settings (the local runtime and tests change the environment)."""
    with _cache_lock:
        _cache.clear()


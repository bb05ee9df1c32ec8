"""Settings read once from the environment, at cold start.

Kept as a plain frozen dataclass (no pydantic-settings) so that importing it costs
nothing measurable; every value has a default that works for `pilot run`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def env_int(name: str, default: int) -> int:
    """An integer knob read at call time; missing or not a number gives the default
    (a typo in a limit must not take the API down). Callers apply their own bounds."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    database_url: str | None = None
    database_secret_arn: str | None = None
    queue_urls: dict[str, str] = field(default_factory=dict)
    apify_token: str | None = None
    apify_api_url: str | None = None
    apify_actor_id: str = "axesso_data/amazon-product-details-scraper"
    apify_batch_size: int = 50
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    jwt_secret_name: str = "amazon-pilot/jwt-signing-key"
    jwt_secret: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576

    @property
    def sandbox_apify(self) -> bool:
        return not self.apify_token or self.apify_token.startswith("sandbox")

    @property
    def sandbox_openai(self) -> bool:
        return not self.openai_api_key or self.openai_api_key.startswith("sandbox")


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    queue_urls = {
        priority: env[f"QUEUE_URL_{priority.upper()}"]
        for priority in ("critical", "default", "low")
        if env.get(f"QUEUE_URL_{priority.upper()}")
    }
    cors = tuple(o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip())
    return Settings(
        stage=env.get("STAGE", "local"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        database_url=env.get("DATABASE_URL") or None,
        database_secret_arn=env.get("DATABASE_SECRET_ARN") or None,
        queue_urls=queue_urls,
        apify_token=env.get("APIFY_TOKEN") or None,
        apify_api_url=env.get("APIFY_API_URL") or None,
        apify_actor_id=env.get("APIFY_ACTOR_ID") or Settings.apify_actor_id,
        apify_batch_size=_int("APIFY_BATCH_SIZE", 50),
        openai_api_key=env.get("OPENAI_API_KEY") or None,
        openai_base_url=env.get("OPENAI_BASE_URL") or None,
        openai_model=env.get("OPENAI_MODEL") or Settings.openai_model,
        jwt_secret_name=env.get("JWT_SECRET_NAME") or Settings.jwt_secret_name,
        jwt_secret=env.get("JWT_SECRET") or None,
        cors_origins=cors,
        max_body_bytes=_int("MAX_BODY_BYTES", 1_048_576),
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (the local runtime and tests change the environment)."""
    settings.cache_clear()

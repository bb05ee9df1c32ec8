"""One settings object, validated at cold start, read through the function's own view."""

from __future__ import annotations

import threading

import pytest
from fastapi import APIRouter

from amazon_pilot.platform.handler import make_api_handler
from amazon_pilot.platform.settings import (
    SettingsError,
    environment_view,
    load_settings,
    reset_settings,
    settings,
)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("MAX_BODY_BYTES", "1MB", "MAX_BODY_BYTES must be an integer, got '1MB'"),
    ("RATE_LIMIT_IP", "0", "RATE_LIMIT_IP must be at least 1"),
    ("OPENAI_TIMEOUT_S", "soon", "OPENAI_TIMEOUT_S must be a number"),
    ("QUEUE_PRIORITY", "urgent", "QUEUE_PRIORITY must be one of critical, default, low"),
    ("APIFY_MAX_RETRIES", "-1", "APIFY_MAX_RETRIES must be at least 0"),
])
def test_a_malformed_variable_is_an_error_naming_it(name: str, value: str,
                                                    message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({name: value})


def test_defaults_work_with_an_empty_environment() -> None:
    cfg = load_settings({})
    assert cfg.stage == "local" and cfg.queue_urls == {} and cfg.sandbox_apify
    assert (cfg.login_max_failures, cfg.rate_limit_window_s, cfg.max_body_bytes) == (
        5, 60, 1_048_576)


def test_the_webhook_allow_list_is_for_development_stages_only() -> None:
    cfg = load_settings({"WEBHOOK_ALLOW_HOSTS": " 127.0.0.1:8787 , Sink.Test ,"})
    assert cfg.webhook_allow_hosts == ("127.0.0.1:8787", "sink.test")
    assert load_settings({}).webhook_allow_hosts == ()
    for stage in ("prod", "staging"):
        with pytest.raises(SettingsError, match="WEBHOOK_ALLOW_HOSTS is for development"):
            load_settings({"STAGE": stage, "WEBHOOK_ALLOW_HOSTS": "127.0.0.1"})
    assert load_settings({"STAGE": "prod"}).rate_limit_ip_authenticated == 120


def test_each_function_reads_its_own_view() -> None:
    """Two functions in one process (the local runtime) see their own variables."""
    critical = {"QUEUE_PRIORITY": "critical", "RETRY_BASE_SECONDS": "5"}
    low = {"QUEUE_PRIORITY": "low"}
    seen: dict[str, tuple[str, int]] = {}

    def run(name: str, env: dict[str, str]) -> None:
        with environment_view(env):
            seen[name] = (settings().queue_priority, settings().retry_base_s)

    threads = [threading.Thread(target=run, args=("critical", critical)),
               threading.Thread(target=run, args=("low", low))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"critical": ("critical", 5), "low": ("low", 30)}
    reset_settings()


def test_an_api_function_refuses_a_malformed_variable_at_cold_start() -> None:
    with environment_view({"MAX_BODY_BYTES": "lots"}), pytest.raises(
            SettingsError, match="MAX_BODY_BYTES"):
        make_api_handler("probe", [APIRouter()])
    reset_settings()

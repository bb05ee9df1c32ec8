"""boto3 clients pointed at the configured endpoint (AWS, moto or LocalStack)."""

from __future__ import annotations

import threading
from typing import Any

from amazon_pilot.platform.settings import settings

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str, *, quick: bool = False) -> Any:
    """A cached client per service; boto3 clients are safe to share between threads.
    `quick`: one attempt and short timeouts, for best-effort calls inside a request."""
    name = f"{service}:quick" if quick else service
    cached = _clients.get(name)
    if cached is None:
        with _lock:
            cached = _clients.get(name)
            if cached is None:
                # boto3 loads with the first client, not at import: an API function's cold
                # start (which may never call AWS) does not pay its ~100 ms
                import boto3
                from botocore.config import Config

                cfg = settings()
                cached = boto3.session.Session().client(
                    service,
                    region_name=cfg.region,
                    endpoint_url=cfg.aws_endpoint_url,
                    config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                                  connect_timeout=2, read_timeout=2) if quick else
                    Config(retries={"max_attempts": 3, "mode": "standard"},
                           connect_timeout=3, read_timeout=25),
                )
                _clients[name] = cached
    return cached


def reset_clients() -> None:
    with _lock:
        _clients.clear()

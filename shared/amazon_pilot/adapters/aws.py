"""boto3 clients pointed at the configured endpoint (AWS, moto or LocalStack)."""

from __future__ import annotations

import threading
from typing import Any

from amazon_pilot.platform.settings import settings

# (service, access key id) -> client. In Lambda there is one identity per process; the
# local runtime runs every function, each with its role's credentials, in one process,
# so a client must never serve another identity's calls.
_clients: dict[tuple[str, str, str, str], Any] = {}
_lock = threading.Lock()


# A boto3 SQS client handed in by the caller (the function's own, or the CLI's with the
# operator's credentials). Only a name: devtools/pilot_dev/grants.py counts the calls made
# on a parameter annotated with it as SQS calls of whatever function reaches them.
SqsClient = Any


def client(service: str, *, quick: bool = False) -> Any:
    """A cached client per service and identity; boto3 clients are safe to share between
    threads. `quick`: one attempt and short timeouts, for best-effort calls inside a
    request."""
    cfg = settings()
    creds = cfg.aws_credentials
    # the endpoint and region belong to the key: environment views (the local runtime,
    # tests) may point the same identity at another endpoint
    key = (f"{service}:quick" if quick else service, creds[0] if creds else "",
           cfg.aws_endpoint_url or "", cfg.region)
    cached = _clients.get(key)
    if cached is None:
        with _lock:
            cached = _clients.get(key)
            if cached is None:
                cached = _new_client(service, creds, cfg.aws_endpoint_url, cfg.region, quick)
                _clients[key] = cached
    return cached


# One boto3 session a process, each client given its identity's credentials: a session
# of its own per client loaded botocore's endpoint table and the service's model again
# (≈ 7 MB of Python objects and tens of ms of JSON each time: a local worker held four
# copies). A session is not thread-safe: clients are made from it under _session_lock.
_session: Any = None
_session_lock = threading.Lock()


def session_client(service: str, **kwargs: Any) -> Any:
    """A client made from the process's one session (boto3's Session.client arguments:
    region, endpoint, credentials, config). The local runtime makes its own with it too."""
    global _session
    # boto3 loads with the first client, not at import: an API function's cold start
    # (which may never call AWS) does not pay its ~100 ms
    import boto3

    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(service, **kwargs)


def _new_client(service: str, creds: tuple[str, str, str | None] | None,
                endpoint_url: str | None, region: str, quick: bool) -> Any:
    from botocore.config import Config

    explicit: dict[str, Any] = {}
    if creds is not None:
        explicit = {"aws_access_key_id": creds[0], "aws_secret_access_key": creds[1],
                    "aws_session_token": creds[2]}
    return session_client(
        service, region_name=region, endpoint_url=endpoint_url, **explicit,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                      connect_timeout=2, read_timeout=2) if quick else
        Config(retries={"max_attempts": 3, "mode": "standard"},
               connect_timeout=3, read_timeout=25))


def reset_clients() -> None:
    global _session
    with _lock, _session_lock:
        _clients.clear()
        _session = None  # it caches the environment's credentials once resolved

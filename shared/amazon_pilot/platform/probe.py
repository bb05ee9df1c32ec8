"""The synthetic check: health seen from outside, as a seller sees it.

Every few minutes (template.yaml's ProbeSchedule) the probe function signs in through
the public URL as a dedicated probe user, lists that user's products, reads the first
one, and signs out again (so its sessions do not pile up). It records `ProbeSuccess`
(1 or 0) and `ProbeLatency`; ProbeFailedAlarm fires on a 0 and on silence alike
(TreatMissingData: breaching), so a probe that cannot run at all is an alarm too.

The probe user's credentials come from a Secrets Manager secret (its ARN in
PROBE_SECRET_ARN), a JSON object {"email": ..., "password": ...}; the user must track
at least one product (docs/slos.md, "Health from outside").
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from amazon_pilot.platform.observability import record_metric
from amazon_pilot.platform.settings import settings

log = logging.getLogger("amazon_pilot.probe")

TIMEOUT_S = 10.0  # per request; the function's own timeout bounds the whole probe
USER_AGENT = "AmazonPilot-Probe/1"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    step: str  # the step that failed, or "done"
    latency_ms: float
    status_code: int | None = None
    error: str | None = None
    product_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _StepFailed(Exception):
    def __init__(self, step: str, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.step, self.status_code = step, status_code


def probe(base_url: str, email: str, password: str, *,
          timeout_s: float = TIMEOUT_S) -> ProbeResult:
    """Sign in, read a product, sign out; the first step that fails is the answer."""
    import httpx  # only the probe function needs it at cold start

    started = time.monotonic()
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    product_id: str | None = None
    try:
        with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers,
                          follow_redirects=False, trust_env=False) as http:
            tokens = _json(http.post("/v1/auth/login",
                                     json={"email": email, "password": password}), "sign_in")
            access, refresh = tokens.get("access_token"), tokens.get("refresh_token")
            if not access:  # an MFA challenge: a probe user must not have MFA
                raise _StepFailed("sign_in", "no access token in the answer (is MFA on for "
                                             "the probe user?)")
            auth = {"Authorization": f"Bearer {access}"}
            try:
                page = _json(http.get("/v1/products", params={"limit": 1}, headers=auth),
                             "list_products")
                items = page.get("items") or []
                if not items:
                    raise _StepFailed("list_products", "the probe user tracks no product")
                product_id = str(items[0]["id"])
                product = _json(http.get(f"/v1/products/{product_id}", headers=auth),
                                "read_product")
                if str(product.get("id")) != product_id:
                    raise _StepFailed("read_product", "the product read is not the one asked")
            finally:
                if refresh:  # best effort: a session left behind expires on its own
                    with contextlib.suppress(httpx.HTTPError):
                        http.post("/v1/auth/logout", json={"refresh_token": refresh},
                                  headers=auth)
    except _StepFailed as failed:
        return ProbeResult(False, failed.step, _ms(started), failed.status_code,
                           str(failed), product_id)
    except httpx.HTTPError as exc:
        return ProbeResult(False, "connect", _ms(started), None,
                           f"{type(exc).__name__}: {exc}"[:300], product_id)
    return ProbeResult(True, "done", _ms(started), 200, None, product_id)


def _json(response: Any, step: str) -> dict[str, Any]:
    if response.status_code != 200:
        code = ""
        with contextlib.suppress(ValueError, KeyError, TypeError):
            code = str(response.json()["error"]["code"])
        raise _StepFailed(step, f"HTTP {response.status_code} {code}".strip(),
                          response.status_code)
    try:
        body = response.json()
    except ValueError as exc:
        raise _StepFailed(step, "the answer is not JSON", response.status_code) from exc
    if not isinstance(body, dict):
        raise _StepFailed(step, "the answer is not a JSON object", response.status_code)
    return body


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def credentials(secret_arn: str) -> tuple[str, str]:
    """The probe user's e-mail and password from its secret."""
    from amazon_pilot.adapters.secrets import get_secret_string

    data = json.loads(get_secret_string(secret_arn))
    if not isinstance(data, dict) or not data.get("email") or not data.get("password"):
        raise ValueError("the probe secret must be a JSON object with email and password")
    return str(data["email"]), str(data["password"])


def run_probe() -> dict[str, Any]:
    """One scheduled run: configured from the settings, recorded as metrics.

    Never raises for a failed check (the metric is the signal, and a raised error would
    only add Lambda retries of a probe that runs again in minutes anyway)."""
    cfg = settings()
    if not cfg.probe_api_url or not cfg.probe_secret_arn:
        log.info("probe not configured (PROBE_API_URL and PROBE_SECRET_ARN); nothing checked")
        return {"ok": None, "step": "not_configured"}
    try:
        email, password = credentials(cfg.probe_secret_arn)
    except Exception as exc:
        result = ProbeResult(False, "credentials", 0.0, None,
                             f"{type(exc).__name__}: {exc}"[:300])
    else:
        result = probe(cfg.probe_api_url, email, password)
    record_metric("ProbeSuccess", 1 if result.ok else 0)
    record_metric("ProbeLatency", result.latency_ms)
    if result.ok:
        log.info("probe passed", extra=result.to_dict())
    else:
        log.error("probe failed at %s: %s", result.step, result.error, extra=result.to_dict())
    return result.to_dict()

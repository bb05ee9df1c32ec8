"""Plans and what they allow: the one shared table of limits.

    free        60 requests/min     20 tracked products
    pro        300 requests/min    500 tracked products
    enterprise 1200 requests/min  10000 tracked products

Each number can be overridden from the environment, read at call time (a dict
lookup, so tests and the local runtime can change it):
``RATE_LIMIT_FREE`` / ``RATE_LIMIT_PRO`` / ``RATE_LIMIT_ENTERPRISE`` and
``TRACKED_PRODUCTS_FREE`` / ``TRACKED_PRODUCTS_PRO`` / ``TRACKED_PRODUCTS_ENTERPRISE``.

Plain Python: no web framework, database or AWS imports.
"""

from __future__ import annotations

from dataclasses import dataclass

from amazon_pilot.platform.settings import env_int

DEFAULT_PLAN = "free"


@dataclass(frozen=True)
class Plan:
    name: str
    requests_per_minute: int
    tracked_products: int


PLANS: dict[str, Plan] = {
    "free": Plan("free", requests_per_minute=60, tracked_products=20),
    "pro": Plan("pro", requests_per_minute=300, tracked_products=500),
    "enterprise": Plan("enterprise", requests_per_minute=1200, tracked_products=10_000),
}
PLAN_NAMES: tuple[str, ...] = tuple(PLANS)


class UnknownPlan(ValueError):
    pass


def plan(name: str) -> Plan:
    try:
        return PLANS[name]
    except KeyError:
        raise UnknownPlan(f"unknown plan {name!r}; plans are {', '.join(PLAN_NAMES)}") from None


def _override(prefix: str, name: str, default: int) -> int:
    value = env_int(f"{prefix}_{name.upper()}", default)
    return value if value > 0 else default


def rate_limit_per_minute(plan_name: str) -> int:
    """Requests a user on this plan may make per rate-limit window."""
    return _override("RATE_LIMIT", plan_name, plan(plan_name).requests_per_minute)


def tracked_product_limit(plan_name: str) -> int:
    """How many products a user on this plan may track at once."""
    return _override("TRACKED_PRODUCTS", plan_name, plan(plan_name).tracked_products)

"""Plans and what they allow: the one table of limits.

    plan        requests/min  tracked products  competitor groups  search terms/product
    free                  60                20                  5                     3
    pro                  300               500                100                    10
    enterprise          1200            10 000               1000                    25

An operator can override any number per stage with an environment variable named in
OVERRIDABLE_LIMITS plus the plan (``RATE_LIMIT_PRO``, ``TRACKED_PRODUCTS_FREE``,
``COMPETITOR_GROUPS_ENTERPRISE``); platform.settings reads them at cold start.

Plain Python: no web framework, database or AWS imports.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

DEFAULT_PLAN = "free"


@dataclass(frozen=True)
class Plan:
    name: str
    requests_per_minute: int
    tracked_products: int
    competitor_groups: int
    keyword_terms: int = 3  # search terms tracked per product (docs/keywords.md)


PLANS: dict[str, Plan] = {
    "free": Plan("free", requests_per_minute=60, tracked_products=20, competitor_groups=5,
                 keyword_terms=3),
    "pro": Plan("pro", requests_per_minute=300, tracked_products=500, competitor_groups=100,
                keyword_terms=10),
    "enterprise": Plan("enterprise", requests_per_minute=1200, tracked_products=10_000,
                       competitor_groups=1000, keyword_terms=25),
}
PLAN_NAMES: tuple[str, ...] = tuple(PLANS)

# environment variable prefix -> the Plan field it overrides
OVERRIDABLE_LIMITS: dict[str, str] = {
    "RATE_LIMIT": "requests_per_minute",
    "TRACKED_PRODUCTS": "tracked_products",
    "COMPETITOR_GROUPS": "competitor_groups",
    "KEYWORD_TERMS": "keyword_terms",
}


class UnknownPlan(ValueError):
    pass


def plan(name: str) -> Plan:
    try:
        return PLANS[name]
    except KeyError:
        raise UnknownPlan(f"unknown plan {name!r}; plans are {', '.join(PLAN_NAMES)}") from None


def plan_with_overrides(base: Plan, overrides: dict[str, int]) -> Plan:
    """`base` with some of its limits replaced (names are Plan fields)."""
    return replace(base, **overrides) if overrides else base  # type: ignore[arg-type]

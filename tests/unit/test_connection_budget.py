"""Reserved concurrency keeps the functions under the database's max_connections:
each row of template.yaml's ConnectionBudget, times the connections one Lambda instance
may hold, plus the connections RDS keeps for itself, fits the row's database."""

from __future__ import annotations

import pytest

from pilot_dev.runtime.template import load_template

TEMPLATE = load_template()
BUDGET = TEMPLATE.raw["Mappings"]["ConnectionBudget"]
RDS_RESERVED = 3  # rds.rds_superuser_reserved_connections' default on RDS for PostgreSQL


def _per_instance() -> int:
    env = TEMPLATE.raw["Globals"]["Function"]["Environment"]["Variables"]
    return int(env["DATABASE_POOL_SIZE"]) + int(env["DATABASE_MAX_OVERFLOW"])


def test_a_lambda_instance_holds_one_or_two_connections() -> None:
    assert 1 <= _per_instance() <= 2


@pytest.mark.parametrize("max_connections", sorted(BUDGET, key=int))
def test_every_row_fits_its_database(max_connections: str) -> None:
    row = BUDGET[max_connections]
    worst = _per_instance() * sum(row.values()) + RDS_RESERVED
    assert worst <= int(max_connections), f"{worst} connections > {max_connections}"


def test_every_function_that_reads_the_database_is_budgeted() -> None:
    allowed = TEMPLATE.raw["Parameters"]["DatabaseMaxConnections"]["AllowedValues"]
    assert sorted(allowed, key=int) == ["0", *sorted(BUDGET, key=int)]
    for logical_id, spec in TEMPLATE.functions.items():
        reserved = spec.properties.get("ReservedConcurrentExecutions")
        # static files, and the outside probe (the public URL only): no database connection
        if logical_id in ("WebFunction", "ProbeFunction"):
            assert reserved is None
            continue
        name = logical_id.removesuffix("Function")
        assert reserved == {"Fn::If": ["HasConnectionBudget", {"Fn::FindInMap": [
            "ConnectionBudget", {"Ref": "DatabaseMaxConnections"}, name]},
            {"Ref": "AWS::NoValue"}]}, logical_id
        assert all(name in row for row in BUDGET.values()), name


def test_workers_are_never_reserved_below_their_queue_concurrency() -> None:
    for mapping in TEMPLATE.queue_mappings:
        name = mapping.function.removesuffix("Function")
        for row in BUDGET.values():
            assert row[name] >= mapping.max_concurrency, (name, row[name])


def test_conditions_resolve_locally_as_cloudformation_would() -> None:
    from pilot_dev.runtime.template import ResolveContext, evaluate_conditions

    def conditions(**params: str) -> dict[str, bool]:
        ctx = ResolveContext("s", "us-east-1", {**TEMPLATE.parameter_defaults(), **params})
        return evaluate_conditions(TEMPLATE.raw, ctx)

    assert not any(conditions()[c] for c in ("HasVpc", "CreatesProxy", "HasConnectionBudget"))
    # a proxy is created only inside a VPC
    assert not conditions(ProxyDatabaseInstanceId="db-1")["CreatesProxy"]
    both = conditions(ProxyDatabaseInstanceId="db-1", SubnetIds="subnet-1,subnet-2")
    assert both["HasVpc"] and both["CreatesProxy"]
    assert conditions(DatabaseMaxConnections="180")["HasConnectionBudget"]

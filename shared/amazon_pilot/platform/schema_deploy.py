"""Migrations on deploy: the SchemaMigrations custom resource's handler.

CloudFormation sends Create/Update when the resource's MigrationsHash changes (that
is, when a migration changed) and Delete when the stack or the resource goes. Every
path answers the ResponseURL: an exception that escaped would leave CloudFormation
waiting an hour. A FAILED answer fails the deploy, and since every function that
reads the schema DependsOn the resource, none of them has been updated yet: the
previous code keeps serving while CloudFormation rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from amazon_pilot.platform.custom_resource import send_response

PHYSICAL_ID = "schema-migrations"  # one schema per stack: the id never changes


class HashMismatch(RuntimeError):
    """The template's MigrationsHash is not the hash of the migrations that shipped."""


def apply_for_deploy(wanted_hash: str | None, previous_hash: str | None = None
                     ) -> dict[str, str]:
    from amazon_pilot.platform.db import resolve_database_url
    from amazon_pilot.platform.migrate import apply_migrations, discover, migrations_hash

    shipped = migrations_hash()
    if wanted_hash != shipped and previous_hash == shipped:
        # A rollback: CloudFormation reverts this resource before it reverts the
        # function, so this (newer) code is asked for the older set. Migrations only go
        # forward; the older code runs on the schema as it is. Failing here would leave
        # the stack in UPDATE_ROLLBACK_FAILED.
        return {"Applied": "none (rollback: schema kept)", "Latest": "",
                "MigrationsHash": shipped}
    if wanted_hash != shipped:
        # The template and the package were built from different trees: applying
        # either set would be a guess.
        raise HashMismatch(
            f"template MigrationsHash {str(wanted_hash)[:12]} does not match the shipped "
            f"migrations {shipped[:12]}; run `python -m pilot_dev.migrations_hash --write` "
            f"and rebuild")
    applied = apply_migrations(resolve_database_url())
    latest = discover()[-1].name if discover() else ""
    return {"Applied": ",".join(applied) or "none", "Latest": latest, "MigrationsHash": shipped}


def handle_custom_resource(event: dict[str, Any], logger: logging.Logger | Any,
                           data_step: Callable[[], dict[str, int]] | None = None
                           ) -> dict[str, Any]:
    """Apply the migrations for a Create or Update, then `data_step` (the data half of a
    migration, e.g. sealing secrets a new column made sealable). A failed data step does
    not fail the deploy: the schema is right, and the step is retried by the next deploy
    or by hand; its error is in the answer's Reason and the log."""
    request_type = str(event.get("RequestType", ""))
    physical_id = str(event.get("PhysicalResourceId") or PHYSICAL_ID)
    status, reason, data = "SUCCESS", "", {}
    try:
        if request_type == "Delete":
            # Never drop the schema with the stack: the data outlives deployments.
            reason = "schema kept"
        elif request_type in ("Create", "Update"):
            props = event.get("ResourceProperties") or {}
            previous = event.get("OldResourceProperties") or {}
            data = apply_for_deploy(props.get("MigrationsHash"), previous.get("MigrationsHash"))
            reason = f"applied: {data['Applied']}"
            if data_step is not None:
                reason += "; " + _run_data_step(data_step, logger)
        else:
            raise ValueError(f"unknown RequestType {request_type!r}")
    except Exception as exc:
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"
        logger.exception("migrations failed")
    else:
        logger.info("migrations done", extra={"request_type": request_type, **data})
    send_response(event, status, physical_id=physical_id, reason=reason, data=data)
    return {"Status": status, "Reason": reason, "Data": data}


def _run_data_step(step: Callable[[], dict[str, int]], logger: logging.Logger | Any) -> str:
    try:
        counts = step()
    except Exception as exc:
        logger.warning("the data step failed; the schema is applied",
                       extra={"error": repr(exc)})
        return f"data step failed ({type(exc).__name__}: {exc})"
    if counts.get("unreadable"):
        logger.warning("stored secrets that no key in the ring opens", extra=counts)
    return "data step: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))

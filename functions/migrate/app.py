"""Lambda entry point of the migration function: CloudFormation's SchemaMigrations
custom resource invokes it on every deploy whose migrations changed, before the
functions that use the schema are updated (they DependsOn it). `pilot run` invokes
it the same way at every start.

CloudFormation waits up to an hour for an answer, so even a package that cannot be
imported (a broken layer) must answer: the answering module needs only the standard
library, and everything else is imported under a guard.
"""

from typing import Any

from amazon_pilot.platform.custom_resource import send_response

try:
    from amazon_pilot.notifications.service import seal_stored_secrets
    from amazon_pilot.platform.observability import (
        lambda_entry,
        make_logger,
        make_metrics,
        make_tracer,
    )
    from amazon_pilot.platform.schema_deploy import PHYSICAL_ID, handle_custom_resource

    logger = make_logger("migrate")

    @lambda_entry(logger, make_metrics("migrate"), make_tracer("migrate"))
    def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # the data step of migration 0012 and of a key rotation: webhook secrets still
        # plaintext or under an older key are sealed with the active one (docs/security.md)
        return handle_custom_resource(event, logger, data_step=seal_stored_secrets)

    _broken: Exception | None = None
except Exception as exc:  # any import failure must still reach CloudFormation
    _broken = exc
    PHYSICAL_ID = "schema-migrations"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if _broken is None:
        return _handle(event, context)
    # Nothing was migrated. A Delete (a rollback of a failed create) still succeeds:
    # the schema is never dropped, and a FAILED delete would wedge the rollback.
    status = "SUCCESS" if event.get("RequestType") == "Delete" else "FAILED"
    reason = f"the migration function cannot start: {_broken!r}"
    send_response(event, status, physical_id=str(event.get("PhysicalResourceId")
                                                  or PHYSICAL_ID), reason=reason)
    return {"Status": status, "Reason": reason}

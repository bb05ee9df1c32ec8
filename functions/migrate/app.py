"""Lambda entry point of the migration function: CloudFormation's SchemaMigrations
custom resource invokes it on every deploy whose migrations changed, before the
functions that use the schema are updated (they DependsOn it). `pilot run` invokes
it the same way at every start."""

from typing import Any

from amazon_pilot.platform.observability import lambda_entry, make_logger, make_metrics, make_tracer
from amazon_pilot.platform.schema_deploy import handle_custom_resource

logger = make_logger("migrate")
metrics = make_metrics("migrate")
tracer = make_tracer("migrate")


@lambda_entry(logger, metrics, tracer)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_custom_resource(event, logger)

"""How a job says what kind of failure it met."""

from typing import Any
from uuid import UUID


class PermanentJobError(Exception):
    """Retrying cannot help (bad input, unknown job): the message goes to the DLQ now."""


class RetryableJobError(Exception):
    """A dependency failed; SQS will deliver the message again after a back-off."""


def uuid_field(payload: dict[str, Any], name: str) -> UUID:
    """A job's id field; a message without a usable one can never succeed."""
    try:
        return UUID(str(payload[name]))
    except (KeyError, ValueError) as exc:
        raise PermanentJobError(f"bad payload, {name}: {exc!r}") from exc

"""How a job says what kind of failure it met."""


class PermanentJobError(Exception):
    """Retrying cannot help (bad input, unknown job): the message goes to the DLQ now."""


class RetryableJobError(Exception):
    """A dependency failed; SQS will deliver the message again after a back-off."""

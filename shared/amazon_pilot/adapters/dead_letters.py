"""A dead-letter queue's messages over an SQS client: look at them, move them back.

One implementation for the operator console's API (operations/service.py, the function's
own client) and the CLI (`pilot dlq` / `pilot redrive`, locally or with `--stage`, the
operator's credentials): they differ only in where the client comes from."""

from __future__ import annotations

from typing import Any

from amazon_pilot.adapters.aws import SqsClient

# the attributes the consumer adds when it dead-letters a message; not sent back
DLQ_ATTRIBUTES = ("failure_reason", "source_message_id", "receive_count")
# receive calls spent looking for messages (10 each): a DLQ is looked at, not drained
PEEK_ROUNDS = 10


def peek(sqs: SqsClient, dlq_url: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` messages, received with a visibility timeout of 0 so they stay
    available (to a redrive at once); each message once."""
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(PEEK_ROUNDS):
        batch = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0,
            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        new = [m for m in batch if m["MessageId"] not in seen]
        for message in new:
            seen[message["MessageId"]] = message
        if not new or len(seen) >= limit:
            break
    return list(seen.values())


def start_move_task(sqs: SqsClient, source_url: str, dlq_url: str) -> str | None:
    """SQS's own message-move task for the whole DLQ: its handle, or None where the
    endpoint has no such action (moto, some LocalStack editions)."""
    arns = [sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"] for url in (dlq_url, source_url)]
    try:
        task = sqs.start_message_move_task(SourceArn=arns[0], DestinationArn=arns[1])
    except Exception as exc:
        if not move_task_unsupported(exc):
            raise
        return None
    return str(task.get("TaskHandle") or "")


def move_back(sqs: SqsClient, source_url: str, dlq_url: str,
              wanted: set[str] | None = None) -> tuple[int, list[str]]:
    """Receive, send to the source queue, delete: every message (`wanted` None, until the
    DLQ answers empty) or those ids (others made visible again at once). Returns the
    number moved and the wanted ids not found."""
    moved: set[str] = set()
    seen: set[str] = set()
    rounds = 0
    while wanted is None or rounds < PEEK_ROUNDS:
        rounds += 1
        batch = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10,
                                    VisibilityTimeout=30, WaitTimeSeconds=0,
                                    MessageAttributeNames=["All"]).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        for message in batch:
            seen.add(message["MessageId"])
            if wanted is None or (message["MessageId"] in wanted
                                  and message["MessageId"] not in moved):
                attributes = {k: v for k, v in (message.get("MessageAttributes") or {}).items()
                              if k not in DLQ_ATTRIBUTES}
                sqs.send_message(QueueUrl=source_url, MessageBody=message["Body"],
                                 MessageAttributes=attributes)
                # deleted only once the copy is safely in the source queue
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                moved.add(message["MessageId"])
            else:  # not asked for: visible again at once
                sqs.change_message_visibility(QueueUrl=dlq_url,
                                              ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=0)
        if not fresh or (wanted is not None and moved >= wanted):
            break
    return len(moved), sorted((wanted or set()) - moved)


def move_task_unsupported(exc: Exception) -> bool:
    """The endpoint has no message-move task (moto, LocalStack editions)."""
    response = getattr(exc, "response", {}) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    if response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (500, 501) and (
            not code or code in ("500", "501")):
        return True  # an endpoint that failed on the action itself (moto: NotImplementedError)
    text = f"{code} {exc}".lower()
    return any(word in text for word in ("notimplemented", "not implemented",
                                         "unsupported", "invalidaction", "unknownoperation",
                                         "not yet implemented"))

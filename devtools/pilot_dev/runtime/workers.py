"""SQS pollers and the schedule clock: the parts of Lambda's event sources the local
runtime plays itself."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pilot_dev.runtime.events import schedule_event, sqs_event
from pilot_dev.runtime.invoker import Invoker
from pilot_dev.runtime.schedules import parse_schedule
from pilot_dev.runtime.template import QueueMapping, ScheduleEvent

log = logging.getLogger("pilot.runtime")

DeadLetter = Callable[[ScheduleEvent, Exception], None]
MAX_BACKOFF_S = 5.0  # a poller whose endpoint keeps failing tries again at most this late


@dataclass
class PollerStats:
    batches: int = 0
    succeeded: int = 0
    failed: int = 0
    handler_errors: int = 0


class QueuePoller:
    """Drains one queue into one function: `threads` long-polling loops, each invoking
    the consumer with up to `batch_size` messages, deleting what succeeded and leaving
    reported failures to the queue's visibility timeout and redrive policy."""

    def __init__(self, sqs: Any, host: Invoker, mapping: QueueMapping, queue_url: str,
                 queue_arn: str, region: str, threads: int, wait_s: int = 1) -> None:
        self.sqs = sqs
        self.host = host
        self.mapping = mapping
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.threads = threads
        self.wait_s = wait_s
        self.stats = PollerStats()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.threads):
            worker = threading.Thread(
                target=self._loop, name=f"poll-{self.mapping.queue}-{i}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        """Finish the batches in hand, take no new ones."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.poll_once()
                failures = 0
            except Exception as exc:  # the endpoint went away: retry, backing off
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    log.warning("poller %s: %s", self.mapping.queue, exc)
                self._stop.wait(min(MAX_BACKOFF_S, 0.5 * 2 ** failures))

    def poll_once(self) -> int:
        received = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, self.mapping.batch_size),
            WaitTimeSeconds=self.wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        self.stats.batches += 1
        event = sqs_event(received, self.queue_arn, self.region)
        try:
            response = self.host.invoke(self.mapping.function, event) or {}
        except Exception as exc:
            # Like Lambda: a handler error returns the whole batch to the queue.
            self.stats.handler_errors += 1
            self.stats.failed += len(received)
            log.error("%s failed on a batch of %d: %r", self.mapping.function, len(received), exc)
            return len(received)
        failed_ids = set()
        if self.mapping.report_failures and isinstance(response, dict):
            failed_ids = {f.get("itemIdentifier") for f in response.get("batchItemFailures", [])}
        done = [m for m in received if m["MessageId"] not in failed_ids]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                         for i, m in enumerate(done)],
            )
        self.stats.succeeded += len(done)
        self.stats.failed += len(received) - len(done)
        return len(received)


class ScheduleClock:
    """Fires the template's schedules at their times, and on demand."""

    def __init__(self, host: Invoker, schedules: list[ScheduleEvent], region: str,
                 stack_name: str, dead_letter: DeadLetter | None = None) -> None:
        self.host = host
        self.dead_letter = dead_letter
        self.region = region
        self.stack_name = stack_name
        self.schedules = {s.name: s for s in schedules}
        self.parsed = {s.name: parse_schedule(s.expression) for s in schedules}
        self.fired: list[tuple[str, datetime, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def next_times(self, now: datetime | None = None) -> dict[str, datetime]:
        now = now or datetime.now(UTC)
        return {name: sched.next_after(now) for name, sched in self.parsed.items()
                if self.schedules[name].enabled}

    def fire(self, name: str) -> Any:
        if name not in self.schedules:
            known = ", ".join(sorted(self.schedules))
            raise KeyError(f"no schedule named {name!r}; known: {known}")
        schedule = self.schedules[name]
        rule_arn = f"arn:aws:events:{self.region}:000000000000:rule/{self.stack_name}-{name}"
        result = self.host.invoke(
            schedule.function, schedule_event(rule_arn, self.region, schedule.input)
        )
        self.fired.append((name, datetime.now(UTC), result))
        return result

    def fire_on_time(self, name: str) -> Any:
        """A run the clock started: as in AWS nobody waits for it, so a failure goes
        to the schedule's dead-letter queue (the function's OnFailure destination)."""
        try:
            return self.fire(name)
        except Exception as exc:
            log.error("schedule %s failed: %r", name, exc)
            schedule = self.schedules[name]
            if self.dead_letter is not None and schedule.dead_letter_queue:
                self.dead_letter(schedule, exc)
            return None

    def _run(self) -> None:
        upcoming = self.next_times()
        while not self._stop.is_set():
            now = datetime.now(UTC)
            due = [name for name, at in upcoming.items() if at <= now]
            for name in due:
                self.fire_on_time(name)
                upcoming[name] = self.parsed[name].next_after(now)
            if upcoming:
                wait = (min(upcoming.values()) - datetime.now(UTC)).total_seconds()
            else:
                wait = 60.0
            self._stop.wait(max(0.05, min(wait, 30.0)))


class OutboxRelayThread:
    """The outbox relay of `pilot run` (in AWS: the OutboxRelay schedule, every minute):
    sends pending outbox jobs every `interval_s`, so a job the nudge after its commit could
    not send (the endpoint was down) leaves as soon as the endpoint answers again."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> OutboxRelayThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from amazon_pilot.platform.outbox import relay

        while not self._stop.wait(self.interval_s):
            try:
                self.sent += relay().sent
            except Exception as exc:  # the database went away for a moment: next tick
                log.warning("outbox relay: %r", exc)

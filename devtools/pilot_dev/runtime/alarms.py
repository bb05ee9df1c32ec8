"""`pilot run` evaluates the template's CloudWatch alarms on the local metrics.

What CloudWatch would measure, measured here:
- AWS/SQS: every queue's ApproximateNumberOfMessagesVisible / NotVisible and
  ApproximateAgeOfOldestMessage, sampled from the endpoint every few seconds
  (QueueSampler);
- AWS/Lambda: Invocations, Errors (the handler raised) and Duration per FunctionName,
  from each invocation (MeteredHost);
- AWS/ApiGateway: Count, 4xx, 5xx and Latency per ApiId, from the access log lines,
  and the functions' EMF metrics (Powertools) from their log lines (MetricsTap).

Each AWS::CloudWatch::Alarm of the template is evaluated on them every few seconds, as
CloudWatch documents the evaluation ("Evaluating an alarm" and "Configuring how
CloudWatch alarms treat missing data", docs.aws.amazon.com/AmazonCloudWatch/latest/
monitoring/AlarmThatSendsEmail.html): the last EvaluationPeriods periods of Period
seconds, each reduced by the alarm's Statistic / ExtendedStatistic (or its metric
math), compared with Threshold by ComparisonOperator; ALARM when at least
DatapointsToAlarm (default EvaluationPeriods) of them breach; TreatMissingData
(missing, notBreaching, breaching, ignore) decides what empty periods count as. One
deliberate difference: the current, unfinished period is one of the evaluated ones, so
a DLQ alarm fires within seconds locally rather than after the minute closes.

States (OK, ALARM, INSUFFICIENT_DATA) with their history stay here, and each alarm is
mirrored into the endpoint's CloudWatch (put_metric_alarm at start, set_alarm_state on
every transition), so the shipped code (`GET /v1/admin/operations/alarms`) and
`pilot alarms` read them with `describe_alarms` as they would in AWS.
"""

from __future__ import annotations

import ast
import bisect
import contextlib
import functools
import json
import logging
import math
import operator
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pilot_dev.runtime.template import ResolveContext, Template, resolve

log = logging.getLogger("pilot.alarms")

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
SEVERITIES = ("page", "ticket")
DEFAULT_SEVERITY = "ticket"
KEEP_S = 6 * 3600  # samples older than the longest alarm window are dropped
HISTORY = 50  # transitions kept per alarm
# A period this long past is complete: every line of it has been shipped (the worker
# processes ship every 0.2 s), so its datapoint no longer changes.
SETTLED_S = 10.0

Dims = frozenset[tuple[str, str]]


# ---------------------------------------------------------------- metrics


class _Series:
    """One metric's datapoints in buckets of a whole second, the seconds kept sorted:
    reading a window touches only its own seconds, and takes a second wholly inside it
    with one list copy. A flat list of every sample of the last KEEP_S seconds was
    copied and scanned by each alarm evaluation, so under load the evaluations grew with
    the requests served and held the interpreter longer and longer (the runtime's p99
    grew round after round of the same load)."""

    __slots__ = ("buckets", "seconds")

    def __init__(self) -> None:
        self.seconds: list[int] = []  # ascending
        self.buckets: dict[int, tuple[list[float], list[float]]] = {}  # stamps, values

    def add(self, stamp: float, value: float) -> None:
        second = math.floor(stamp)
        bucket = self.buckets.get(second)
        if bucket is None:
            bucket = self.buckets[second] = ([], [])
            if not self.seconds or second > self.seconds[-1]:
                self.seconds.append(second)
            else:  # an EMF line may carry an earlier timestamp
                bisect.insort(self.seconds, second)
        bucket[0].append(stamp)
        bucket[1].append(value)

    def drop_before(self, stamp: float) -> None:
        cut = bisect.bisect_left(self.seconds, math.floor(stamp))
        if cut:
            for second in self.seconds[:cut]:
                del self.buckets[second]
            del self.seconds[:cut]

    def between(self, start: float, end: float) -> list[float]:
        low = bisect.bisect_left(self.seconds, math.floor(start))
        high = bisect.bisect_right(self.seconds, math.floor(end))
        out: list[float] = []
        for second in self.seconds[low:high]:
            stamps, values = self.buckets[second]
            if start <= second and second + 1 <= end:  # the whole second is inside
                out.extend(values)
            else:
                out.extend(v for t, v in zip(stamps, values, strict=True) if start <= t < end)
        return out


class MetricStore:
    """Datapoints by (namespace, metric name, dimensions), kept for KEEP_S seconds."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._series: dict[tuple[str, str, Dims], _Series] = {}
        self._lock = threading.Lock()

    def put(self, namespace: str, name: str, dims: dict[str, str], value: float,
            at: float | None = None) -> None:
        key = (namespace, name, frozenset(dims.items()))
        stamp = self.clock() if at is None else at
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series()
            series.add(stamp, float(value))
            if series.seconds[0] < stamp - KEEP_S - 1:
                series.drop_before(stamp - KEEP_S)

    def put_many(self, namespace: str, name: str, dims: dict[str, str],
                 values: list[tuple[float, float]]) -> None:
        """(value, at) pairs of one series, as a child process sends them."""
        key = (namespace, name, frozenset(dims.items()))
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series()
            for value, at in values:
                series.add(at, float(value))
            if values and series.seconds[0] < values[-1][1] - KEEP_S - 1:
                series.drop_before(values[-1][1] - KEEP_S)

    def samples(self, namespace: str, name: str, dims: dict[str, str], start: float,
                end: float) -> list[float]:
        key = (namespace, name, frozenset(dims.items()))
        with self._lock:
            series = self._series.get(key)
            return series.between(start, end) if series is not None else []

    def search(self, namespace: str, name: str, terms: dict[str, str]) -> list[dict[str, str]]:
        """The dimension sets of `namespace`/`name` whose values contain each term (a
        SEARCH expression's partial match)."""
        with self._lock:
            keys = list(self._series)
        found = []
        for ns, metric, dims in keys:
            values = dict(dims)
            if ns == namespace and metric == name and all(
                    term in values.get(k, "") for k, term in terms.items()):
                found.append(values)
        return found

    def window(self, start: float, end: float) -> dict[tuple[str, str, Dims], list[float]]:
        """Every series' values in [start, end)."""
        with self._lock:
            out = {k: series.between(start, end) for k, series in self._series.items()}
        return {k: v for k, v in out.items() if v}


def statistic(values: list[float], stat: str) -> float | None:
    """CloudWatch's statistics: Sum, Average, Minimum, Maximum, SampleCount, pNN."""
    if not values:
        return None
    if stat == "Sum":
        return sum(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    if stat == "SampleCount":
        return float(len(values))
    match = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
    if match:
        ordered = sorted(values)
        rank = max(1, math.ceil(float(match.group(1)) / 100 * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]
    raise ValueError(f"unsupported statistic {stat!r}")


# ---------------------------------------------------------------- where metrics come from


class MetricSink(Protocol):
    """Where samples go: the MetricStore, or a child's pipe to it (metric_pipe.py)."""

    def put(self, namespace: str, name: str, dims: dict[str, str], value: float,
            at: float | None = None) -> None: ...


class MeteredHost:
    """Wraps the function host: each invocation's Invocations, Errors and Duration, as
    Lambda reports them in AWS/Lambda (an exception out of the handler is an error; a
    batch with partial failures or a 500 answer is not)."""

    def __init__(self, inner: Any, store: MetricSink, names: dict[str, str]) -> None:
        self._inner = inner
        self._store = store
        self._names = names

    def load(self, logical_id: str) -> object:
        return self._inner.load(logical_id)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        dims = {"FunctionName": self._names.get(logical_id, logical_id)}
        started = time.perf_counter()
        failed = False
        try:
            return self._inner.invoke(logical_id, event)
        except BaseException:
            failed = True
            raise
        finally:
            ms = (time.perf_counter() - started) * 1000
            self._store.put("AWS/Lambda", "Invocations", dims, 1)
            self._store.put("AWS/Lambda", "Errors", dims, 1 if failed else 0)
            self._store.put("AWS/Lambda", "Duration", dims, ms)

    def __getattr__(self, name: str) -> Any:  # stop(), _loaded, ... of the real host
        return getattr(self._inner, name)


class MetricsTap:
    """A log sink in front of the CloudWatch shipper: reads the functions' EMF lines
    (CloudWatch extracts those from the log group) as they are shipped, and takes each
    request's AWS/ApiGateway metrics (as API Gateway counts them) from the values of its
    access line (`access`, called as the line is rendered)."""

    def __init__(self, sink: Callable[[str, Any], None], store: MetricSink,
                 access_group: str | None = None, api_id: str = "") -> None:
        self.sink = sink
        self.store = store
        self.access_group = access_group
        self.api_id = api_id

    def __call__(self, group: str, lines: Any) -> None:
        if group == self.access_group:  # measured from its values, not its text
            self.sink(group, lines)
            return

        def rendered() -> list[str]:
            out: list[str] = lines() if callable(lines) else list(lines)
            with contextlib.suppress(Exception):  # a metric lost never loses its log line
                self.read(group, out)
            return out

        self.sink(group, rendered)

    def read(self, group: str, lines: Iterable[str]) -> None:
        for line in lines:
            # most lines are JSON logs without metrics: not worth parsing
            if not line.startswith("{") or '"_aws"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("_aws"), dict):
                self._emf(record)

    def access(self, values: dict[str, str]) -> None:
        """One request's Count, 4xx, 5xx and Latency, from its access line's values
        ($context.status, $context.responseLatency)."""
        dims = {"ApiId": self.api_id}
        status = int(values.get("status") or 0)
        self.store.put("AWS/ApiGateway", "Count", dims, 1)
        self.store.put("AWS/ApiGateway", "4xx", dims, 1 if 400 <= status < 500 else 0)
        self.store.put("AWS/ApiGateway", "5xx", dims, 1 if status >= 500 else 0)
        with contextlib.suppress(TypeError, ValueError):
            self.store.put("AWS/ApiGateway", "Latency", dims,
                           float(values["responseLatency"]))

    def _emf(self, record: dict[str, Any]) -> None:
        meta = record["_aws"]
        stamp = float(meta.get("Timestamp", time.time() * 1000)) / 1000
        for directive in meta.get("CloudWatchMetrics") or []:
            namespace = directive.get("Namespace", "")
            for dim_set in directive.get("Dimensions") or [[]]:
                dims = {d: str(record.get(d, "")) for d in dim_set}
                for metric in directive.get("Metrics") or []:
                    value = record.get(metric.get("Name"))
                    for v in value if isinstance(value, list) else [value]:
                        if isinstance(v, int | float):
                            self.store.put(namespace, metric["Name"], dims, v, at=stamp)


class QueueSampler(threading.Thread):
    """Samples each queue's attributes into AWS/SQS metrics, by QueueName."""

    def __init__(self, sqs: Any, queue_urls: dict[str, str], store: MetricStore,
                 interval_s: float = 2.0) -> None:
        super().__init__(name="queue-sampler", daemon=True)
        self.sqs = sqs
        self.queue_urls = dict(queue_urls)
        self.store = store
        self.interval_s = interval_s
        self._stop = threading.Event()

    def sample(self) -> None:
        for url in self.queue_urls.values():
            name = url.rstrip("/").rsplit("/", 1)[-1]
            counts = in_process_counts(name)
            if counts is None:
                try:
                    attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                    )["Attributes"]
                except Exception as exc:  # the endpoint is down: missing data, as in AWS
                    log.debug("queue sample of %s failed: %r", name, exc)
                    continue
                counts = (int(attrs.get("ApproximateNumberOfMessages", 0)),
                          int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)))
            dims = {"QueueName": name}
            self.store.put("AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, counts[0])
            self.store.put("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", dims, counts[1])
            age = oldest_message_age(name)
            if age is not None:
                self.store.put("AWS/SQS", "ApproximateAgeOfOldestMessage", dims, age)

    def run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()


def _in_process_queue(queue_name: str) -> Any:
    """The queue in the in-process moto store; None when moto is elsewhere."""
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sqs.models import sqs_backends

        for backend in sqs_backends[DEFAULT_ACCOUNT_ID].values():
            queue = backend.queues.get(queue_name)
            if queue is not None:
                return queue
    except Exception:
        return None
    return None


def in_process_counts(queue_name: str) -> tuple[int, int] | None:
    """(visible, not visible) of an in-process moto queue, read from its store: through
    the API, a round of samples was ≈ 8 ms of the interpreter the requests share, every
    2 s. The same counts GetQueueAttributes answers. None when moto is elsewhere."""
    queue = _in_process_queue(queue_name)
    if queue is None:
        return None
    try:
        return (int(queue.approximate_number_of_messages),
                int(queue.approximate_number_of_messages_not_visible))
    except Exception:  # moto's layout changed: the API answers instead
        return None


def oldest_message_age(queue_name: str) -> float | None:
    """Seconds since the oldest message of an in-process moto queue was sent (SQS has
    no attribute for it; CloudWatch has the metric). None when moto is elsewhere."""
    queue = _in_process_queue(queue_name)
    if queue is None:
        return None
    try:
        sent = [int(m.sent_timestamp or 0) for m in list(queue._messages)]
    except Exception:
        return None
    return max(0.0, time.time() - min(sent) / 1000) if sent else 0.0


# ---------------------------------------------------------------- alarms

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
_WORDS = {"GreaterThanThreshold": "greater than",
          "GreaterThanOrEqualToThreshold": "greater than or equal to",
          "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to"}


def severity_of(resource: dict[str, Any], description: str) -> str:
    """Lenient: Metadata Severity, a Severity tag, or "[page]"/"severity: page" in the
    description; "ticket" otherwise."""
    meta = resource.get("Metadata") or {}
    props = resource.get("Properties") or {}
    candidates = [meta.get("Severity"), meta.get("severity")]
    candidates += [t.get("Value") for t in props.get("Tags") or []
                   if isinstance(t, dict) and str(t.get("Key", "")).lower() == "severity"]
    for value in candidates:
        if isinstance(value, str) and value.lower() in SEVERITIES:
            return value.lower()
    match = re.search(r"\[(page|ticket)\]|severity[:=]\s*(page|ticket)", description, re.I)
    if match:
        return (match.group(1) or match.group(2)).lower()
    return DEFAULT_SEVERITY


@dataclass
class AlarmDefinition:
    logical_id: str
    name: str
    description: str
    severity: str
    props: dict[str, Any]  # resolved properties
    composite: bool = False  # AWS::CloudWatch::CompositeAlarm: AlarmRule over other alarms

    @property
    def period(self) -> int:
        if self.props.get("Period"):
            return int(self.props["Period"])
        periods = [int(q.get("Period") or (q.get("MetricStat") or {}).get("Period", 0))
                   for q in self.props.get("Metrics") or []]
        return max([p for p in periods if p] or [60])

    @property
    def evaluation_periods(self) -> int:
        return int(self.props.get("EvaluationPeriods", 1))

    @property
    def datapoints_to_alarm(self) -> int:
        return int(self.props.get("DatapointsToAlarm") or self.evaluation_periods)

    @property
    def treat_missing(self) -> str:
        return str(self.props.get("TreatMissingData") or "missing")


@dataclass
class AlarmState:
    value: str = INSUFFICIENT
    reason: str = "Unchecked: Initial alarm creation"
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    history: list[dict[str, Any]] = field(default_factory=list)


def alarm_definitions(template: Template, ctx: ResolveContext) -> list[AlarmDefinition]:
    """The template's alarms whose Condition holds, with properties resolved against
    the running stack (queue names, function names, the API's id)."""
    found = []
    resources = {**template.resources_of_type("AWS::CloudWatch::Alarm"),
                 **template.resources_of_type("AWS::CloudWatch::CompositeAlarm")}
    for logical_id, resource in resources.items():
        condition = resource.get("Condition")
        if condition and not ctx.conditions.get(condition, False):
            continue
        try:
            props = resolve(resource.get("Properties") or {}, ctx)
        except Exception as exc:  # a reference the local stack does not make
            log.warning("alarm %s is not evaluated locally: %s", logical_id, exc)
            continue
        name = str(props.get("AlarmName") or ctx.refs.get(logical_id)
                   or f"{ctx.stack_name}-{logical_id}")
        description = str(props.get("AlarmDescription") or "")
        found.append(AlarmDefinition(
            logical_id, name, description, severity_of(resource, description), props,
            composite=resource.get("Type") == "AWS::CloudWatch::CompositeAlarm"))
    # composites last: they read the states of the others, decided first in each round
    return sorted(found, key=lambda d: d.composite)


_SEARCH = re.compile(r"SEARCH\(\s*'((?:[^'])*)'\s*,\s*'(\w+)'\s*,\s*(\d+)\s*\)")


class Evaluator:
    """Evaluates alarm definitions on a MetricStore; keeps each alarm's state."""

    def __init__(self, definitions: list[AlarmDefinition], store: MetricStore,
                 on_transition: Callable[[AlarmDefinition, AlarmState], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.definitions = definitions
        self.store = store
        self.on_transition = on_transition
        self.clock = clock
        self.states = {d.name: AlarmState() for d in definitions}
        self._lock = threading.Lock()
        # each alarm's datapoints of periods closed long enough not to change (a percentile
        # over a few minutes of requests is a sort of every sample: taken once, not every 2 s)
        self._closed: dict[str, dict[tuple[float, float], float | None]] = {}
        for definition in definitions:  # parsed here, not in the evaluating thread
            if definition.composite:
                _compiled_rule(str(definition.props.get("AlarmRule", "")))
            for query in definition.props.get("Metrics") or []:
                if isinstance(query, dict) and query.get("Expression"):
                    _compiled_expression(str(query["Expression"]))

    # one alarm's datapoints, newest last
    def datapoints(self, alarm: AlarmDefinition, now: float) -> list[tuple[float, float | None]]:
        period = alarm.period
        end = (math.floor(now / period) + 1) * period  # the current period's end
        windows = [(end - (i + 1) * period, end - i * period)
                   for i in reversed(range(alarm.evaluation_periods))]
        known = self._closed.get(alarm.name, {})
        closed: dict[tuple[float, float], float | None] = {}
        points: list[tuple[float, float | None]] = []
        for window in windows:
            value = known[window] if window in known else self._value(alarm, *window)
            if window[1] <= now - SETTLED_S:
                closed[window] = value
            points.append((window[0], value))
        self._closed[alarm.name] = closed  # only the windows still evaluated
        return points

    def _value(self, alarm: AlarmDefinition, start: float, end: float) -> float | None:
        props = alarm.props
        if props.get("Metrics"):
            return self._math(props["Metrics"], start, end)
        stat = props.get("ExtendedStatistic") or props.get("Statistic") or "Average"
        dims = {d["Name"]: str(d["Value"]) for d in props.get("Dimensions") or []}
        return statistic(self.store.samples(props["Namespace"], props["MetricName"], dims,
                                            start, end), stat)

    def _math(self, queries: list[dict[str, Any]], start: float, end: float) -> float | None:
        values: dict[str, Any] = {}
        result: float | None = None
        for query in queries:  # in order: expressions name the queries before them
            if "MetricStat" in query:
                stat = query["MetricStat"]
                metric = stat["Metric"]
                dims = {d["Name"]: str(d["Value"]) for d in metric.get("Dimensions") or []}
                value = statistic(self.store.samples(metric["Namespace"], metric["MetricName"],
                                                     dims, start, end), stat["Stat"])
            else:
                value = self._expression(str(query["Expression"]), values, start, end)
            values[query["Id"]] = value
            if query.get("ReturnData", True):
                result = value
        return result

    def _expression(self, text: str, values: dict[str, Any], start: float,
                    end: float) -> float | None:
        tree, searches = _compiled_expression(text)
        names = dict(values)
        for index, (query, stat) in enumerate(searches):
            names[f"__search{index}"] = self._search(query, stat, start, end)
        value = _evaluate(tree.body, names)
        if isinstance(value, list):  # a bare SEARCH: the first series, as one alarm reads
            return value[0] if value else None
        return None if value is None else float(value)

    def _search(self, query: str, stat: str, start: float, end: float) -> list[float]:
        schema = re.match(r"\s*\{([^}]*)\}", query)
        if not schema:
            return []
        namespace = schema.group(1).split(",")[0].strip()
        terms = dict(re.findall(r'(\w+)="([^"]*)"', query[schema.end():]))
        name = terms.pop("MetricName", "")
        out = []
        for dims in self.store.search(namespace, name, terms):
            value = statistic(self.store.samples(namespace, name, dims, start, end), stat)
            if value is not None:
                out.append(value)
        return out

    def evaluate(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        for alarm in self.definitions:
            try:
                value, reason = self._decide(alarm, now)
            except Exception as exc:  # one alarm the evaluator cannot read stays put
                log.warning("alarm %s not evaluated: %r", alarm.name, exc)
                continue
            if value is None:
                continue
            with self._lock:
                state = self.states[alarm.name]
                if state.value == value:
                    continue
                at = datetime.fromtimestamp(now, UTC)
                state.history.append({"at": at.isoformat(), "from": state.value, "to": value,
                                      "reason": reason})
                del state.history[:-HISTORY]
                previous = state.value
                state.value, state.reason, state.since = value, reason, at
            # the console hears of alarms firing and clearing, not of the first evaluation
            if value == ALARM or previous == ALARM:
                log.info("alarm %s: %s (%s)", alarm.name, value, reason)
            if self.on_transition is not None:
                try:
                    self.on_transition(alarm, state)
                except Exception as exc:
                    log.warning("alarm %s: state not mirrored: %r", alarm.name, exc)

    def _decide(self, alarm: AlarmDefinition, now: float) -> tuple[str | None, str]:
        """The new state and CloudWatch's kind of reason; None: leave the state be."""
        if alarm.composite:
            return self._rule(alarm)
        points = self.datapoints(alarm, now)
        threshold = float(alarm.props.get("Threshold", 0))
        compare = _COMPARE[str(alarm.props.get("ComparisonOperator"))]
        missing = alarm.treat_missing
        present = [(t, v) for t, v in points if v is not None]
        n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
        if not present:
            if missing == "ignore":
                return None, ""
            if missing == "breaching":
                return ALARM, f"no datapoints in the last {n} period(s), treated as breaching"
            if missing == "notBreaching":
                return OK, f"no datapoints in the last {n} period(s), treated as not breaching"
            return INSUFFICIENT, f"Insufficient Data: no datapoints in the last {n} period(s)"
        breaching = sum(1 for _, v in present if compare(v, threshold))
        if missing == "breaching":
            breaching += len(points) - len(present)
        shown = ", ".join(
            f"{v:g} ({datetime.fromtimestamp(t, UTC):%d/%m/%y %H:%M:%S})" for t, v in present[-5:])
        words = _WORDS.get(str(alarm.props.get("ComparisonOperator")), "compared with")
        if breaching >= m:
            return ALARM, (f"Threshold Crossed: {breaching} out of the last {n} datapoints "
                           f"[{shown}] was {words} the threshold ({threshold:g}) "
                           f"(minimum {m} datapoint(s) for OK -> ALARM transition).")
        return OK, (f"Threshold Crossed: {len(present) - breaching} out of the last {n} "
                    f"datapoints [{shown}] was not {words} the threshold ({threshold:g}) "
                    f"(minimum {n - m + 1} datapoint(s) for ALARM -> OK transition).")

    def _rule(self, alarm: AlarmDefinition) -> tuple[str | None, str]:
        """A composite alarm's AlarmRule (ALARM(x), OK(x), INSUFFICIENT_DATA(x), AND, OR,
        NOT, TRUE, FALSE, parentheses; x a name or an ARN): ALARM when it holds."""
        rule = str(alarm.props.get("AlarmRule", ""))
        tree, terms = _compiled_rule(rule)
        with self._lock:
            states = {name: state.value for name, state in self.states.items()}
        values = {f"__term{i}": states.get(name) == wanted for i, (wanted, name) in
                  enumerate(terms)}
        if _boolean(tree.body, values):
            return ALARM, f"the rule holds: {rule}"
        return OK, f"the rule does not hold: {rule}"

    def snapshot(self) -> list[dict[str, Any]]:
        """Every alarm: firing first, then by name."""
        with self._lock:
            rows = [{"name": d.name, "logical_id": d.logical_id, "severity": d.severity,
                     "description": d.description, "state": self.states[d.name].value,
                     "since": self.states[d.name].since.isoformat(),
                     "reason": self.states[d.name].reason,
                     "history": list(self.states[d.name].history)}
                    for d in self.definitions]
        return sorted(rows, key=lambda r: (r["state"] != ALARM, r["name"]))


# Expressions and rules are parsed once each, when the evaluator is made (in the thread
# that starts the stack), never in the evaluation loop: CPython 3.11 before 3.11.8 keeps
# ast.parse's recursion depth in shared state (gh-106905), so two threads parsing at once
# can fail with "AST constructor recursion depth mismatch".
_RULE_TERM = re.compile(r"\b(ALARM|OK|INSUFFICIENT_DATA)\s*\(\s*\"?([^)\"]+?)\"?\s*\)")


@functools.cache
def _compiled_expression(text: str) -> tuple[ast.Expression, tuple[tuple[str, str], ...]]:
    """A metric math expression with each SEARCH(...) replaced by a name __searchN."""
    searches: list[tuple[str, str]] = []

    def search(match: re.Match[str]) -> str:
        searches.append((match.group(1), match.group(2)))
        return f"__search{len(searches) - 1}"

    return ast.parse(_SEARCH.sub(search, text), mode="eval"), tuple(searches)


@functools.cache
def _compiled_rule(rule: str) -> tuple[ast.Expression, tuple[tuple[str, str], ...]]:
    """A composite AlarmRule with each ALARM(x)/OK(x)/INSUFFICIENT_DATA(x) replaced by a
    name __termN standing for (state, alarm name)."""
    terms: list[tuple[str, str]] = []

    def term(match: re.Match[str]) -> str:
        terms.append((match.group(1), match.group(2).strip().rsplit(":alarm:", 1)[-1]))
        return f"__term{len(terms) - 1}"

    text = _RULE_TERM.sub(term, rule)
    text = re.sub(r"\bAND\b", " and ", re.sub(r"\bOR\b", " or ", re.sub(
        r"\bNOT\b", " not ", text)))
    text = re.sub(r"\bTRUE\b", "True", re.sub(r"\bFALSE\b", "False", text))
    return ast.parse(text, mode="eval"), tuple(terms)


def _boolean(node: ast.AST, values: dict[str, bool]) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in values:
        return values[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _boolean(node.operand, values)
    if isinstance(node, ast.BoolOp):
        results = [_boolean(v, values) for v in node.values]
        return all(results) if isinstance(node.op, ast.And) else any(results)
    raise ValueError(f"unsupported alarm rule: {ast.dump(node)[:80]}")


_BINARY: dict[type, Callable[[float, float], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Eq: operator.eq, ast.NotEq: operator.ne,
}


def _evaluate(node: ast.AST, names: dict[str, Any]) -> Any:
    """Metric math on one period's values: arithmetic, comparisons, IF, SUM, MAX, MIN,
    AVG. A missing operand makes the result missing (None)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _evaluate(node.operand, names)
        return None if value is None else -value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, names), _evaluate(node.right, names)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Div) and right == 0:
            return None
        return float(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _BINARY:
        left, right = _evaluate(node.left, names), _evaluate(node.comparators[0], names)
        if left is None or right is None:
            return None
        return 1.0 if _BINARY[type(node.ops[0])](left, right) else 0.0
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _call(node.func.id.upper(), [_evaluate(a, names) for a in node.args])
    raise ValueError(f"unsupported metric math: {ast.dump(node)[:80]}")


def _call(fn: str, args: list[Any]) -> Any:
    if fn == "IF" and len(args) in (2, 3):
        if args[0] is None:
            return None
        return args[1] if args[0] else (args[2] if len(args) == 3 else None)
    if fn in ("SUM", "MAX", "MIN", "AVG") and len(args) == 1:
        series = args[0] if isinstance(args[0], list) else [args[0]]
        series = [v for v in series if v is not None]
        if not series:
            return None
        if fn == "SUM":
            return float(sum(series))
        if fn == "MAX":
            return float(max(series))
        if fn == "MIN":
            return float(min(series))
        return float(sum(series) / len(series))
    raise ValueError(f"unsupported metric math function {fn}")


# ---------------------------------------------------------------- the runtime's part


class CloudWatchMirror:
    """The alarms in the endpoint's CloudWatch, so describe_alarms answers locally too."""

    def __init__(self, cloudwatch: Any, composites: bool = True) -> None:
        self.cloudwatch = cloudwatch
        self.composites = composites  # False: the endpoint has no PutCompositeAlarm
        self.absent: set[str] = set()  # alarms the endpoint would not take

    def create(self, alarm: AlarmDefinition) -> None:
        if alarm.composite:
            # moto 5.2 has no PutCompositeAlarm (a 500 with a traceback): such a composite
            # is evaluated here and shown by `GET /_pilot/alarms`, not by describe_alarms
            if not self.composites:
                self.absent.add(alarm.name)
                return
            try:
                self.cloudwatch.put_composite_alarm(
                    AlarmName=alarm.name, AlarmRule=str(alarm.props.get("AlarmRule", "")),
                    AlarmDescription=self._description(alarm), ActionsEnabled=False)
            except Exception:
                self.absent.add(alarm.name)
                raise
            return
        keys = ("Namespace", "MetricName", "Statistic", "ExtendedStatistic", "Period",
                "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
                "TreatMissingData", "Unit", "EvaluateLowSampleCountPercentile")
        params: dict[str, Any] = {k: alarm.props[k] for k in keys if k in alarm.props}
        if alarm.props.get("Dimensions"):
            params["Dimensions"] = [{"Name": d["Name"], "Value": str(d["Value"])}
                                    for d in alarm.props["Dimensions"]]
        if alarm.props.get("Metrics"):
            params["Metrics"] = alarm.props["Metrics"]
        # no actions: locally there is no topic to notify (the state is what matters)
        self.cloudwatch.put_metric_alarm(AlarmName=alarm.name,
                                         AlarmDescription=self._description(alarm),
                                         ActionsEnabled=False, **params)

    @staticmethod
    def _description(alarm: AlarmDefinition) -> str:
        if re.search(r"\[(page|ticket)\]", alarm.description):  # what the shipped code reads
            return alarm.description
        return f"[{alarm.severity}] {alarm.description}".strip()

    def transition(self, alarm: AlarmDefinition, state: AlarmState) -> None:
        if alarm.name in self.absent:
            return
        self.cloudwatch.set_alarm_state(AlarmName=alarm.name, StateValue=state.value,
                                        StateReason=state.reason[:1023])

    def publish(self, store: MetricStore, start: float, end: float) -> int:
        """The local metrics of [start, end) as CloudWatch datapoints (one statistic set
        per series), so get_metric_data answers the console as in AWS."""
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        stamp = datetime.fromtimestamp(end, UTC)
        for (namespace, name, dims), values in store.window(start, end).items():
            by_namespace.setdefault(namespace, []).append({
                "MetricName": name, "Timestamp": stamp,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims)],
                "StatisticValues": {"SampleCount": float(len(values)), "Sum": sum(values),
                                    "Minimum": min(values), "Maximum": max(values)}})
        sent = 0
        for namespace, data in by_namespace.items():
            # (AWS/ namespaces are reserved in AWS; only the local endpoint gets these)
            for first in range(0, len(data), 500):
                self.cloudwatch.put_metric_data(Namespace=namespace,
                                                MetricData=data[first:first + 500])
                sent += len(data[first:first + 500])
        return sent


class LocalAlarms:
    """What `pilot run` starts: the metric store, the queue sampler, the evaluator
    thread and the CloudWatch mirror."""

    PUBLISH_S = 10.0  # how often the local metrics go to the endpoint's CloudWatch

    def __init__(self, definitions: list[AlarmDefinition], store: MetricStore,
                 cloudwatch: Any | None, interval_s: float = 2.0,
                 composites: bool = True) -> None:
        self.store = store
        self._published = time.time()
        self.mirror = (CloudWatchMirror(cloudwatch, composites) if cloudwatch is not None
                       else None)
        self.evaluator = Evaluator(definitions, store, on_transition=self._mirror)
        self.interval_s = interval_s
        self.sampler: QueueSampler | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alarms", daemon=True)

    def _mirror(self, alarm: AlarmDefinition, state: AlarmState) -> None:
        if self.mirror is not None:
            self.mirror.transition(alarm, state)

    def start(self, sampler: QueueSampler | None = None) -> LocalAlarms:
        if self.mirror is not None:
            for alarm in self.evaluator.definitions:
                try:
                    self.mirror.create(alarm)
                except Exception as exc:
                    log.warning("alarm %s not created in CloudWatch: %r", alarm.name, exc)
        self.sampler = sampler
        if sampler is not None:
            sampler.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.evaluator.evaluate()
            if time.time() - self._published >= self.PUBLISH_S:
                self.publish()

    def publish(self) -> None:
        now = time.time()
        if self.mirror is not None:
            try:
                self.mirror.publish(self.store, self._published, now)
            except Exception as exc:  # the endpoint is down: the next round tries again
                log.debug("metrics not published: %r", exc)
                return
        self._published = now

    def evaluate_now(self) -> None:
        """Sample the queues and evaluate at once (tests, `pilot alarms --now`)."""
        if self.sampler is not None:
            self.sampler.sample()
        self.evaluator.evaluate()
        self.publish()

    def stop(self) -> None:
        self._stop.set()
        if self.sampler is not None:
            self.sampler.stop()
        self._thread.join(timeout=5)

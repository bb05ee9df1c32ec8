"""Every custom metric the service emits, in one place.

Code records a metric only through `observability.record_metric(name, value)`, which
refuses a name that is not here, so this table is the complete list of what reaches
CloudWatch (as EMF lines in the functions' logs, namespace `AmazonPilot`, one dimension
`service`: the emitting function's service name, e.g. `worker-default`).

Readers: the CloudWatch dashboard in template.yaml (tests/unit/test_dashboard.py
checks every widget names a metric from here and every metric here has a widget or a
stated reason), the local operator views, and docs/slos.md.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "AmazonPilot"
DIMENSIONS = ("service",)  # Powertools adds the service of the function that flushes


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str  # a CloudWatch unit name (aws_lambda_powertools MetricUnit values)
    description: str
    emitted_by: tuple[str, ...]  # the module(s) recording it
    namespace: str = NAMESPACE
    dimensions: tuple[str, ...] = DIMENSIONS
    # why the dashboard has no widget for it (empty: it must have one)
    no_widget_reason: str = ""


_CONSUMER = ("amazon_pilot.platform.consumer",)
_FETCH = ("amazon_pilot.tracking.service",)
_STEPS = ("a diagnosis split of fetch runs' duration (bench/bench_refresh.py prints it); "
          "the dashboard shows the runs' outcomes")

CATALOG: tuple[MetricSpec, ...] = (
    # ------------------------------------------------------------ the job consumers
    MetricSpec("JobsProcessed", "Count", "Jobs that ran to success (one per message)",
               _CONSUMER),
    MetricSpec("JobFailures", "Count",
               "Job attempts that failed (retried later, or dead-lettered on the last "
               "receive)", _CONSUMER),
    MetricSpec("DuplicatesDeferred", "Count",
               "Deliveries put back because another delivery of the same job held its "
               "claim", _CONSUMER),
    MetricSpec("DeadLettered", "Count",
               "Messages the consumer moved to a DLQ with their failure reason", _CONSUMER),
    # ------------------------------------------------------------ product fetches
    MetricSpec("ProductsFetched", "Count",
               "Products asked of the scraper in a fetch run (retries included)", _FETCH),
    MetricSpec("ProductsNotFound", "Count",
               "Products the scraper reported as not found (or no URL could be built)",
               _FETCH),
    MetricSpec("SnapshotsIngested", "Count",
               "New snapshots stored (replayed ones excluded)", _FETCH),
    MetricSpec("AlertsRaised", "Count",
               "Alerts raised by the snapshots of a fetch run", _FETCH),
    MetricSpec("ApifyItems", "Count", "Dataset items an Apify run returned", _FETCH),
    MetricSpec("ApifyCostUsd", "None",
               "What Apify charged for a run, in US dollars (runs that failed included)",
               _FETCH),
    # where a fetch run's time goes (summed per invocation, like every metric here)
    MetricSpec("ActorWaitTime", "Milliseconds",
               "Time a fetch waited for its actor run to finish (the start included)", _FETCH,
               no_widget_reason=_STEPS),
    MetricSpec("DatasetReadTime", "Milliseconds",
               "Time a fetch spent reading and parsing its run's dataset", _FETCH,
               no_widget_reason=_STEPS),
    MetricSpec("FetchStoreTime", "Milliseconds",
               "Time a fetch spent storing: normalized snapshots written, latest moved, "
               "change detection, alerts, the run's record", _FETCH, no_widget_reason=_STEPS),
    MetricSpec("FetchNotifyTime", "Milliseconds",
               "Time a fetch spent handing its new alerts to delivery", _FETCH,
               no_widget_reason=_STEPS),
    # ------------------------------------------------------------ notifications
    MetricSpec("AlertsDelivered", "Count",
               "Messages a channel accepted (alerts, digests and channel tests)",
               ("amazon_pilot.notifications.service",)),
    MetricSpec("DeliveryFailures", "Count",
               "Delivery attempts a channel refused or that could not be made",
               ("amazon_pilot.notifications.service",)),
    # ------------------------------------------------------------ the LLM
    MetricSpec("LLMPromptTokens", "Count", "Prompt tokens of the LLM calls made (cache "
               "misses; cached answers cost nothing)", ("amazon_pilot.adapters.llm",)),
    MetricSpec("LLMCompletionTokens", "Count", "Completion tokens of the LLM calls made",
               ("amazon_pilot.adapters.llm",)),
    MetricSpec("LLMCostUsd", "None", "What the LLM calls cost, in US dollars, at the "
               "price table of adapters/llm.py (models not in it count 0)",
               ("amazon_pilot.adapters.llm",)),
    # ------------------------------------------------------------ the synthetic check
    MetricSpec("ProbeSuccess", "Count",
               "1 when the outside probe signed in and read a product, 0 when it failed",
               ("amazon_pilot.platform.probe",)),
    MetricSpec("ProbeLatency", "Milliseconds",
               "How long the probe's sign-in and product read took together",
               ("amazon_pilot.platform.probe",)),
)

BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOG}


def spec(name: str) -> MetricSpec:
    """The catalogued metric; a KeyError names the catalog when it is not there."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not in platform/metrics_catalog.py") from None

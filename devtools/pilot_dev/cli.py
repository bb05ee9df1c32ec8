"""`pilot`: run the service locally and operate it.

Every failure a user can cause ends in one line naming the problem and the fix, and
a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pilot_dev.runtime.template import TemplateError, load_template, repo_root


def data_dir() -> Path:
    """Where a stack keeps its database, keys and state: `--data-dir`, PILOT_DATA_DIR, or
    .pilot in the checkout. Two stacks run from one checkout with two data folders."""
    configured = os.environ.get("PILOT_DATA_DIR")
    return Path(configured).resolve() if configured else repo_root() / ".pilot"


def _state_file() -> Path:
    # PILOT_STATE_FILE: the chaos tests give each stack its own, inside their work folder
    return Path(os.environ.get("PILOT_STATE_FILE") or data_dir() / "stack.json")


STATE_FILE = _state_file()  # recomputed by main() once --data-dir is known


def operator_token_file() -> Path:
    """Next to the state file: each stack that records itself has its own token."""
    return STATE_FILE.parent / "operator-token"


class CliError(Exception):
    """Printed as one line; exit code 2."""


# ---------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    import logging

    from pilot_dev.runtime.heap import bound_malloc
    from pilot_dev.runtime.stack import Stack, StackConfig

    bound_malloc()  # before the runtime's threads allocate (runtime/heap.py)
    # The libraries' loggers stay at WARNING, as in Lambda: at INFO, Mangum alone would
    # print a second access line for every request. The runtime's own say more.
    logging.basicConfig(level=logging.WARNING, format="pilot: %(message)s")
    logging.getLogger("pilot").setLevel(logging.INFO)
    config = StackConfig.from_env(
        port=args.port, host=args.host, pollers=not args.no_workers,
        schedules=not args.no_schedules,
        secrets_only=not args.plain_settings,
        enforce_iam=not (args.no_iam or args.plain_settings),
    )
    config.workers = None if args.workers is None else max(0, args.workers)  # None: cores
    config.http_processes = (None if args.http_processes is None  # None: cores
                             else max(1, args.http_processes))
    if args.template:
        config.template_path = Path(args.template)
    if args.from_build is not None:
        config.from_build = Path(args.from_build)
    stack = Stack(config)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stack.start()
    stack.write_operator_token(operator_token_file())
    _write_state(stack)
    info = stack.describe()
    print(f"Amazon Pilot is running (ready in {stack.timings.get('http', 0):.2f} s)")
    print(f"  dashboard      {info['api']}/")
    print(f"  API            {info['api']}/v1   (docs: {info['api']}/v1/docs)")
    print(f"  health         {info['api']}/v1/health")
    print(f"  database       {info['database']}")
    print(f"  AWS endpoint   {info['aws_endpoint']}   (IAM {info['iam']}; settings: "
          f"{info['settings']})")
    if config.from_build is not None:
        print(f"  functions      from {config.from_build} (a Python 3.13 process each)")
    if info.get("worker_processes"):
        print(f"  queue workers  {len(info['worker_processes'])} process(es), pids "
              f"{', '.join(map(str, info['worker_processes']))}   (--workers N)")
    if info.get("http_processes"):
        print(f"  HTTP           this process and {len(info['http_processes'])} more, pids "
              f"{', '.join(str(p['pid']) for p in info['http_processes'])}"
              "   (--http-processes N)")
    for name, url in info["standins"].items():
        print(f"  {name + ' stand-in':<14} {url}   (sandbox data)")
    for name, url in info["queues"].items():
        print(f"  queue          {name:<12} {url}")
    for name, at in info["schedules"].items():
        print(f"  schedule       {name:<20} next {at}")
    print("  logs           pilot logs FUNCTION --follow   access log: pilot logs api"
          "   queues: pilot queues")
    print(f"  alarms         {info['alarms']} of the template's, evaluated on the local metrics:"
          " pilot alarms   dashboard: /admin/operations")
    print("Ctrl-C stops; work in hand is finished first.", flush=True)
    threading.Thread(target=_warm_and_settle, args=(stack,), name="warm", daemon=True).start()
    while not stop.is_set():
        stop.wait(0.5)
    print("stopping: finishing in-flight work ...", flush=True)
    stack.stop()
    STATE_FILE.unlink(missing_ok=True)
    operator_token_file().unlink(missing_ok=True)
    print("stopped.")
    return 0


def _warm_and_settle(stack: Any) -> None:
    """Every function loaded, then the start-up heap frozen (runtime/heap.py)."""
    from pilot_dev.runtime.heap import settle

    stack.warm()
    settle()


def _write_state(stack: Any) -> None:
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "api": stack.url,
        "database_url": stack.database_url,
        "aws_endpoint_url": stack.endpoint_url,
        "region": stack.config.region,
        "stack_name": stack.config.stack_name,
        "functions": stack.function_names,
        "queues": stack.queue_urls,
        "api_access_log_group": stack.access_log_group,
        "operator_token_file": str(operator_token_file()),  # for /_pilot/... (0600)
        "environments": stack.environments,
        # the local endpoint's operator identity: with IAM enforced, the commands below
        # (queues, logs, redrive) must sign as it (local, throwaway credentials)
        "operator": stack.operator_env,
        "pid": os.getpid(),
    }
    STATE_FILE.write_text(json.dumps(state, indent=2))


def running_state() -> dict[str, Any] | None:
    if not STATE_FILE.exists():
        return None
    state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None
    return state


def require_running() -> dict[str, Any]:
    state = running_state()
    if state is None:
        raise CliError("no local stack is running; start one with `pilot run` in another shell")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    return state


def operator_headers() -> dict[str, str]:
    """The header the runtime's /_pilot/... endpoints require (see `pilot run`)."""
    path = operator_token_file()
    try:
        token = path.read_text().strip()
    except OSError:
        raise CliError(f"cannot read {path}; restart `pilot run`") from None
    return {"X-Pilot-Operator-Token": token}


def aws_client(state: dict[str, Any], service: str) -> Any:
    import boto3

    operator = state.get("operator") or {}
    return boto3.session.Session(
        aws_access_key_id=operator.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=operator.get("AWS_SECRET_ACCESS_KEY"),
    ).client(
        service,
        region_name=state["region"],
        endpoint_url=state["aws_endpoint_url"],
    )


# ---------------------------------------------------------------- invoke


def cmd_invoke(args: argparse.Namespace) -> int:
    template = load_template(Path(args.template) if args.template else None)
    spec = template.function(args.function)  # raises TemplateError with the known names
    event = _read_event(args.event)
    state = running_state()
    if state is not None:
        require_running()  # the endpoint's test credentials
        os.environ.update({k: v for k, v in state["environments"][spec.logical_id].items()})
        from pilot_dev.runtime.invoker import FunctionHost

        host = FunctionHost(state["functions"], state["environments"], template.functions)
        result = host.invoke(spec.logical_id, event)
    else:
        # Nothing running: bring up just what a function needs, then tear it down.
        from pilot_dev.runtime.stack import Stack, StackConfig, free_port

        config = StackConfig.from_env(pollers=False, schedules=False, port=free_port())
        stack = Stack(config).start(serve_in_thread=False)
        try:
            assert stack.host is not None
            result = stack.host.invoke(spec.logical_id, event)
        finally:
            stack.stop()
    print(json.dumps(result, indent=2, default=str))
    return 0


def _read_json(path: str, what: str, missing_hint: str = "") -> Any:
    """Read JSON from a file (or stdin for -), with one-line errors naming the file."""
    try:
        raw = sys.stdin.read() if path == "-" else Path(path).read_text()
    except FileNotFoundError as exc:
        raise CliError(f"{what} {path} not found{missing_hint}") from exc
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(f"{what} {path} is not valid JSON: {exc}") from exc


def _read_event(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    event = _read_json(path, "event file", "; samples are in events/")
    if not isinstance(event, dict):
        raise CliError(f"event file {path} must hold a JSON object")
    return event


# ---------------------------------------------------------------- logs


def parse_since(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise CliError(f"--since {text!r}: use a number and a unit, e.g. 30s, 10m, 2h, 1d")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def cmd_logs(args: argparse.Namespace) -> int:
    state = require_running()
    if args.function == "api":
        group = state.get("api_access_log_group")
        if not group:
            raise CliError("the template declares no access log for the HTTP API "
                           "(AccessLogSettings)")
    else:
        template = load_template(Path(args.template) if args.template else None)
        spec = template.function(args.function)
        group = f"/aws/lambda/{state['functions'][spec.logical_id]}"
    logs = aws_client(state, "logs")
    start = int((datetime.now(UTC) - parse_since(args.since)).timestamp() * 1000)
    seen: set[str] = set()
    while True:
        token = None
        while True:
            kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start}
            if token:
                kwargs["nextToken"] = token
            try:
                page = logs.filter_log_events(**kwargs)
            except logs.exceptions.ResourceNotFoundException:
                page = {"events": []}
            for event in page.get("events", []):
                if event["eventId"] not in seen:
                    seen.add(event["eventId"])
                    print(event["message"], flush=True)
            token = page.get("nextToken")
            if not token:
                break
        if not args.follow:
            return 0
        time.sleep(1.0)


# ---------------------------------------------------------------- queues


def _queue_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    sqs = aws_client(state, "sqs")
    rows = []
    queues = state["queues"]
    for logical_id, url in queues.items():
        if logical_id.endswith("DLQ"):
            continue
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        dlq_depth = None
        redrive = attrs.get("RedrivePolicy")
        if redrive:
            dlq_name = json.loads(redrive)["deadLetterTargetArn"].split(":")[-1]
            dlq_url = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
            dlq_depth = int(sqs.get_queue_attributes(
                QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"])
        rows.append({
            "queue": logical_id.removesuffix("Queue").lower(),
            "depth": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "dlq_depth": dlq_depth,
        })
    return rows


def cmd_queues(args: argparse.Namespace) -> int:
    if getattr(args, "stage", None):
        return _stage_queues(args)
    state = require_running()
    rows = _queue_rows(state)
    # jobs committed but not yet sent (the outbox): SQS refused them, or the relay is due
    _database_for_reading(state["database_url"])
    from amazon_pilot.platform.outbox import pending_by_priority

    waiting = pending_by_priority()
    for row in rows:
        row["outbox"] = waiting.get(row["queue"], 0)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'queue':<10} {'outbox':>7} {'depth':>7} {'in-flight':>10} {'dlq':>6}")
    for row in rows:
        print(
            f"{row['queue']:<10} {row['outbox']:>7} {row['depth']:>7} {row['in_flight']:>10} "
            f"{row['dlq_depth']!s:>6}"
        )
    return 0


def redrive(sqs: Any, source_url: str, dlq_url: str, limit: int | None = None) -> int:
    """Move messages back by receive/send/delete: not every endpoint has the redrive API."""
    moved = 0
    while limit is None or moved < limit:
        batch = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                    MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            break
        for message in batch:
            attributes = {k: v for k, v in (message.get("MessageAttributes") or {}).items()
                          if k not in ("failure_reason", "source_message_id", "receive_count")}
            sqs.send_message(QueueUrl=source_url, MessageBody=message["Body"],
                             MessageAttributes=attributes)
            # delete only after the copy is safely in the source queue
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def cmd_redrive(args: argparse.Namespace) -> int:
    if getattr(args, "stage", None) or getattr(args, "ids", None):
        return _console_redrive(args)
    state = require_running()
    wanted = args.queue.lower()
    source_id = next((k for k in state["queues"]
                      if k.lower() in (wanted, f"{wanted}queue") and not k.endswith("DLQ")), None)
    if source_id is None:
        names = sorted(k.removesuffix("Queue").lower() for k in state["queues"]
                       if not k.endswith("DLQ"))
        raise CliError(f"no queue {args.queue!r}; choose one of {', '.join(names)}")
    sqs = aws_client(state, "sqs")
    source_url = state["queues"][source_id]
    redrive_policy = sqs.get_queue_attributes(
        QueueUrl=source_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    dlq_name = json.loads(redrive_policy["RedrivePolicy"])["deadLetterTargetArn"].split(":")[-1]
    moved = redrive(sqs, source_url, sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"])
    print(f"moved {moved} message(s) from {dlq_name} back to {source_id}")
    return 0


# ---------------------------------------------------------------- operator console
# (pilot_dev/console.py): the local stack, or a deployed stage with --stage NAME


def console_target(args: argparse.Namespace) -> Any:
    from pilot_dev import console

    try:
        if getattr(args, "stage", None):
            return console.stage_target(args.stage)
        return console.local_target(require_running())
    except console.ConsoleError as exc:
        raise CliError(str(exc)) from None


def cmd_alarms(args: argparse.Namespace) -> int:
    """The stack's alarms: state, since when, why (`pilot run` evaluates the template's
    alarms on the local metrics; a stage's are CloudWatch's)."""
    from pilot_dev import console

    target = console_target(args)
    rows = console.alarms(target, firing_only=args.firing)
    if args.json:
        print(json.dumps(rows))
    else:
        console.print_alarms(rows, target.stack_name)
    return 0


def _stage_queues(args: argparse.Namespace) -> int:
    from pilot_dev import console

    target = console_target(args)
    try:
        rows = console.queue_rows(target)
    except console.ConsoleError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'queue':<10} {'depth':>7} {'in-flight':>10} {'dlq':>6}   ({target.label}: "
          f"{target.stack_name})")
    for row in rows:
        print(f"{row['queue']:<10} {row['depth']:>7} {row['in_flight']:>10} "
              f"{row['dlq_depth']:>6}")
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    """A queue's dead letters: why each failed, its job, what it concerns."""
    from pilot_dev import console

    target = console_target(args)
    try:
        rows = console.dead_letters(target, args.queue, limit=args.limit)
    except console.ConsoleError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(f"the {args.queue} DLQ is empty")
    for row in rows:
        concerns = " ".join(f"{k}={v}" for k, v in row["concerns"].items())
        print(f"{row['message_id']}  {row['sent_at'] or '?'}  {row['job_type'] or '?'}"
              f"  {concerns}\n    {row['failure_reason']}")
    return 0


def _console_redrive(args: argparse.Namespace) -> int:
    from pilot_dev import console

    target = console_target(args)
    try:
        result = console.redrive(target, args.queue, ids=args.ids or None)
    except console.ConsoleError as exc:
        raise CliError(str(exc)) from None
    if result["method"] == "message-move-task":
        print(f"started a message-move task from the {result['queue']} DLQ back to its queue"
              f" ({target.label}; task {result['task_handle']})")
    else:
        print(f"moved {result['moved']} message(s) from the {result['queue']} DLQ back to its"
              f" queue by receive/send/delete ({target.label})")
        if result.get("not_found"):
            print("not in the DLQ: " + ", ".join(result["not_found"]))
    return 0 if not result.get("not_found") else 1


# ---------------------------------------------------------------- runs


def _database_for_reading(explicit: str | None) -> None:
    """Point this process at a database to read: --database-url, DATABASE_URL, or the
    running stack's (as `pilot queues` reads the running stack's queues)."""
    url = explicit or os.environ.get("DATABASE_URL")
    if not url:
        state = running_state()
        if state is None:
            raise CliError("no database to read: start `pilot run` in another shell, or set "
                           "DATABASE_URL (or pass --database-url)")
        url = state["database_url"]
    os.environ["DATABASE_URL"] = url
    from amazon_pilot.platform.settings import reset_settings

    reset_settings()


def _run_counts(run: Any) -> str:
    def n(value: int | None) -> str:
        return "-" if value is None else str(value)

    duration = ("-" if run.duration_s is None
                else f"{run.duration_s:.{2 if run.duration_s < 10 else 0}f}s")
    cost = "-" if run.cost_usd is None else f"${run.cost_usd:.4f}"
    return (f"{n(run.requested):>5} {n(run.returned):>6} {n(run.attributed):>6}"
            f" {n(run.not_found):>5} {n(run.no_data):>6} {n(run.unattributed):>6}"
            f" {n(run.duplicates):>5} {n(run.malformed):>5} {duration:>8} {cost:>9}")


def _run_line(run: Any) -> str:
    return (f"{run.started_at.astimezone(UTC):%Y-%m-%d %H:%M} {run.trigger:<9}"
            f" {run.status:<10} {_run_counts(run)} {run.data_source or '-':<8} {run.id}")


RUNS_HEADER = (f"{'started (UTC)':<16} {'trigger':<9} {'status':<10} {'req':>5} {'ret':>6}"
               f" {'attr':>6} {'404':>5} {'nodata':>6} {'unattr':>6} {'dup':>5} {'bad':>5}"
               f" {'duration':>8} {'cost':>9} {'source':<8} id")


def cmd_runs(args: argparse.Namespace) -> int:
    import uuid

    if not 1 <= args.limit <= 1000:
        raise CliError(f"--limit {args.limit}: give a number from 1 to 1000")
    _database_for_reading(args.database_url)
    from sqlalchemy.exc import OperationalError

    from amazon_pilot.platform.db import DatabaseNotConfigured, dispose_engine
    from amazon_pilot.platform.errors import ApiError
    from amazon_pilot.tracking import service

    try:
        if args.run_id:
            try:
                run_id = uuid.UUID(args.run_id)
            except ValueError as exc:
                raise CliError(f"{args.run_id!r} is not a run id (a UUID from `pilot runs`)") \
                    from exc
            try:
                detail = service.run_detail(None, run_id)
            except ApiError as exc:
                raise CliError(f"no scrape run {run_id}") from exc
            _print_run(detail, args.json)
            return 0
        page = service.list_runs(None, limit=args.limit, offset=0)
    except (OperationalError, DatabaseNotConfigured) as exc:
        raise CliError(f"cannot read the database: {str(exc).splitlines()[0]}") from exc
    finally:
        dispose_engine()
    if args.json:
        print(page.model_dump_json())
        return 0
    print(RUNS_HEADER)
    for run in page.items:
        print(_run_line(run))
    print(f"{len(page.items)} of {page.total} run(s), newest first;"
          " `pilot runs ID` shows one with its problems")
    return 0


def _print_run(run: Any, as_json: bool) -> None:
    if as_json:
        print(run.model_dump_json())
        return
    print(RUNS_HEADER)
    print(_run_line(run))
    if run.error:
        print(f"error: {run.error}")
    print(f"actor {run.actor_id or '-'}, attempts {run.attempts}, captured at"
          f" {run.captured_at.isoformat()}, per product ${run.cost_per_product_usd or 0:.5f}")
    print(f"products ({len(run.products)}):")
    for product in run.products:
        extra = [f"served {product.served_asin}"] if product.served_asin else []
        if product.duplicates:
            extra.append(f"{product.duplicates} duplicate(s)")
        if product.reason:
            extra.append(product.reason)
        if product.attempt > 1:
            extra.append(f"attempt {product.attempt}")
        if product.retry_at:
            extra.append(f"fetched again at {product.retry_at:%H:%M:%S} UTC")
        print(f"  {product.asin} amazon.{product.marketplace:<7} {product.outcome:<10}"
              f" {'; '.join(extra)}")
    shown = len(run.problems)
    total = run.problem_count if run.problem_count is not None else shown
    print(f"problems ({shown} of {total} shown):" if shown < total else f"problems ({total}):")
    for problem in run.problems:
        where = [f"item {problem.index}"] if problem.index is not None else []
        if problem.asin:
            where.append(f"{problem.asin} amazon.{problem.marketplace}")
        if problem.url and not problem.asin:
            where.append(problem.url)
        print(f"  {problem.kind:<12} {', '.join(where) or '-'}: {problem.reason}")


# ---------------------------------------------------------------- migrate / fire


def cmd_migrate(args: argparse.Namespace) -> int:
    from amazon_pilot.platform.migrate import apply_migrations

    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        state = running_state()
        if state is None:
            raise CliError("set DATABASE_URL (or pass --database-url), or start `pilot run`")
        url = state["database_url"]
    from pilot_dev.runtime.stack import StackError, _database_of, ensure_database, with_database

    try:
        url = ensure_database(with_database(url, "postgres"), _database_of(url) or "amazon_pilot")
    except StackError as exc:
        raise CliError(str(exc)) from exc
    applied = apply_migrations(url)
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def cmd_fire(args: argparse.Namespace) -> int:
    import httpx

    state = require_running()
    response = httpx.post(f"{state['api']}/_pilot/schedules/{args.schedule}/fire",
                          headers=operator_headers(), timeout=120)
    answer = response.json()
    print(json.dumps(answer, indent=2))
    result = answer.get("result") if isinstance(answer, dict) else None
    if isinstance(result, dict) and "skipped_fresh" in result:
        print(refresh_summary(result))
    return 0 if response.status_code == 200 else 1


def refresh_summary(result: dict[str, Any]) -> str:
    """The daily plan's answer in words: what was queued and why the rest was not."""
    return (f"{result['products']} product(s) due, queued in {result['batches']} batch(es); "
            f"{result['skipped_fresh']} skipped as fresh (observed in the last "
            f"{result['fresh_for_hours']:g} h: today's data is already stored, by an earlier "
            f"run, a first fetch or a refresh); {result.get('skipped_by_cadence', 0)} left for "
            "later by their refresh cadence or their seller's budget; "
            f"{result['skipped_paused']} skipped as paused "
            "(tracked only while paused, and in no active group)"
            + _budget_words(result.get("budgets") or {}))


def _budget_words(budgets: dict[str, Any]) -> str:
    if not budgets.get("over_budget"):
        return ""
    return (f"; {budgets['over_budget']} seller(s) over their monthly fetch budget:"
            f" {budgets['stretched_products']} product(s) fetched weekly instead")


# ---------------------------------------------------------------- data


def _read_export(path: str) -> list[Any]:
    items = _read_json(path, "Apify export")
    if not isinstance(items, list):
        raise CliError(f"{path} must hold a JSON array of dataset items")
    return items


def cmd_normalize(args: argparse.Namespace) -> int:
    from amazon_pilot.domain.normalize import normalize_export

    for row in normalize_export(_read_export(args.file)):
        print(json.dumps(row, ensure_ascii=False, default=str))
    return 0


def _with_database(work: Callable[[], int], need_standins: bool = False) -> int:
    """Run `work` against the running stack's database, or bring one up for it."""
    state = running_state()
    if state is not None and not need_standins:
        os.environ["DATABASE_URL"] = state["database_url"]
        from amazon_pilot.platform.settings import reset_settings

        reset_settings()
        return work()
    from pilot_dev.runtime.stack import Stack, StackConfig, free_port

    config = StackConfig.from_env(pollers=False, schedules=False, port=free_port())
    stack = Stack(config).start(serve_in_thread=False)
    try:
        return work()
    finally:
        stack.stop()


def cmd_import_apify(args: argparse.Namespace) -> int:
    items = _read_export(args.file)
    captured_at = (datetime.fromisoformat(args.captured_at) if args.captured_at
                   else datetime.now(UTC).replace(microsecond=0))
    if captured_at.tzinfo is None:
        captured_at = captured_at.replace(tzinfo=UTC)

    def work() -> int:
        from amazon_pilot.adapters.apify import FetchResult, attribute, requested_refs
        from amazon_pilot.tracking.service import store_import

        # An export has no request: the URL each item was fetched for stands for it, so
        # items are attributed exactly as in a run (never by the ASIN they report).
        wanted = requested_refs(items)
        record = FetchResult(None, "IMPORTED", None, None, None, None, len(items))
        attribute(items, wanted, record)
        # stored and its alerts handed to delivery like a run's (shipped code path)
        result = store_import(captured_at, wanted, record.snapshots, record.not_found)
        served = sum(1 for s in record.snapshots if s.served_asin)
        print(f"stored {result.inserted} snapshot(s) at {captured_at.isoformat()}; "
              f"{result.skipped} already stored; {len(record.not_found)} not found; "
              f"{served} showing another ASIN; {record.duplicates} duplicate(s), "
              f"{record.unusable} without product data and {record.unattributed} naming no "
              f"product URL skipped; {len(result.alert_ids)} alert(s)")
        for problem in record.problems:
            if problem.kind in ("unattributed", "unusable", "duplicate"):
                print(f"  item {problem.index}: {problem.kind}: {problem.reason}")
        return 0

    return _with_database(work)


def cmd_demo(args: argparse.Namespace) -> int:
    from pilot_dev.demo import create_demo

    state = running_state()
    if state is not None:
        # Into the running stack: with its database, stand-ins and secrets, as one of its
        # workers (a second stack on the same database would relay its outbox into queues
        # nobody reads). The running stack delivers what the demo raises.
        _act_as_worker(state)
        print(create_demo(days=args.days, products=args.products, serving_url=state["api"]))
        return 0

    def work() -> int:
        print(create_demo(days=args.days, products=args.products))
        return 0

    return _with_database(work, need_standins=True)


def _act_as_worker(state: dict[str, Any]) -> None:
    """This process takes the configuration of the running stack's worker (secrets by ARN,
    stand-in URLs, queues) as the stack's operator: the demo does the work of several
    functions, more than any one role is granted."""
    environments: dict[str, dict[str, str]] = state.get("environments") or {}
    needed = ("DATABASE_SECRET_ARN", "APIFY_TOKEN_SECRET_ARN", "OPENAI_SECRET_ARN")
    candidates = [name for name, env in environments.items()
                  if all(k in env for k in needed) or "DATABASE_URL" in env]
    if not candidates:
        raise CliError("the running stack records no worker environment; restart `pilot run`")
    name = "LowWorkerFunction" if "LowWorkerFunction" in candidates else sorted(candidates)[0]
    env = {k: v for k, v in environments[name].items() if k != "AWS_SESSION_TOKEN"}
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.update({**env, **(state.get("operator") or {})})
    from amazon_pilot.adapters.aws import reset_clients
    from amazon_pilot.platform.db import dispose_engine
    from amazon_pilot.platform.settings import reset_settings

    reset_settings()
    reset_clients()
    dispose_engine()


# ---------------------------------------------------------------- accounts


def _admin_password(args: argparse.Namespace) -> str | None:
    """The new admin's password: from stdin, typed twice at a terminal, or None to have
    one generated (--generate-password, or no terminal to ask at)."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise CliError("--password-stdin: no password on standard input")
        return password
    if args.generate_password or not sys.stdin.isatty():
        return None
    import getpass

    first = getpass.getpass("password for the new administrator (empty: generate one): ")
    if not first:
        return None
    if getpass.getpass("again: ") != first:
        raise CliError("the two passwords differ; nothing was created")
    return first


def cmd_create_admin(args: argparse.Namespace) -> int:
    _database_for_reading(args.database_url)
    from amazon_pilot.accounts import service
    from amazon_pilot.platform.errors import ApiError

    try:
        password = None if service.account_exists(args.email) else _admin_password(args)
        done = service.create_admin(args.email, password, via="pilot create-admin")
    except ApiError as exc:
        raise CliError(exc.message) from exc
    user = done.user
    if done.outcome == "created":
        print(f"created administrator {user.email} (id {user.id})")
        if done.generated_password:
            print(f"generated password (shown once, change it after signing in): "
                  f"{done.generated_password}")
    elif done.outcome == "promoted":
        print(f"promoted {user.email} (id {user.id}) to administrator; password unchanged")
    else:
        print(f"{user.email} (id {user.id}) is an administrator already; nothing changed")
    if not user.is_active:
        print("note: this account is deactivated; it cannot sign in until reactivated")
    print("next: sign in and enrol two-step sign-in (Settings); admin routes require it")
    return 0


# ---------------------------------------------------------------- backup / restore


def _backup_s3(args: argparse.Namespace, from_stack: dict[str, Any] | None) -> Any:
    """boto3's S3 client: --endpoint-url, else the running stack's endpoint when the
    database is the stack's (its embedded moto), else AWS as configured."""
    import boto3

    if args.endpoint_url:
        return boto3.client("s3", endpoint_url=args.endpoint_url)
    if from_stack is not None:
        return aws_client(from_stack, "s3")
    return boto3.client("s3")


def _backup_database(explicit: str | None) -> tuple[str, dict[str, Any] | None]:
    url = explicit or os.environ.get("DATABASE_URL")
    if url:
        return url, None
    state = running_state()
    if state is None:
        raise CliError("no database: start `pilot run` in another shell, or set DATABASE_URL "
                       "(or pass --database-url)")
    return str(state["database_url"]), state


def cmd_backup(args: argparse.Namespace) -> int:
    from pilot_dev import backup

    url, state = _backup_database(args.database_url)
    target = args.to or datetime.now(UTC).strftime("pilot-backup-%Y%m%dT%H%M%SZ.tar.gz")
    s3 = _backup_s3(args, state) if target.startswith("s3://") else None
    try:
        manifest = backup.backup(url, target, s3=s3)
    except backup.BackupError as exc:
        raise CliError(str(exc)) from None
    print(f"backup written to {target}: {backup.summary(manifest)}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pilot_dev import backup

    if not args.database_url and not os.environ.get("DATABASE_URL"):
        raise CliError("pass --database-url (or set DATABASE_URL) of an EMPTY database to "
                       "restore into; restore never picks a running stack's database itself")
    url = args.database_url or os.environ["DATABASE_URL"]
    state = running_state()
    s3 = _backup_s3(args, state) if args.file.startswith("s3://") else None
    try:
        manifest = backup.restore(args.file, url, s3=s3)
    except backup.BackupError as exc:
        raise CliError(str(exc)) from None
    print(f"restored {args.file}: {backup.summary(manifest)}; row counts verified")
    return 0


# ---------------------------------------------------------------- main

def cmd_secrets(args: argparse.Namespace) -> int:
    """Seal what is stored in plaintext or under an older key (rotation, migration 0012)."""
    _database_for_reading(args.database_url)
    if not os.environ.get("SECRETS_KMS_KEY_ID") and not os.environ.get("SECRETS_KEY_FILE"):
        local = data_dir() / "secrets.key"
        if not local.exists():
            raise CliError("no key: set SECRETS_KMS_KEY_ID (AWS) or SECRETS_KEY_FILE, or start "
                           f"`pilot run` once to make {local}")
        os.environ["SECRETS_KEY_FILE"] = str(local)
    from amazon_pilot.adapters.crypto import SecretsKeyError, active_key_id
    from amazon_pilot.notifications.service import seal_stored_secrets
    from amazon_pilot.platform.settings import reset_settings

    reset_settings()
    try:
        counts = seal_stored_secrets()
        print(f"active key {active_key_id()}: {counts['plaintext_sealed']} plaintext secret(s) "
              f"sealed, {counts['resealed']} resealed from older keys, "
              f"{counts['unreadable']} unreadable (their key is not in the ring)")
    except SecretsKeyError as exc:
        raise CliError(str(exc)) from None
    return 0


# ---------------------------------------------------------------- cost (issue 18)


def cmd_cost(args: argparse.Namespace) -> int:
    from pilot_dev import cost

    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url and not args.no_database:
        state = running_state()
        url = state["database_url"] if state else None
    sizes = [args.products] if args.products is not None else [1_000, 10_000, 100_000]
    if any(n < 1 for n in sizes):
        raise CliError("--products: give a number of products, 1 or more")
    try:
        print(cost.run(sizes, args.cadence, None if args.no_database else url, args.proxy,
                       Path(args.template) if args.template else None))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "secrets": cmd_secrets,
    "run": cmd_run,
    "invoke": cmd_invoke,
    "logs": cmd_logs,
    "queues": cmd_queues,
    "redrive": cmd_redrive,
    "runs": cmd_runs,
    "migrate": cmd_migrate,
    "fire": cmd_fire,
    "normalize": cmd_normalize,
    "import-apify": cmd_import_apify,
    "demo": cmd_demo,
    "create-admin": cmd_create_admin,
    "backup": cmd_backup,
    "restore": cmd_restore,
    "alarms": cmd_alarms,
    "dlq": cmd_dlq,
    "cost": cmd_cost,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pilot", description=__doc__.splitlines()[0])
    parser.add_argument("--template", help="path to template.yaml (default: the repository's)")
    data_dir_help = ("the stack's data folder: database, keys, state (default: PILOT_DATA_DIR, "
                     "else .pilot in the checkout); give each of two stacks its own")
    parser.add_argument("--data-dir", metavar="DIR", help=data_dir_help)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole stack locally")
    run.add_argument("--port", type=int, default=3000)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS, help=data_dir_help)
    run.add_argument("--no-workers", action="store_true", help="do not poll the queues")
    run.add_argument("--no-schedules", action="store_true", help="do not fire schedules")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="run the queue consumers in N processes of their own, apart from "
                          "the HTTP server (default: the number of cores; 0: in this process)")
    run.add_argument("--http-processes", type=int, default=None, metavar="N",
                     help="serve the API from N processes on the same port, this one "
                          "included, as API Gateway runs concurrent requests in separate "
                          "Lambda instances (default: the number of cores; 1: this process)")
    run.add_argument("--from-build", nargs="?", const=".aws-sam/build-x86_64", metavar="DIR",
                     help="run each function from sam build's artifacts in a Python 3.13 "
                     "process of its own (default DIR: .aws-sam/build-x86_64, made by "
                     "`make build ARCH=x86_64`)")
    run.add_argument("--no-iam", action="store_true",
                     help="run every function with the process's AWS credentials instead of "
                          "its own role (IAM not enforced)")
    run.add_argument("--plain-settings", action="store_true",
                     help="give the functions DATABASE_URL and the keys as plaintext variables "
                          "instead of secrets by ARN (implies --no-iam)")

    invoke = sub.add_parser("invoke", help="invoke one function with an event file")
    invoke.add_argument("function")
    invoke.add_argument("-e", "--event", help="event JSON file (- for stdin)")

    logs = sub.add_parser("logs", help="read a function's CloudWatch log group, or the "
                                       "API's access log (`pilot logs api`)")
    logs.add_argument("function", help="a function name, or `api` for the access log")
    logs.add_argument("--since", default="10m")
    logs.add_argument("--follow", "-f", action="store_true")

    queues = sub.add_parser("queues", help="depth, in-flight and DLQ depth per queue")
    queues.add_argument("--json", action="store_true")
    queues.add_argument("--stage", help="a deployed stage (samconfig config env), by the AWS APIs")

    runs = sub.add_parser("runs", help="scrape runs, newest first: counts, problems, cost "
                                       "(or one run with its problems)")
    runs.add_argument("run_id", nargs="?", help="show this run with its products and problems")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--json", action="store_true")
    runs.add_argument("--database-url", help="default: DATABASE_URL, else the running stack's")

    redrive_p = sub.add_parser("redrive", help="move a queue's DLQ messages back to it")
    redrive_p.add_argument("queue", help="critical, default or low")
    redrive_p.add_argument("--stage", help="a deployed stage (samconfig config env); all "
                                           "messages by SQS's message-move task")
    redrive_p.add_argument("--id", dest="ids", action="append", metavar="MESSAGE_ID",
                           help="move just this message (repeatable; ids from `pilot dlq`)")

    alarms_p = sub.add_parser("alarms", help="the stack's alarms: state, since, reason")
    alarms_p.add_argument("--firing", action="store_true", help="only those in ALARM")
    alarms_p.add_argument("--json", action="store_true")
    alarms_p.add_argument("--stage", help="a deployed stage (samconfig config env)")

    dlq_p = sub.add_parser("dlq", help="a queue's dead letters: reason, job, what they concern")
    dlq_p.add_argument("queue", help="critical, default or low")
    dlq_p.add_argument("--limit", type=int, default=50)
    dlq_p.add_argument("--json", action="store_true")
    dlq_p.add_argument("--stage", help="a deployed stage (samconfig config env)")

    migrate = sub.add_parser("migrate", help="apply the schema migrations")
    migrate.add_argument("--database-url")

    secrets_p = sub.add_parser("secrets", help="seal stored secrets under the active key "
                               "(after migration 0012 or a key rotation)")
    secrets_p.add_argument("action", choices=["reencrypt"])
    secrets_p.add_argument("--database-url")

    fire = sub.add_parser("fire", help="fire a schedule of the running stack now")
    fire.add_argument("schedule")

    normalize = sub.add_parser("normalize", help="print an Apify export as normalized JSON lines")
    normalize.add_argument("file", help="a JSON array of dataset items (- for stdin)")

    importer = sub.add_parser("import-apify", help="store an Apify export as snapshots")
    importer.add_argument("file")
    importer.add_argument("--captured-at", help="ISO time of the observation (default: now)")

    demo = sub.add_parser("demo", help="a demo seller with tracked products and history")
    demo.add_argument("--days", type=int, default=90)
    demo.add_argument("--products", type=int, default=15)

    admin = sub.add_parser("create-admin", help="create the first administrator, or promote "
                                                "an existing account")
    admin.add_argument("email")
    admin.add_argument("--generate-password", action="store_true",
                       help="do not prompt: generate the new account's password and print it")
    admin.add_argument("--password-stdin", action="store_true",
                       help="read the new account's password from standard input")
    admin.add_argument("--database-url", help="default: DATABASE_URL, else the running stack's")

    backup_p = sub.add_parser("backup", help="a consistent dump of the database with a "
                                             "manifest (file or s3://bucket/key)")
    backup_p.add_argument("--to", help="FILE or s3://BUCKET/KEY (default: "
                                       "pilot-backup-<time>.tar.gz here)")
    backup_p.add_argument("--database-url", help="default: DATABASE_URL, else the running "
                                                 "stack's")
    backup_p.add_argument("--endpoint-url", help="S3 endpoint (default: the running stack's "
                                                 "for its database, else AWS)")

    restore_p = sub.add_parser("restore", help="restore a backup into an EMPTY database, "
                                               "verifying its checksums and row counts")
    restore_p.add_argument("file", help="FILE or s3://BUCKET/KEY")
    restore_p.add_argument("--database-url", help="the empty target (default: DATABASE_URL)")
    restore_p.add_argument("--endpoint-url", help="S3 endpoint (default: the running stack's "
                                                  "when one runs, else AWS)")

    cost_p = sub.add_parser("cost", help="monthly cost of tracking 1k/10k/100k products, "
                                         "each input labelled measured or looked up")
    cost_p.add_argument("--products", type=int, help="one size instead of 1k, 10k and 100k")
    cost_p.add_argument("--cadence", default="24h",
                        help="how often each product is fetched: 24h (default), 12h, 7d ..., "
                             "or a mix with the percentage of products on each: "
                             "1d:60,3d:30,7d:10")
    cost_p.add_argument("--proxy", action="store_true", help="add RDS Proxy (deployments "
                                                             "that set DatabaseProxyEndpoint)")
    cost_p.add_argument("--database-url", help="recorded runs to measure the price and run "
                                               "times from (default: DATABASE_URL, else the "
                                               "running stack's)")
    cost_p.add_argument("--no-database", action="store_true",
                        help="published prices only, even when a database is reachable")
    return parser


def main(argv: list[str] | None = None) -> int:
    from pilot_dev.runtime.stack import StackError

    global STATE_FILE
    args = build_parser().parse_args(argv)
    if args.data_dir:
        os.environ["PILOT_DATA_DIR"] = str(Path(args.data_dir).resolve())
        STATE_FILE = _state_file()
    try:
        return COMMANDS[args.command](args)
    except (CliError, TemplateError, StackError) as exc:
        print(f"pilot {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

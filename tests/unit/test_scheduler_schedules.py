"""Every periodic job runs from an EventBridge Scheduler schedule with a retry policy
and a dead-letter queue, through a role that can do exactly that and no more."""

from __future__ import annotations

from pilot_dev.runtime.template import load_template

TEMPLATE = load_template()
SCHEDULES = TEMPLATE.resources_of_type("AWS::Scheduler::Schedule")


def test_no_job_is_left_on_an_eventbridge_rule() -> None:
    assert not TEMPLATE.resources_of_type("AWS::Events::Rule")
    for logical_id, spec in TEMPLATE.functions.items():
        kinds = {e.get("Type") for e in (spec.properties.get("Events") or {}).values()}
        assert not kinds & {"Schedule", "ScheduleV2"}, logical_id


def test_every_schedule_retries_and_dead_letters() -> None:
    assert len(SCHEDULES) == len(TEMPLATE.schedules) >= 5
    for logical_id, resource in SCHEDULES.items():
        target = resource["Properties"]["Target"]
        # EventBridge Scheduler limits: 0-185 retries, 60-86400 s of event age
        retry = target["RetryPolicy"]
        assert 1 <= retry["MaximumRetryAttempts"] <= 185, logical_id
        assert 60 <= retry["MaximumEventAgeInSeconds"] <= 86_400, logical_id
        dlq = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"]
        assert TEMPLATE.resources[dlq[0]]["Type"] == "AWS::SQS::Queue" and dlq[1] == "Arn"
        assert target["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    names = [s.name for s in TEMPLATE.schedules]
    assert {"DailyRefresh", "DailyDigest", "PartitionMaintenance", "WeeklyReports",
            "ExperimentVerdicts"} <= set(names)


def test_the_function_sends_failed_runs_to_the_same_dlq() -> None:
    config = TEMPLATE.functions["SchedulerFunction"].properties["EventInvokeConfig"]
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    assert on_failure["Destination"] == {"Fn::GetAtt": ["ScheduleDLQ", "Arn"]}


def test_the_scheduler_role_grants_exactly_invoke_and_dead_letter() -> None:
    role = TEMPLATE.resources["SchedulerRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]
    grants = {(s["Action"], r["Fn::GetAtt"][0])
              for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]
              for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}
    targets = {r["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0] for r in SCHEDULES.values()}
    dlqs = {r["Properties"]["Target"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
            for r in SCHEDULES.values()}
    assert grants == ({("lambda:InvokeFunction", t) for t in targets}
                      | {("sqs:SendMessage", q) for q in dlqs})

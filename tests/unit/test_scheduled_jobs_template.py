"""template.yaml wires the scheduled jobs as docs/scheduled-jobs.md says."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.template import load_template, schedules

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return load_template()["Resources"]


def _schedule(resources: dict[str, Any], function: str) -> dict[str, Any]:
    (event,) = resources[function]["Properties"]["Events"].values()
    assert event["Type"] == "ScheduleV2"
    return event["Properties"]


def test_both_jobs_are_scheduled_with_a_dlq_retries_and_an_on_failure_destination(resources: dict[str, Any]) -> None:
    dlq = {"Fn::GetAtt": ["ScheduledJobsDeadLetterQueue", "Arn"]}
    for function in ("SweeperFunction", "StatsFunction"):
        props = _schedule(resources, function)
        assert props["DeadLetterConfig"] == {"Arn": dlq}, function
        assert set(props["RetryPolicy"]) == {"MaximumRetryAttempts", "MaximumEventAgeInSeconds"}, function
        assert props["Input"] == "{}", function
        on_failure = resources[function]["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        assert on_failure == {"Type": "SQS", "Destination": dlq}, function
    assert set(schedules(load_template())) >= {"SweeperFunction", "StatsFunction"}


def test_the_sweeper_runs_alone_on_its_rate_parameter_and_within_it(resources: dict[str, Any]) -> None:
    props = resources["SweeperFunction"]["Properties"]
    assert props["ReservedConcurrentExecutions"] == 1
    assert _schedule(resources, "SweeperFunction")["ScheduleExpression"] == {"Ref": "SweeperSchedule"}
    assert load_template()["Parameters"]["SweeperSchedule"]["Default"] == "rate(5 minutes)"
    assert props["Timeout"] < 300  # shorter than the default rate: runs never queue behind each other


def test_the_report_runs_at_ten_past_midnight_in_the_report_timezone(resources: dict[str, Any]) -> None:
    props = _schedule(resources, "StatsFunction")
    assert props["ScheduleExpression"] == "cron(10 0 * * ? *)"
    assert props["ScheduleExpressionTimezone"] == {"Ref": "ReportTimezone"}
    env = resources["StatsFunction"]["Properties"]["Environment"]["Variables"]
    assert env["REPORT_TIMEZONE"] == {"Ref": "ReportTimezone"}
    assert load_template()["Parameters"]["ReportTimezone"]["Default"] == "UTC"


def test_the_heartbeat_alarm_watches_the_sweepers_own_metric(resources: dict[str, Any]) -> None:
    alarm = resources["SweeperNotRunningAlarm"]["Properties"]
    service = resources["SweeperFunction"]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert alarm["MetricName"] == "SweeperHeartbeat"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service}, {"Name": "stage", "Value": {"Ref": "Stage"}}]
    assert alarm["TreatMissingData"] == "breaching"


def test_the_jobs_never_get_scan_on_the_orders_table(resources: dict[str, Any]) -> None:
    for function in ("SweeperFunction", "StatsFunction"):
        for policy in resources[function]["Properties"]["Policies"]:
            for statement in policy.get("Statement", []):
                assert "dynamodb:Scan" not in statement["Action"], function
            assert "DynamoDBCrudPolicy" not in policy or policy["DynamoDBCrudPolicy"]["TableName"] != {
                "Ref": "OrdersTable"
            }, function

"""template.yaml's operations: alarms on every function and dead-letter queue, all to the ops topic,
business alarms on metric names the code emits, the dashboard, asynchronous failures kept, and IAM
scoped to named resources (docs/operations.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.template import Resolver, functions, load_template, resources_of_type
from paycore.observability import Metric

pytestmark = pytest.mark.unit

OPS_TOPIC = {"Ref": "OpsTopic"}

# Every wildcard left in a policy, with why it cannot be narrower. Keyed by (resource, Sid).
JUSTIFIED_WILDCARDS = {
    ("RegisterFunction", "SendVerificationSms"): (
        "an SMS to a phone number has no ARN; NotResource excludes every topic, so only direct SMS is allowed"
    ),
}
# SAM policy templates in use, each scoped by its parameter to one resource of this template.
SCOPED_POLICY_TEMPLATES = {
    "DynamoDBReadPolicy",
    "DynamoDBCrudPolicy",
    "DynamoDBWritePolicy",
    "AWSSecretsManagerGetSecretValuePolicy",
    "EventBridgePutEventsPolicy",
    "SNSPublishMessagePolicy",
    "SQSSendMessagePolicy",
    "SQSPollerPolicy",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: res["Properties"] for lid, res in resources_of_type(template, "AWS::CloudWatch::Alarm").items()}


def _metric_stats(alarm: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The metrics an alarm reads: its own, or each MetricStat of its metric math."""
    if "MetricName" in alarm:
        yield {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"], "Dimensions": alarm["Dimensions"]}
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            yield query["MetricStat"]["Metric"]


def _dimension(metric: dict[str, Any], name: str) -> Any:
    return next((d["Value"] for d in metric.get("Dimensions", []) if d["Name"] == name), None)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of_type(template, "AWS::Serverless::Function")


def _dead_letter_queues(template: dict[str, Any]) -> dict[str, str]:
    """Every queue that receives failures, with what sends them there."""
    found: dict[str, str] = {}

    def queue_of(arn: Any) -> str | None:
        return arn["Fn::GetAtt"][0] if isinstance(arn, dict) and "Fn::GetAtt" in arn else None

    for lid, res in resources_of_type(template, "AWS::SQS::Queue").items():
        redrive = res.get("Properties", {}).get("RedrivePolicy")
        if redrive and (dlq := queue_of(redrive["deadLetterTargetArn"])):
            found[dlq] = f"redrive of {lid}"
    for lid, res in _functions(template).items():
        props = res["Properties"]
        on_failure = props.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure", {})
        if on_failure.get("Type") == "SQS" and (dlq := queue_of(on_failure["Destination"])):
            found[dlq] = f"on-failure destination of {lid}"
        if dlq := queue_of(props.get("DeadLetterQueue", {}).get("TargetArn")):
            found[dlq] = f"dead-letter queue of {lid}"
        for name, event in props.get("Events", {}).items():
            config = event.get("Properties", {}).get("DeadLetterConfig", {})
            if dlq := queue_of(config.get("Arn")):
                found[dlq] = f"dead-letter queue of {lid} event {name}"
    return found


def test_every_alarm_notifies_the_ops_topic(template: dict[str, Any]) -> None:
    alarms = _alarms(template)
    assert alarms
    for lid, alarm in alarms.items():
        assert OPS_TOPIC in alarm.get("AlarmActions", []), f"{lid} does not notify OpsTopic"
        assert OPS_TOPIC in alarm.get("OKActions", []), f"{lid} does not say when it is OK again"
        assert alarm.get("AlarmDescription"), f"{lid} says nothing about what it means"


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_an_errors_and_a_throttles_alarm(template: dict[str, Any], metric: str) -> None:
    watched = {
        _dimension(m, "FunctionName")["Ref"]
        for alarm in _alarms(template).values()
        for m in _metric_stats(alarm)
        if m["Namespace"] == "AWS/Lambda" and m["MetricName"] == metric and _dimension(m, "FunctionName")
    }
    assert set(_functions(template)) <= watched, f"no {metric} alarm on {set(_functions(template)) - watched}"


def test_every_dead_letter_queue_has_a_depth_alarm(template: dict[str, Any]) -> None:
    watched = {
        _dimension(m, "QueueName")["Fn::GetAtt"][0]
        for alarm in _alarms(template).values()
        for m in _metric_stats(alarm)
        if m["Namespace"] == "AWS/SQS" and m["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    queues = _dead_letter_queues(template)
    assert set(queues) <= watched, {q: why for q, why in queues.items() if q not in watched}


def test_asynchronous_functions_keep_their_failures(template: dict[str, Any]) -> None:
    for lid, res in _functions(template).items():
        props = res["Properties"]
        kinds = {event["Type"] for event in props.get("Events", {}).values()}
        if kinds & {"Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent", "SNS", "S3"}:
            on_failure = props.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure")
            assert on_failure or props.get("DeadLetterQueue"), f"{lid} drops failed asynchronous events"
        for event in props.get("Events", {}).values():
            if event["Type"] == "SQS":
                source = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                queue = template["Resources"][source]["Properties"]
                assert "RedrivePolicy" in queue, f"{lid}'s queue {source} has no dead-letter queue"


def test_business_alarms_read_metrics_the_code_emits_for_this_stage(template: dict[str, Any]) -> None:
    emitted = {m.value for m in Metric}
    resolver = Resolver(template=template, parameters={"Stage": "t"})
    services = {spec.environment["POWERTOOLS_SERVICE_NAME"] for spec in functions(template, resolver).values()}
    ours = [
        (lid, m)
        for lid, alarm in _alarms(template).items()
        for m in _metric_stats(alarm)
        if m["Namespace"] == "ServerlessPayments"
    ]
    for lid, metric in ours:
        assert metric["MetricName"] in emitted, f"{lid} watches {metric['MetricName']}, which nothing emits"
        assert _dimension(metric, "stage") == {"Ref": "Stage"}, f"{lid} would mix stages"
        assert _dimension(metric, "service") in services, f"{lid} must name the emitting function's service"


def test_the_api_5xx_alarm_is_a_rate_over_requests(template: dict[str, Any]) -> None:
    alarm = _alarms(template)["Api5xxRateAlarm"]
    names = {m["MetricName"] for m in _metric_stats(alarm)}
    assert names == {"5XXError", "Count"}
    [expression] = [q["Expression"] for q in alarm["Metrics"] if q.get("ReturnData")]
    assert "errors / requests" in expression


def test_the_ops_topic_is_encrypted_with_a_key_cloudwatch_may_use(template: dict[str, Any]) -> None:
    topic = template["Resources"]["OpsTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "OpsTopicKey"}
    key = template["Resources"]["OpsTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    grants = [s for s in key["KeyPolicy"]["Statement"] if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    assert grants
    assert set(grants[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    for lid, res in resources_of_type(template, "AWS::SNS::Topic").items():
        assert res["Properties"].get("KmsMasterKeyId"), f"{lid} is not encrypted"
    for lid, res in resources_of_type(template, "AWS::SQS::Queue").items():
        props = res["Properties"]
        assert props.get("KmsMasterKeyId") or props.get("SqsManagedSseEnabled"), f"{lid} is not encrypted"


def _statements(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for lid, res in template["Resources"].items():
        documents: list[dict[str, Any]] = []
        if res["Type"] == "AWS::IAM::ManagedPolicy":
            documents.append(res["Properties"]["PolicyDocument"])
        if res["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in res["Properties"].get("Policies", [])]
        if res["Type"] == "AWS::Serverless::Function":
            documents += [p for p in res["Properties"].get("Policies", []) if isinstance(p, dict) and "Statement" in p]
        for document in documents:
            for index, statement in enumerate(document["Statement"]):
                yield lid, statement.get("Sid", str(index)), statement


def _has_wildcard(value: Any) -> bool:
    if isinstance(value, str):
        return "*" in value
    if isinstance(value, list):
        return any(_has_wildcard(v) for v in value)
    if isinstance(value, dict):
        return any(_has_wildcard(v) for v in value.values())
    return False


def test_no_policy_grants_a_wildcard_resource_unless_justified(template: dict[str, Any]) -> None:
    found = set()
    for lid, sid, statement in _statements(template):
        if _has_wildcard(statement.get("Resource")) or _has_wildcard(statement.get("NotResource")):
            found.add((lid, sid))
            assert (lid, sid) in JUSTIFIED_WILDCARDS, f"{lid} {sid}: wildcard resource in {statement}"
    assert found == set(JUSTIFIED_WILDCARDS), "a justification is left for a wildcard that is gone"


def test_functions_use_scoped_policy_templates_or_their_own_policies(template: dict[str, Any]) -> None:
    own_policies = set(resources_of_type(template, "AWS::IAM::ManagedPolicy"))
    resources = set(template["Resources"])
    for lid, res in _functions(template).items():
        for policy in res["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "Ref" in policy:
                assert policy["Ref"] in own_policies, f"{lid}: {policy}"
                continue
            assert isinstance(policy, dict), f"{lid} uses the managed policy {policy!r}: too broad"
            if "Statement" in policy:
                continue
            [(name, params)] = policy.items()
            assert name in SCOPED_POLICY_TEMPLATES, f"{lid} uses {name}, not a reviewed scoped template"
            for value in params.values():
                target = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
                assert target in resources, f"{lid} {name} is not scoped to one of this template's resources"


def _dashboard(template: dict[str, Any]) -> dict[str, Any]:
    body = template["Resources"]["OpsDashboard"]["Properties"]["DashboardBody"]
    resolved = Resolver(template=template, parameters={"Stage": "t"}).resolve(body)
    return json.loads(resolved)


def test_the_dashboard_is_json_and_shows_every_function_queue_and_alarm(template: dict[str, Any]) -> None:
    resolver = Resolver(template=template, parameters={"Stage": "t"})
    widgets = _dashboard(template)["widgets"]
    text = json.dumps(widgets)
    for lid in _functions(template):
        assert f'"FunctionName", "{resolver.ref(lid)}"' in text, f"{lid} is not on the dashboard"
    for queue in _dead_letter_queues(template):
        assert f'"QueueName", "{resolver.get_att(queue, "QueueName")}"' in text, f"{queue} is not on the dashboard"
    [alarm_widget] = [w for w in widgets if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(
        resolver.get_att(lid, "Arn") for lid in _alarms(template)
    )
    titles = {w["properties"].get("title") for w in widgets}
    assert {"API latency (ms)", "Orders created by channel", "Dead-letter queue depth"} <= titles


def test_dashboard_business_widgets_name_emitted_metrics(template: dict[str, Any]) -> None:
    import re

    expressions = [
        row["expression"]
        for w in _dashboard(template)["widgets"]
        for row in w["properties"].get("metrics", [])
        if isinstance(row, dict) and "expression" in row
    ]
    named = {m for e in expressions for m in re.findall(r'MetricName="(\w+)"', e)}
    assert named <= {m.value for m in Metric}
    assert all('stage="t"' in e for e in expressions)

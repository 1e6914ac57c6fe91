"""The local stack's other triggers and services: SQS polling, schedules, the outbox on a moto
server, provisioning of queues, and functions that call the local API while they run."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.devroutes import DevRoutes
from infra.local.events import HttpRequest
from infra.local.gateway import GatewayServer
from infra.local.outbox import read_outbox
from infra.local.provision import provision
from infra.local.schedules import ScheduleRunner
from infra.local.sqs import SqsPoller
from infra.local.template import schedules, sqs_sources
from tests.fixtures.localstack import REGION, TEMPLATE, FixtureStack, build
from tests.fixtures.localstack.functions.consumer import app as consumer_app

pytestmark = pytest.mark.integration


@pytest.fixture
def provisioned() -> Iterator[tuple[Any, FixtureStack]]:
    """The test template provisioned in mock_aws, with its gateway and runtime."""
    import boto3
    from moto import mock_aws

    from infra.local.template import load_template

    with mock_aws():
        session = boto3.session.Session()
        resolver = provision(session, stage="test", region=REGION, template=load_template(TEMPLATE))
        stack = build(resolver)
        consumer_app.PROCESSED.clear()
        consumer_app.BATCHES.clear()
        try:
            yield session, stack
        finally:
            stack.runtime.close()


def _poller(session: Any, stack: FixtureStack) -> SqsPoller:
    (source,) = sqs_sources(stack.template, stack.resolver)
    return SqsPoller(source, sqs=session.client("sqs", region_name=REGION), runtime=stack.runtime, region=REGION)


def _counts(sqs: Any, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_queues_are_created_with_their_template_attributes_and_dead_letter_queue(
    provisioned: tuple[Any, FixtureStack],
) -> None:
    session, _ = provisioned
    sqs = session.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName="fixture-test-work")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "30"
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == "arn:aws:sqs:us-east-1:123456789012:fixture-test-work-dlq"
    assert int(redrive["maxReceiveCount"]) == 3


def test_a_batch_is_delivered_and_deleted_except_the_reported_failures(provisioned: tuple[Any, FixtureStack]) -> None:
    session, stack = provisioned
    poller = _poller(session, stack)
    sqs = poller.sqs
    for body in ("one", "fail", "two"):
        sqs.send_message(
            QueueUrl=poller.queue_url,
            MessageBody=body,
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
        )
    assert poller.poll_once() == 3
    (batch,) = consumer_app.BATCHES
    record = batch["Records"][0]
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:fixture-test-work"
    assert record["messageAttributes"]["kind"]["stringValue"] == "test"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert sorted(consumer_app.PROCESSED) == ["one", "two"]
    # The reported failure stays in the queue, invisible until its visibility timeout ends.
    assert _counts(sqs, poller.queue_url) == (0, 1)
    assert poller.poll_once() == 0


def test_a_function_that_raises_leaves_the_whole_batch_in_the_queue(provisioned: tuple[Any, FixtureStack]) -> None:
    session, stack = provisioned
    poller = _poller(session, stack)
    for body in ("one", "crash"):
        poller.sqs.send_message(QueueUrl=poller.queue_url, MessageBody=body)
    assert poller.poll_once() == 2
    assert consumer_app.PROCESSED == []
    assert _counts(poller.sqs, poller.queue_url) == (0, 2)


def test_batch_size_limits_a_batch(provisioned: tuple[Any, FixtureStack]) -> None:
    session, stack = provisioned
    poller = _poller(session, stack)
    for i in range(7):
        poller.sqs.send_message(QueueUrl=poller.queue_url, MessageBody=f"m{i}")
    assert poller.poll_once() == 5  # BatchSize: 5 in the template
    assert poller.poll_once() == 2
    assert len(consumer_app.PROCESSED) == 7


def test_the_poller_thread_delivers_messages_sent_later(provisioned: tuple[Any, FixtureStack]) -> None:
    session, stack = provisioned
    poller = _poller(session, stack)
    poller.interval = 0.05
    poller.start()
    try:
        poller.sqs.send_message(QueueUrl=poller.queue_url, MessageBody="late")
        for _ in range(100):
            if consumer_app.PROCESSED:
                break
            threading.Event().wait(0.05)
    finally:
        poller.stop()
    assert consumer_app.PROCESSED == ["late"]


def _runner(stack: FixtureStack) -> ScheduleRunner:
    return ScheduleRunner(schedules(stack.template), specs=stack.specs, runtime=stack.runtime, region=REGION)


def test_a_schedule_runs_with_the_body_as_input_or_an_eventbridge_event(provisioned: tuple[Any, FixtureStack]) -> None:
    _, stack = provisioned
    dev = DevRoutes(info=dict, moto_url="http://127.0.0.1:1", schedules=_runner(stack))
    given = dev(HttpRequest("POST", "/_local/schedules/tick", body=b'{"date": "2026-11-25"}'))
    assert given.status == 200
    assert given.json() == {"received": {"date": "2026-11-25"}, "function": "fixture-test-tick"}
    scheduled = dev(HttpRequest("POST", "/_local/schedules/TickFunction")).json()["received"]
    assert scheduled["detail-type"] == "Scheduled Event"
    assert scheduled["resources"][0].startswith("arn:aws:events:us-east-1:123456789012:rule/")
    unknown = dev(HttpRequest("POST", "/_local/schedules/nope"))
    assert unknown.status == 404
    assert unknown.json()["error"]["code"] == "unknown_schedule"
    not_json = dev(HttpRequest("POST", "/_local/schedules/tick", body=b"{nope"))
    assert not_json.status == 422
    assert dev(HttpRequest("GET", "/_local/schedules")).json() == {"schedules": ["tick"]}


def test_fire_schedules_runs_rate_schedules_on_their_rate(provisioned: tuple[Any, FixtureStack]) -> None:
    _, stack = provisioned
    runner = _runner(stack)
    fired: list[str] = []
    invoke = stack.runtime.invoke

    def counting_invoke(logical_id: str, event: Any, **kw: Any) -> Any:
        fired.append(logical_id)
        return invoke(logical_id, event, **kw)

    stack.runtime.invoke = counting_invoke  # type: ignore[method-assign]
    # rate(1 minute) fires every 0.05 s here; the real period is rate_seconds(), tested in unit
    assert runner.start_firing(lambda expression: 0.05 if expression == "rate(1 minute)" else None) == []
    try:
        for _ in range(100):
            if len(fired) >= 2:
                break
            threading.Event().wait(0.05)
    finally:
        runner.stop()
    assert fired[:2] == ["TickFunction", "TickFunction"]


def test_the_outbox_reads_what_was_sent_through_a_moto_server() -> None:
    import boto3

    from infra.local.stack import MotoServer

    moto = MotoServer("127.0.0.1", 0)
    moto.start()
    try:

        def client(service: str) -> Any:
            return boto3.client(
                service, region_name=REGION, endpoint_url=moto.url, aws_access_key_id="t", aws_secret_access_key="t"
            )

        ses, sesv2, sns = client("ses"), client("sesv2"), client("sns")
        ses.verify_email_identity(EmailAddress="no-reply@example.com")
        ses.send_email(
            Source="no-reply@example.com",
            Destination={"ToAddresses": ["ann@example.com"]},
            Message={"Subject": {"Data": "v1"}, "Body": {"Text": {"Data": "code 111111"}}},
        )
        sesv2.send_email(
            FromEmailAddress="no-reply@example.com",
            Destination={"ToAddresses": ["bob@example.com"]},
            Content={"Simple": {"Subject": {"Data": "v2"}, "Body": {"Text": {"Data": "code 222222"}}}},
        )
        sns.publish(PhoneNumber="+15555550100", Message="code 333333")
        topic = sns.create_topic(Name="ops")["TopicArn"]
        sns.publish(TopicArn=topic, Message="report", Subject="Daily")
        outbox = read_outbox(moto.url)
        only_bob = read_outbox(moto.url, to="bob@example.com")
    finally:
        moto.stop()
    assert [(e["subject"], e["to"], e["body"]) for e in outbox["emails"]] == [
        ("v1", ["ann@example.com"], "code 111111"),
        ("v2", ["bob@example.com"], "code 222222"),
    ]
    assert outbox["sms"][0]["to"] == "+15555550100"
    assert outbox["sms"][0]["message"] == "code 333333"
    assert (outbox["sns"][0]["topic_arn"], outbox["sns"][0]["message"]) == (topic, "report")
    assert [e["subject"] for e in only_bob["emails"]] == ["v2"]
    assert only_bob["sms"] == []
    assert only_bob["sns"] == []


def test_a_function_can_call_the_local_api_while_it_runs() -> None:
    # A webhook sender calls the API, whose handler is another function: the gateway must not
    # wait for the first function to finish (it would deadlock).
    stack = build()
    server = GatewayServer(stack.gateway, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"{server.url}/relay?url={server.url}/open", timeout=10) as answer:  # noqa: S310
            data = json.load(answer)
    finally:
        server.shutdown()
        server.server_close()
        stack.runtime.close()
    assert data == {"status": 200, "stage": "test"}

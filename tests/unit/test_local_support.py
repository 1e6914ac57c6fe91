"""The local stack's template reading, environments, SQS batch rules, outbox and schedules."""

from __future__ import annotations

import json
import threading

import pytest

from infra.local.outbox import filter_outbox, outbox_from_data
from infra.local.runtime import LayeredEnviron, function_environment
from infra.local.sam_env import env_vars
from infra.local.schedules import is_enabled, rate_seconds
from infra.local.seed import sender_addresses
from infra.local.sqs import failed_ids
from infra.local.template import Resolver, authorizers, functions, load_template, routes, schedules, sqs_sources
from tests.fixtures.localstack import TEMPLATE as FIXTURE

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def fixture_template() -> dict:
    return load_template(FIXTURE)


def test_authorizers_are_read_with_sams_defaults(fixture_template: dict) -> None:
    found = authorizers(fixture_template)
    token, request = found["TokenAuth"], found["RequestAuth"]
    assert (token.function, token.payload_type, token.header, token.ttl) == (
        "AuthorizerFunction",
        "TOKEN",
        "Authorization",
        300,
    )
    assert token.validation_expression == "^Bearer [a-z-]+$"
    assert (request.payload_type, request.headers, request.query_strings, request.ttl) == (
        "REQUEST",
        ("X-Api-Key",),
        ("tenant",),
        0,
    )


def test_routes_carry_the_default_authorizer_unless_a_route_opts_out(fixture_template: dict) -> None:
    by_path = {r.path: r for r in routes(fixture_template)}
    assert by_path["/things/{thing_id}"].authorizer_name == "TokenAuth"
    assert by_path["/things/{thing_id}"].authorizer == "AuthorizerFunction"
    assert by_path["/things/special"].authorizer is None
    assert by_path["/tenants/{tenant_id}/things"].authorizer_name == "RequestAuth"


def test_functions_get_globals_timeout_memory_name_and_module(fixture_template: dict) -> None:
    resolver = Resolver(template=fixture_template, parameters={"Stage": "test"})
    echo = functions(fixture_template, resolver, base_dir=FIXTURE.parent)["EchoFunction"]
    assert (echo.timeout, echo.memory, echo.physical_name) == (5, 256, "fixture-test-echo")
    assert echo.module == "tests.fixtures.localstack.functions.echo.app"
    assert echo.handler_function == "lambda_handler"
    assert echo.environment["ECHO_ONLY"] == "yes"
    assert echo.environment["WORK_QUEUE_URL"].endswith("/fixture-test-work")


def test_real_template_functions_are_modules_under_functions() -> None:
    template = load_template()
    specs = functions(template, Resolver(template=template, parameters={"Stage": "local"}))
    assert specs["ChannelsFunction"].module == "functions.channels.app"
    assert specs["ChannelsFunction"].timeout == 10


def test_sqs_sources_and_schedules_are_found(fixture_template: dict) -> None:
    resolver = Resolver(template=fixture_template, parameters={"Stage": "test"})
    (source,) = sqs_sources(fixture_template, resolver)
    assert source.function == "ConsumerFunction"
    assert source.queue_arn == "arn:aws:sqs:us-east-1:123456789012:fixture-test-work"
    assert (source.batch_size, source.report_batch_item_failures, source.enabled) == (5, True, True)
    assert schedules(fixture_template)["TickFunction"]["Schedule"] == "rate(1 minute)"


def test_a_function_environment_points_at_moto_and_turns_tracing_off(fixture_template: dict) -> None:
    resolver = Resolver(template=fixture_template, parameters={"Stage": "test"})
    echo = functions(fixture_template, resolver, base_dir=FIXTURE.parent)["EchoFunction"]
    env = function_environment(echo, endpoint_url="http://127.0.0.1:5000")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "1"
    assert env["STAGE"] == "test"


def test_sam_env_vars_name_only_variables_the_template_declares() -> None:
    # sam local only overrides variables a function declares, so anything else would be ignored.
    template = load_template()
    specs = functions(template, Resolver(template=template, parameters={"Stage": "local"}))
    data = env_vars(endpoint_url="http://127.0.0.1:5000")
    assert set(data) == set(specs)
    for lid, variables in data.items():
        assert set(variables) <= set(specs[lid].environment), lid
        assert variables["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert data["ChannelsFunction"]["CHANNELS_TABLE"] == "serverless-payments-local-channels"
    json.dumps(data)


def test_sender_addresses_come_from_sender_variables(fixture_template: dict) -> None:
    resolver = Resolver(template=fixture_template, parameters={"Stage": "test"})
    specs = functions(fixture_template, resolver, base_dir=FIXTURE.parent).values()
    assert sender_addresses(specs) == ["no-reply@example.com"]


def test_layered_environ_gives_each_thread_its_own_environment() -> None:
    environ = LayeredEnviron({"SHARED": "base"})
    seen: dict[str, object] = {}
    inside = threading.Event()
    release = threading.Event()

    def function_thread() -> None:
        with environ.using({"SHARED": "mine", "ONLY": "x"}):
            environ["WRITTEN"] = "by-function"
            seen["inside"] = (environ.get("SHARED"), environ.get("ONLY"), dict(environ))
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=function_thread)
    thread.start()
    inside.wait(5)
    # While the function runs, other threads see the process environment, untouched.
    assert environ.get("SHARED") == "base"
    assert "ONLY" not in environ
    assert "WRITTEN" not in environ
    release.set()
    thread.join()
    assert seen["inside"] == ("mine", "x", {"SHARED": "mine", "ONLY": "x", "WRITTEN": "by-function"})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
        ({"batchItemFailures": [{"id": "b"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),
        ("not json", None),
    ],
)
def test_partial_batch_responses_follow_lambdas_rules(answer: object, expected: set[str] | None) -> None:
    assert failed_ids(answer, ["a", "b", "c"]) == expected


MOTO_DATA = {
    "ses": {
        "Message": [
            {
                "id": "e1",
                "source": "no-reply@example.com",
                "subject": "Your code",
                "body": "123456",
                "destinations": {"ToAddresses": ["Ann@Example.com"], "CcAddresses": [], "BccAddresses": ["audit@x.io"]},
            }
        ],
        "RawMessage": [{"id": "e2", "source": "a@x.io", "destinations": ["b@x.io"], "raw_data": "Subject: hi"}],
    },
    "sns": {
        "SMS": [{"message_id": "s1", "phone_number": "+15555550100", "message": "code 654321"}],
        "Topic": [
            {
                "arn": "arn:aws:sns:us-east-1:123456789012:serverless-payments-local-ops",
                "sent_notifications": [["n1", "daily report", "Report", {}, None]],
            }
        ],
    },
}


def test_outbox_lists_emails_sms_and_topic_messages_from_moto_data() -> None:
    outbox = outbox_from_data(MOTO_DATA)
    assert [e["id"] for e in outbox["emails"]] == ["e1", "e2"]
    assert outbox["emails"][0] == {
        "id": "e1",
        "from": "no-reply@example.com",
        "to": ["Ann@Example.com"],
        "cc": [],
        "bcc": ["audit@x.io"],
        "subject": "Your code",
        "body": "123456",
    }
    assert outbox["emails"][1]["to"] == ["b@x.io"]
    assert outbox["sms"] == [{"id": "s1", "to": "+15555550100", "message": "code 654321"}]
    assert outbox["sns"][0]["message"] == "daily report"
    assert outbox["sns"][0]["subject"] == "Report"


def test_outbox_filter_by_recipient_phone_or_topic() -> None:
    outbox = outbox_from_data(MOTO_DATA)
    assert [e["id"] for e in filter_outbox(outbox, "ann@example.com")["emails"]] == ["e1"]
    assert [e["id"] for e in filter_outbox(outbox, "audit@x.io")["emails"]] == ["e1"]
    assert filter_outbox(outbox, "+15555550100")["sms"][0]["id"] == "s1"
    assert filter_outbox(outbox, "serverless-payments-local-ops")["sns"][0]["id"] == "n1"
    assert filter_outbox(outbox, "nobody@x.io") == {"emails": [], "sms": [], "sns": []}


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("cron(0 1 * * ? *)", None),
    ],
)
def test_rate_expressions(expression: str, seconds: int | None) -> None:
    assert rate_seconds(expression) == seconds


def test_schedule_enabled_flags() -> None:
    assert is_enabled({"Schedule": "rate(1 minute)"})
    assert not is_enabled({"Enabled": False})
    assert not is_enabled({"State": "DISABLED"})

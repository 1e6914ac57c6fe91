"""The events the local stack builds have the shape AWS sends (held against events/*.json)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from infra.local.events import (
    HttpRequest,
    RouteMatch,
    method_arn,
    proxy_event,
    request_authorizer_event,
    scheduled_event,
    sqs_event,
)
from tests.helpers import load_event

pytestmark = pytest.mark.unit

CURL_HEADERS = (
    ("Accept", "application/json"),
    ("Host", "127.0.0.1:3000"),
    ("User-Agent", "curl/8.5.0"),
    ("X-Forwarded-Proto", "http"),
)


def _same_shape(expected: Any, actual: Any, where: str = "event") -> None:
    """Every key of ``expected`` is in ``actual`` with a value of the same JSON type (recursively)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} is missing"
            _same_shape(value, actual[key], f"{where}.{key}")
    elif expected is None:
        assert actual is None, f"{where} should be null"
    else:
        assert isinstance(actual, type(expected)), f"{where}: {type(actual).__name__} is not {type(expected).__name__}"


def test_get_channels_event_matches_the_sample_event_shape_and_values() -> None:
    # Given the request curl sends for GET /channels?amount=1000&currency=CNY
    request = HttpRequest("GET", "/channels", "amount=1000&currency=CNY", CURL_HEADERS, host="127.0.0.1:3000")
    # When the gateway builds the proxy event for stage dev
    event = proxy_event(request, RouteMatch("/channels"), stage="dev")
    # Then it has the sample's shape and the same request values
    sample = load_event("channels", "list_cny_1000")
    _same_shape(sample, event)
    for key in sample.keys() - {"requestContext"}:  # every request value, as the sample holds it
        assert event[key] == sample[key], key
    for key in ("resourcePath", "httpMethod", "path", "accountId", "protocol", "stage", "apiId", "domainName"):
        assert event["requestContext"][key] == sample["requestContext"][key], key
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert "authorizer" not in event["requestContext"]


def test_repeated_query_keys_and_headers_keep_every_value_in_the_multi_value_maps() -> None:
    request = HttpRequest("GET", "/x", "tag=a&tag=b&empty=", (("X-Many", "1"), ("X-Many", "2")))
    event = proxy_event(request, RouteMatch("/x"), stage="local")
    assert event["queryStringParameters"] == {"tag": "b", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "empty": [""]}
    assert event["headers"]["X-Many"] == "2"
    assert event["multiValueHeaders"]["X-Many"] == ["1", "2"]


def test_no_query_no_headers_no_body_are_null_as_in_api_gateway() -> None:
    event = proxy_event(HttpRequest("GET", "/x"), RouteMatch("/x"), stage="local")
    for key in ("headers", "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters"):
        assert event[key] is None, key
    assert event["pathParameters"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


def test_path_parameters_request_id_and_stage_prefixed_context_path() -> None:
    request = HttpRequest("GET", "/orders/3f2%20a")
    event = proxy_event(request, RouteMatch("/orders/{order_id}", {"order_id": "3f2 a"}), stage="local")
    assert event["resource"] == "/orders/{order_id}"
    assert event["path"] == "/orders/3f2 a"
    assert event["pathParameters"] == {"order_id": "3f2 a"}
    assert event["requestContext"]["path"] == "/local/orders/3f2 a"
    assert re.fullmatch(r"[0-9a-f-]{36}", event["requestContext"]["requestId"])
    other = proxy_event(request, RouteMatch("/orders/{order_id}", {"order_id": "3f2 a"}), stage="local")
    assert other["requestContext"]["requestId"] != event["requestContext"]["requestId"]


def test_text_body_is_passed_as_text() -> None:
    request = HttpRequest("POST", "/x", headers=(("Content-Type", "application/json"),), body=b'{"a": "\xc3\xa9"}')
    event = proxy_event(request, RouteMatch("/x"), stage="local")
    assert event["body"] == '{"a": "é"}'
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("image/png", b"\x89PNG\r\n"), ("application/octet-stream", b"\xff\xfe\x00")],
)
def test_binary_media_types_and_non_utf8_bodies_are_base64(content_type: str, body: bytes) -> None:
    request = HttpRequest("POST", "/x", headers=(("Content-Type", content_type),), body=body)
    event = proxy_event(request, RouteMatch("/x"), stage="local", binary_media_types=("image/png",))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_method_arn_has_api_stage_method_and_path() -> None:
    arn = method_arn(region="us-east-1", stage="local", method="GET", path="/orders/1")
    assert arn == "arn:aws:execute-api:us-east-1:123456789012:localapi/local/GET/orders/1"


def test_request_authorizer_event_carries_the_request_and_the_method_arn() -> None:
    proxy = proxy_event(HttpRequest("GET", "/x", "a=1"), RouteMatch("/x"), stage="local")
    event = request_authorizer_event(proxy, "arn:x")
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == "arn:x"
    assert event["queryStringParameters"] == {"a": "1"}
    assert event["requestContext"] is proxy["requestContext"]
    assert "body" not in event


def test_sqs_event_has_lambda_record_shape() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "MessageAttributes": {"kind": {"StringValue": "webhook", "DataType": "String"}},
    }
    record = sqs_event([message], queue_arn="arn:aws:sqs:us-east-1:123456789012:q", region="us-east-1")["Records"][0]
    assert record == {
        "messageId": "m-1",
        "receiptHandle": "rh",
        "body": "hello",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "messageAttributes": {
            "kind": {"stringValue": "webhook", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
        },
        "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }


def test_scheduled_event_is_eventbridge_shaped() -> None:
    event = scheduled_event(rule_arn="arn:aws:events:us-east-1:123456789012:rule/r", region="us-east-1", now=0)
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "1970-01-01T00:00:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/r"]
    assert event["detail"] == {}

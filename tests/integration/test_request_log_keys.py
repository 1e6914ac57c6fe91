"""Every log line of an API request carries its correlation id (API Gateway's request id) and the
caller the authorizer named, and the next request in the same container does not inherit them."""

from __future__ import annotations

import pytest

from tests.conftest import AwsStack, load_handler
from tests.helpers import CapturedLogs, FakeContext, load_event

pytestmark = pytest.mark.integration


def test_a_refused_request_logs_its_request_id_and_caller_and_the_next_one_starts_clean(
    seeded_channels: AwsStack, captured_logs: CapturedLogs
) -> None:
    handler = load_handler("channels").lambda_handler
    signed_in = load_event("channels", "list_unknown_currency")
    signed_in["requestContext"]["requestId"] = "req-with-caller"
    signed_in["requestContext"]["authorizer"] = {"user_id": "u-42", "session_id": "s-7", "principalId": "u-42"}
    anonymous = load_event("channels", "list_unknown_currency")
    anonymous["requestContext"]["requestId"] = "req-without-caller"

    assert handler(signed_in, FakeContext())["statusCode"] == 422
    assert handler(anonymous, FakeContext())["statusCode"] == 422

    refused = [line for line in captured_logs.lines() if line["message"] == "request refused"]
    assert [(r["correlation_id"], r.get("user_id"), r.get("session_id")) for r in refused] == [
        ("req-with-caller", "u-42", "s-7"),
        ("req-without-caller", None, None),
    ]
    assert refused[0]["service"]
    assert refused[0]["function_request_id"] == FakeContext.aws_request_id

"""The local gateway end to end in-process: routes, Lambda authorizers, errors, and the real
channels function, with real handlers (the test template's functions and functions/channels)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.events import HttpRequest
from infra.local.gateway import Gateway, HttpResponse
from tests.conftest import AwsStack
from tests.fixtures.localstack import FixtureStack, build
from tests.fixtures.localstack.functions.authorizer import app as authorizer_app

pytestmark = pytest.mark.integration


@pytest.fixture
def stack() -> Iterator[FixtureStack]:
    built = build()
    authorizer_app.CALLS.clear()
    yield built
    built.runtime.close()


def _get(gateway: Gateway, path: str, query: str = "", token: str | None = None, **kw: Any) -> HttpResponse:
    headers = kw.pop("headers", ())
    if token is not None:
        headers = (*headers, ("Authorization", token))
    return gateway.handle(HttpRequest(kw.pop("method", "GET"), path, query, tuple(headers), **kw))


def _echo(response: HttpResponse) -> dict[str, Any]:
    assert response.status == 200, response.body
    data: dict[str, Any] = response.json()
    return data


def test_an_allowed_token_reaches_the_function_with_the_authorizer_context(stack: FixtureStack) -> None:
    seen = _echo(_get(stack.gateway, "/things/42", "x=1", token="Bearer allow"))
    event = seen["event"]
    assert event["resource"] == "/things/{thing_id}"
    assert event["pathParameters"] == {"thing_id": "42"}
    authorizer = event["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "user-1"
    assert (authorizer["user_id"], authorizer["admin"], authorizer["level"]) == ("user-1", "true", "3")
    # The authorizer got a TOKEN event with the methodArn of this request.
    (call,) = authorizer_app.CALLS
    assert call == {
        "type": "TOKEN",
        "authorizationToken": "Bearer allow",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:localapi/test/GET/things/42",
    }


def test_each_function_runs_with_its_own_environment_and_a_lambda_context(stack: FixtureStack) -> None:
    seen = _echo(_get(stack.gateway, "/open"))
    assert seen["env"] == {"ECHO_ONLY": "yes", "STAGE": "test"}
    context = seen["context"]
    assert context["function_name"] == "fixture-test-echo"
    assert context["memory_limit_in_mb"] == 256
    assert 0 < context["remaining_ms"] <= 5000
    assert context["aws_request_id"] == seen["event"]["requestContext"]["requestId"]


def test_a_cached_authorization_is_reused_for_the_same_token(stack: FixtureStack) -> None:
    for thing in ("1", "2", "3"):
        _echo(_get(stack.gateway, f"/things/{thing}", token="Bearer allow"))
    assert len(authorizer_app.CALLS) == 1


def test_a_narrow_cached_policy_denies_the_next_resource_as_on_aws(stack: FixtureStack) -> None:
    _echo(_get(stack.gateway, "/things/1", token="Bearer narrow"))
    denied = _get(stack.gateway, "/things/2", token="Bearer narrow")
    assert denied.status == 403
    assert denied.json() == {
        "error": {"code": "gateway_rejected", "message": "User is not authorized to access this resource"}
    }
    assert len(authorizer_app.CALLS) == 1


@pytest.mark.parametrize(
    ("token", "status", "calls"),
    [
        (None, 401, 0),  # no token: API Gateway refuses without calling the authorizer
        ("Basic abc", 401, 0),  # does not match Identity.ValidationExpression
        ("Bearer unauthorized", 401, 1),  # the authorizer raised "Unauthorized"
        ("Bearer deny", 403, 1),
        ("Bearer crash", 500, 1),
        ("Bearer no-policy", 500, 1),
        ("Bearer nested-context", 500, 1),
    ],
)
def test_refusals_answer_the_templates_gateway_responses(
    stack: FixtureStack, token: str | None, status: int, calls: int
) -> None:
    response = _get(stack.gateway, "/things/1", token=token)
    assert response.status == status
    assert set(response.json()["error"]) == {"code", "message"}
    if status == 401:
        assert response.header("WWW-Authenticate") == "Bearer"
    assert len(authorizer_app.CALLS) == calls


def test_request_authorizer_gets_the_request_and_is_asked_every_time_with_ttl_zero(stack: FixtureStack) -> None:
    for _ in range(2):
        response = _get(
            stack.gateway, "/tenants/acme/things", "tenant=acme", method="POST", headers=(("X-Api-Key", "good"),)
        )
        assert _echo(response)["event"]["requestContext"]["authorizer"]["tenant"] == "acme"
    assert len(authorizer_app.CALLS) == 2
    call = authorizer_app.CALLS[0]
    assert call["type"] == "REQUEST"
    assert call["pathParameters"] == {"tenant_id": "acme"}
    assert call["methodArn"].endswith("/test/POST/tenants/acme/things")
    missing = _get(stack.gateway, "/tenants/acme/things", method="POST", headers=(("X-Api-Key", "good"),))
    assert missing.status == 401
    wrong_key = _get(
        stack.gateway, "/tenants/acme/things", "tenant=acme", method="POST", headers=(("X-Api-Key", "bad"),)
    )
    assert wrong_key.status == 403


def test_literal_and_greedy_routes(stack: FixtureStack) -> None:
    special = _echo(_get(stack.gateway, "/things/special"))  # no token needed: the literal route is open
    assert special["event"]["resource"] == "/things/special"
    files = _echo(_get(stack.gateway, "/files/a/b/c.txt"))
    assert files["event"]["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert authorizer_app.CALLS == []


def test_headers_from_both_maps_and_a_default_content_type(stack: FixtureStack) -> None:
    response = _get(stack.gateway, "/open")
    assert response.header("X-Echo") == "single"
    assert [v for k, v in response.headers if k == "X-Both"] == ["multi-1", "multi-2"]
    assert response.header("Content-Type") == "application/json"
    assert response.header("x-amzn-RequestId")


def test_binary_media_types_reach_the_function_base64_encoded(stack: FixtureStack) -> None:
    png = b"\x89PNG\r\n\x1a\n"
    seen = _echo(_get(stack.gateway, "/open", method="POST", headers=(("Content-Type", "image/png"),), body=png))
    assert seen["event"]["isBase64Encoded"] is True


def test_unknown_routes_and_methods_are_403_missing_authentication_token(stack: FixtureStack) -> None:
    for method, path in (("GET", "/nowhere"), ("DELETE", "/things/special"), ("GET", "/")):
        response = _get(stack.gateway, path, method=method)
        assert response.status == 403
        assert response.json() == {"error": {"code": "gateway_rejected", "message": "Missing Authentication Token"}}


def test_a_handler_exception_is_502_without_the_traceback(
    stack: FixtureStack, caplog: pytest.LogCaptureFixture
) -> None:
    response = _get(stack.gateway, "/boom")
    assert response.status == 502
    assert response.json() == {"error": {"code": "internal_error", "message": "failed"}}
    assert b"secret detail" not in response.body
    assert "boom: secret detail" in caplog.text  # the console has it


def test_a_handler_that_runs_past_its_timeout_is_502(stack: FixtureStack) -> None:
    response = _get(stack.gateway, "/slow")
    assert response.status == 502
    assert b"too late" not in response.body


def test_routes_under_the_local_stacks_own_prefix_are_refused(stack: FixtureStack) -> None:
    from infra.local.template import Route

    with pytest.raises(ValueError, match="/_local"):
        Gateway(
            api=stack.gateway.api,
            routes=[Route(function="EchoFunction", method="GET", path="/_local/x", authorizer=None)],
            authorizers={},
            runtime=stack.runtime,
            region="us-east-1",
        )


def test_a_malformed_proxy_answer_is_502(stack: FixtureStack) -> None:
    response = _get(stack.gateway, "/malformed")
    assert response.status == 502
    assert response.json()["error"]["code"] == "internal_error"


def test_channels_through_the_gateway_on_the_real_template(seeded_channels: AwsStack) -> None:
    from infra.local.gateway import Gateway
    from infra.local.runtime import FunctionRuntime
    from infra.local.template import api, authorizers, functions, routes
    from tests.identity_support import log_in, new_user, register, verify

    template = seeded_channels.resolver.template
    specs = functions(template, seeded_channels.resolver)
    with FunctionRuntime(specs, region="us-east-1", endpoint_url=None) as runtime:
        gateway = Gateway(
            api=api(template, seeded_channels.resolver),
            routes=routes(template),
            authorizers=authorizers(template),
            runtime=runtime,
            region="us-east-1",
        )
        # GET /channels is a Bearer route: the gateway runs the JWT authorizer first.
        anonymous = gateway.handle(HttpRequest("GET", "/channels", "amount=1000&currency=CNY"))
        bearer = (("Authorization", f"Bearer {log_in(verify(register(new_user(7))))['access_token']}"),)
        ok = gateway.handle(HttpRequest("GET", "/channels", "amount=1000&currency=CNY", bearer))
        bad = gateway.handle(HttpRequest("GET", "/channels", "amount=1000&currency=cny", bearer))
    assert anonymous.status == 401
    assert ok.status == 200
    assert ok.json()["recommended"] == "sandbox"
    assert bad.status == 422
    assert json.loads(bad.body)["error"]["code"] == "validation_error"

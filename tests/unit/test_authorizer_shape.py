"""The authorizer's input and output shapes, and how backends read the caller (no AWS)."""

import pytest

from paycore.api import Caller, build_resolver, caller
from paycore.identity.authorizer import bearer_token, policy
from tests.helpers import FakeContext, body, load_event

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("event", "token"),
    [
        ({"type": "TOKEN", "authorizationToken": "Bearer abc.def.ghi"}, "abc.def.ghi"),
        ({"type": "TOKEN", "authorizationToken": "bearer  abc.def.ghi "}, "abc.def.ghi"),
        ({"type": "REQUEST", "headers": {"authorization": "Bearer abc.def.ghi"}}, "abc.def.ghi"),
        ({"type": "TOKEN", "authorizationToken": "Basic dXNlcjpwYXNz"}, None),
        ({"type": "TOKEN", "authorizationToken": "Bearer "}, None),
        ({"type": "REQUEST", "headers": {}}, None),
        ({"type": "REQUEST", "headers": None}, None),
    ],
)
def test_the_bearer_token_is_read_from_token_and_request_events(event: dict, token: str | None) -> None:
    assert bearer_token(event) == token


def test_sample_events_parse() -> None:
    assert bearer_token(load_event("authorizer", "token")) == "REPLACE_WITH_AN_ACCESS_TOKEN"
    assert bearer_token(load_event("authorizer", "request")) == "REPLACE_WITH_AN_ACCESS_TOKEN"


def test_allow_carries_the_caller_in_the_context() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:api/dev/GET/channels"
    allow = policy("Allow", "user-1", arn, {"user_id": "user-1", "session_id": "s-1"})
    assert allow == {
        "principalId": "user-1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": arn}],
        },
        "context": {"user_id": "user-1", "session_id": "s-1"},
    }
    assert "context" not in policy("Deny", "anonymous", arn)


def _resolver_with_probe() -> tuple:
    app = build_resolver()
    seen: list[Caller] = []

    @app.get("/channels")
    def probe() -> dict:
        seen.append(caller(app))
        return {}

    return app, seen


def test_caller_reads_what_the_authorizer_put_in_the_request_context() -> None:
    app, seen = _resolver_with_probe()
    event = load_event("channels", "list_all")
    event["requestContext"]["authorizer"] = {"principalId": "u-1", "user_id": "u-1", "session_id": "s-1"}
    assert app.resolve(event, FakeContext())["statusCode"] == 200
    event["requestContext"]["authorizer"]["key_version"] = "v1"
    assert app.resolve(event, FakeContext())["statusCode"] == 200
    assert seen == [Caller(user_id="u-1", session_id="s-1"), Caller(user_id="u-1", session_id="s-1", key_version="v1")]


def test_caller_without_authorizer_context_is_401() -> None:
    app, seen = _resolver_with_probe()
    event = load_event("channels", "list_all")
    event["requestContext"].pop("authorizer", None)
    response = app.resolve(event, FakeContext())
    assert response["statusCode"] == 401
    assert body(response)["error"]["code"] == "unauthorized"
    assert seen == []

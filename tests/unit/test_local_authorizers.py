"""Lambda authorizer semantics: policy evaluation, identity sources, the flow and its cache."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.authorizers import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    AuthorizerCache,
    AuthorizerFailed,
    AuthorizerOutputError,
    authorize,
    authorizer_context,
    check_output,
    evaluate_policy,
)
from infra.local.events import HttpRequest
from infra.local.template import AuthorizerSpec

pytestmark = pytest.mark.unit

ARN = "arn:aws:execute-api:us-east-1:123456789012:localapi/local/GET/orders/42"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _stmt(effect: str, resource: Any, action: Any = "execute-api:Invoke") -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


@pytest.mark.parametrize(
    ("resource", "verdict"),
    [
        (ARN, ALLOW),
        ("arn:aws:execute-api:us-east-1:123456789012:localapi/*", ALLOW),
        ("arn:aws:execute-api:us-east-1:123456789012:localapi/local/*/orders/*", ALLOW),
        ("arn:aws:execute-api:us-east-1:123456789012:localapi/local/GET/orders/4?", ALLOW),
        ("arn:aws:execute-api:us-east-1:123456789012:localapi/local/POST/*", IMPLICIT_DENY),
        ("arn:aws:execute-api:us-east-1:123456789012:localapi/local/get/orders/42", IMPLICIT_DENY),
        ("*", ALLOW),
        ([ARN.replace("42", "1"), ARN], ALLOW),
    ],
)
def test_allow_statements_match_the_method_arn_with_wildcards(resource: Any, verdict: str) -> None:
    assert evaluate_policy(_policy(_stmt("Allow", resource)), ARN) == verdict


def test_an_explicit_deny_wins_over_an_allow() -> None:
    policy = _policy(_stmt("Allow", "*"), _stmt("Deny", "arn:aws:execute-api:*:*:*/*/GET/orders/*"))
    assert evaluate_policy(policy, ARN) == EXPLICIT_DENY
    assert evaluate_policy(policy, ARN.replace("GET", "POST")) == ALLOW


def test_actions_match_case_insensitively_with_wildcards_and_others_do_not_count() -> None:
    assert evaluate_policy(_policy(_stmt("Allow", "*", "execute-api:*")), ARN) == ALLOW
    assert evaluate_policy(_policy(_stmt("Allow", "*", "EXECUTE-API:invoke")), ARN) == ALLOW
    assert evaluate_policy(_policy(_stmt("Allow", "*", ["s3:GetObject", "*"])), ARN) == ALLOW
    assert evaluate_policy(_policy(_stmt("Allow", "*", "s3:GetObject")), ARN) == IMPLICIT_DENY
    assert evaluate_policy(_policy(), ARN) == IMPLICIT_DENY


def test_a_single_statement_object_is_accepted_and_bad_effects_are_refused() -> None:
    assert evaluate_policy({"Statement": _stmt("Allow", "*")}, ARN) == ALLOW
    with pytest.raises(AuthorizerOutputError):
        evaluate_policy(_policy(_stmt("allow", "*")), ARN)
    with pytest.raises(AuthorizerOutputError):
        evaluate_policy({"Version": "2012-10-17"}, ARN)


def test_context_values_are_stringified_as_api_gateway_does() -> None:
    output = {"principalId": "u-1", "context": {"admin": True, "off": False, "level": 3, "name": "x"}}
    assert authorizer_context(output) == {
        "principalId": "u-1",
        "admin": "true",
        "off": "false",
        "level": "3",
        "name": "x",
    }


@pytest.mark.parametrize(
    "output",
    [
        None,
        [],
        {"policyDocument": _policy()},
        {"principalId": "u"},
        {"principalId": "u", "policyDocument": _policy(), "context": {"roles": ["a"]}},
        {"principalId": "u", "policyDocument": _policy(), "context": {"nested": {"a": 1}}},
    ],
)
def test_outputs_api_gateway_cannot_use_are_refused(output: Any) -> None:
    with pytest.raises(AuthorizerOutputError):
        check_output(output)


TOKEN = AuthorizerSpec(
    name="Token", function="Auth", payload_type="TOKEN", ttl=300, validation_expression="^Bearer .+$"
)
REQUEST = AuthorizerSpec(
    name="Req",
    function="Auth",
    payload_type="REQUEST",
    ttl=0,
    headers=("X-Api-Key",),
    query_strings=("tenant",),
    context=("identity.sourceIp",),
)


class Authorizer:
    """A stand-in for the authorizer Lambda: answers ``answer`` and counts its calls."""

    def __init__(self, answer: Any = None, fail: AuthorizerFailed | None = None):
        self.answer = answer
        self.fail = fail
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        if self.fail:
            raise self.fail
        return self.answer


def _allow(resource: str = "*", **context: Any) -> dict[str, Any]:
    return {"principalId": "u-1", "policyDocument": _policy(_stmt("Allow", resource)), "context": context}


def _run(spec: AuthorizerSpec, request: HttpRequest, fn: Authorizer, cache: AuthorizerCache, arn: str = ARN):  # type: ignore[no-untyped-def]
    return authorize(
        spec,
        request,
        arn=arn,
        build_event=lambda: {"arn": arn},
        call=fn,
        cache=cache,
        request_context={"identity": {"sourceIp": request.source_ip}},
    )


def _bearer(token: str) -> HttpRequest:
    return HttpRequest("GET", "/orders/42", headers=(("Authorization", token),))


def test_token_missing_or_not_matching_the_validation_expression_is_401_without_a_call() -> None:
    fn = Authorizer(_allow())
    assert _run(TOKEN, HttpRequest("GET", "/orders/42"), fn, AuthorizerCache()).response_type == "UNAUTHORIZED"
    assert _run(TOKEN, _bearer("Basic abc"), fn, AuthorizerCache()).response_type == "UNAUTHORIZED"
    assert fn.events == []


def test_allowed_requests_carry_principal_and_context_and_latency() -> None:
    decision = _run(TOKEN, _bearer("Bearer t"), Authorizer(_allow(user_id="u-1", admin=True)), AuthorizerCache())
    assert decision.response_type is None
    assert decision.context is not None
    assert decision.context["principalId"] == "u-1"
    assert decision.context["admin"] == "true"
    assert isinstance(decision.context["integrationLatency"], int)


def test_denials_are_access_denied_with_api_gateways_messages() -> None:
    deny = {"principalId": "u", "policyDocument": _policy(_stmt("Deny", "*"))}
    explicit = _run(TOKEN, _bearer("Bearer t"), Authorizer(deny), AuthorizerCache())
    assert (explicit.response_type, explicit.message) == (
        "ACCESS_DENIED",
        "User is not authorized to access this resource with an explicit deny",
    )
    implicit = _run(TOKEN, _bearer("Bearer t"), Authorizer(_allow("arn:nothing")), AuthorizerCache())
    assert (implicit.response_type, implicit.message) == (
        "ACCESS_DENIED",
        "User is not authorized to access this resource",
    )


def test_unauthorized_exception_is_401_and_any_other_failure_is_a_configuration_error() -> None:
    said_no = _run(TOKEN, _bearer("Bearer t"), Authorizer(fail=AuthorizerFailed(unauthorized=True)), AuthorizerCache())
    assert said_no.response_type == "UNAUTHORIZED"
    crashed = _run(TOKEN, _bearer("Bearer t"), Authorizer(fail=AuthorizerFailed(unauthorized=False)), AuthorizerCache())
    assert crashed.response_type == "AUTHORIZER_CONFIGURATION_ERROR"
    garbage = _run(TOKEN, _bearer("Bearer t"), Authorizer({"principalId": "u"}), AuthorizerCache())
    assert garbage.response_type == "AUTHORIZER_CONFIGURATION_ERROR"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_answers_are_cached_per_token_for_the_ttl_then_asked_again() -> None:
    clock = Clock()
    cache = AuthorizerCache(clock)
    fn = Authorizer(_allow())
    for _ in range(3):
        assert _run(TOKEN, _bearer("Bearer a"), fn, cache).response_type is None
    assert len(fn.events) == 1
    _run(TOKEN, _bearer("Bearer b"), fn, cache)
    assert len(fn.events) == 2  # another token is another cache key
    clock.now += 299
    _run(TOKEN, _bearer("Bearer a"), fn, cache)
    assert len(fn.events) == 2
    clock.now += 1
    _run(TOKEN, _bearer("Bearer a"), fn, cache)
    assert len(fn.events) == 3  # 300 s later the authorizer is asked again


def test_a_cached_policy_is_evaluated_against_each_new_method_arn() -> None:
    # The classic API Gateway pitfall: a policy naming only the first resource, cached, denies others.
    cache = AuthorizerCache(Clock())
    fn = Authorizer(_allow(ARN))
    assert _run(TOKEN, _bearer("Bearer a"), fn, cache).response_type is None
    other = ARN.replace("orders/42", "orders/43")
    assert _run(TOKEN, _bearer("Bearer a"), fn, cache, arn=other).response_type == "ACCESS_DENIED"
    assert len(fn.events) == 1


def test_failures_are_not_cached() -> None:
    cache = AuthorizerCache(Clock())
    fn = Authorizer(fail=AuthorizerFailed(unauthorized=True))
    _run(TOKEN, _bearer("Bearer a"), fn, cache)
    _run(TOKEN, _bearer("Bearer a"), fn, cache)
    assert len(fn.events) == 2


def test_request_authorizer_needs_every_identity_source_and_ttl_zero_never_caches() -> None:
    fn = Authorizer(_allow())
    cache = AuthorizerCache(Clock())
    missing_query = HttpRequest("GET", "/x", headers=(("X-Api-Key", "k"),))
    assert _run(REQUEST, missing_query, fn, cache).response_type == "UNAUTHORIZED"
    empty_header = HttpRequest("GET", "/x", "tenant=t", (("X-Api-Key", ""),))
    assert _run(REQUEST, empty_header, fn, cache).response_type == "UNAUTHORIZED"
    assert fn.events == []
    complete = HttpRequest("GET", "/x", "tenant=t", (("x-api-key", "k"),))  # header names are case-insensitive
    assert _run(REQUEST, complete, fn, cache).response_type is None
    assert _run(REQUEST, complete, fn, cache).response_type is None
    assert len(fn.events) == 2  # ReauthorizeEvery: 0

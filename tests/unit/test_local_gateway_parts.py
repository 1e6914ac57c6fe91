"""The local gateway's pure parts: route matching, gateway responses and proxy responses."""

from __future__ import annotations

import base64
import json

import pytest

from infra.local.events import HttpRequest
from infra.local.gateway import GatewayResponses, MalformedResponse, RouteTable, proxy_response
from infra.local.template import Resolver, Route, api, load_template

pytestmark = pytest.mark.unit


def _table(*specs: tuple[str, str]) -> RouteTable:
    return RouteTable([Route(function=f"F{i}", method=m, path=p, authorizer=None) for i, (m, p) in enumerate(specs)])


def _match(table: RouteTable, method: str, path: str) -> tuple[str, str, dict[str, str]]:
    found = table.match(method, path)
    assert found is not None, f"{method} {path} matched nothing"
    route, match = found
    return route.path, route.method, match.path_parameters


def test_a_literal_resource_beats_a_parameter_which_beats_a_greedy_one() -> None:
    table = _table(("GET", "/orders/{order_id}"), ("GET", "/orders/summary"), ("GET", "/{proxy+}"))
    assert _match(table, "GET", "/orders/summary") == ("/orders/summary", "GET", {})
    assert _match(table, "GET", "/orders/42") == ("/orders/{order_id}", "GET", {"order_id": "42"})
    assert _match(table, "GET", "/anything/else/here") == ("/{proxy+}", "GET", {"proxy": "anything/else/here"})


def test_method_is_chosen_after_the_resource_so_a_wrong_method_is_no_route() -> None:
    # API Gateway picks the most specific resource, then the method on it: the literal
    # /orders/summary has no POST, and the POST of /orders/{order_id} is not used for it.
    table = _table(("POST", "/orders/{order_id}"), ("GET", "/orders/summary"))
    assert table.match("POST", "/orders/summary") is None
    assert _match(table, "POST", "/orders/7")[0] == "/orders/{order_id}"
    assert table.match("DELETE", "/orders/7") is None


def test_any_matches_every_method_but_an_exact_method_wins() -> None:
    table = _table(("ANY", "/open"), ("GET", "/open"))
    assert _match(table, "GET", "/open")[1] == "GET"
    assert _match(table, "POST", "/open")[1] == "ANY"


def test_parameters_are_url_decoded_and_empty_segments_do_not_match() -> None:
    table = _table(("GET", "/users/{name}"))
    assert _match(table, "GET", "/users/J%C3%B6rg%20K")[2] == {"name": "Jörg K"}
    assert table.match("GET", "/users/") is None
    assert table.match("GET", "/users/a/b") is None
    assert table.match("GET", "/nothing") is None


def test_a_greedy_segment_must_be_last() -> None:
    with pytest.raises(ValueError, match="greedy"):
        _table(("GET", "/{proxy+}/tail"))


@pytest.fixture(scope="module")
def responses() -> GatewayResponses:
    template = load_template()
    return GatewayResponses(api(template, Resolver(template=template, parameters={"Stage": "local"})).gateway_responses)


def _render(responses: GatewayResponses, kind: str, message: str | None, **kw: object):  # type: ignore[no-untyped-def]
    return responses.render(kind, message, HttpRequest("GET", "/nope"), request_id="rid-1", stage="local", **kw)


def test_missing_route_answers_403_with_the_templates_default_4xx_body(responses: GatewayResponses) -> None:
    response = _render(responses, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
    assert response.status == 403
    assert response.json() == {"error": {"code": "gateway_rejected", "message": "Missing Authentication Token"}}
    assert response.header("Content-Type") == "application/json"
    assert response.header("x-amzn-ErrorType") == "MissingAuthenticationTokenException"
    assert response.header("x-amzn-RequestId") == "rid-1"


def test_unauthorized_and_access_denied_use_their_own_status_headers_and_body(responses: GatewayResponses) -> None:
    unauthorized = _render(responses, "UNAUTHORIZED", "Unauthorized")
    assert unauthorized.status == 401
    assert unauthorized.header("WWW-Authenticate") == "Bearer"
    assert unauthorized.json()["error"]["code"] == "unauthorized"
    denied = _render(responses, "ACCESS_DENIED", "User is not authorized to access this resource")
    assert denied.status == 401  # the template turns API Gateway's 403 into 401
    assert denied.json()["error"]["message"] == "The access token was refused."


def test_function_failures_are_502_with_the_default_5xx_body(responses: GatewayResponses) -> None:
    response = _render(responses, "DEFAULT_5XX", "Internal server error", status=502)
    assert response.status == 502
    assert response.json() == {
        "error": {"code": "internal_error", "message": "The service failed to answer; try again later."}
    }


def test_an_authorizer_failure_falls_back_to_default_5xx(responses: GatewayResponses) -> None:
    response = _render(responses, "AUTHORIZER_CONFIGURATION_ERROR", None)
    assert response.status == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_without_declared_responses_api_gateways_own_body_is_used() -> None:
    response = GatewayResponses({}).render(
        "MISSING_AUTHENTICATION_TOKEN",
        "Missing Authentication Token",
        HttpRequest("GET", "/x"),
        request_id="r",
        stage="s",
    )
    assert response.status == 403
    assert response.json() == {"message": "Missing Authentication Token"}
    null_message = GatewayResponses({}).render(
        "AUTHORIZER_CONFIGURATION_ERROR", None, HttpRequest("GET", "/x"), request_id="r", stage="s"
    )
    assert null_message.json() == {"message": None}


def test_default_4xx_status_code_applies_to_undeclared_4xx_types_and_vtl_references_are_filled() -> None:
    declared = {
        "DEFAULT_4XX": {
            "StatusCode": "418",
            "ResponseParameters": {"Headers": {"X-Path": "method.request.header.X-Trace", "X-Static": "'s'"}},
            "ResponseTemplates": {
                "application/json": '{"t": "$context.error.responseType", "id": "$context.requestId", '
                '"q": "$!context.nothing", "kept": "$context.nothing"}'
            },
        }
    }
    request = HttpRequest("GET", "/x", headers=(("X-Trace", "abc"),))
    response = GatewayResponses(declared).render("UNAUTHORIZED", "Unauthorized", request, request_id="r-9", stage="s")
    assert response.status == 418
    assert response.header("X-Path") == "abc"
    assert response.header("X-Static") == "s"
    assert json.loads(response.body) == {
        "t": "UNAUTHORIZED",
        "id": "r-9",
        "q": "",
        "kept": "$context.nothing",
    }


def test_proxy_response_merges_headers_with_multi_value_winning() -> None:
    response = proxy_response(
        {
            "statusCode": 201,
            "headers": {"X-One": "1", "X-Both": "single"},
            "multiValueHeaders": {"X-Both": ["a", "b"], "Set-Cookie": ["c=1", "d=2"]},
            "body": '{"ok": true}',
        }
    )
    assert response.status == 201
    assert ("X-One", "1") in response.headers
    assert [v for k, v in response.headers if k == "X-Both"] == ["a", "b"]
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["c=1", "d=2"]
    assert response.header("Content-Type") == "application/json"
    assert response.body == b'{"ok": true}'


def test_proxy_response_decodes_base64_bodies() -> None:
    raw = b"\x89PNG"
    response = proxy_response(
        {"statusCode": 200, "body": base64.b64encode(raw).decode(), "isBase64Encoded": True, "headers": {}}
    )
    assert response.body == raw


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "ok",
        {"body": "x"},
        {"statusCode": "abc"},
        {"statusCode": 200, "body": {"a": 1}},
        {"statusCode": 700},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "body": "***", "isBase64Encoded": True},
    ],
)
def test_malformed_proxy_answers_are_refused(answer: object) -> None:
    with pytest.raises(MalformedResponse):
        proxy_response(answer)

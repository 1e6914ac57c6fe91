"""The OpenAPI document (infra/openapi.py): fresh, valid, and faithful to template.yaml and the contract."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local.template import load_template, routes
from infra.openapi import (
    CALLBACK_PATH,
    CALLBACK_SIGNATURE_HEADERS,
    DOCUMENT,
    SCHEMA_REF,
    build_document,
    merge_components,
    render,
    validate,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_the_committed_copy_is_what_the_handlers_generate_now(document: dict[str, Any]) -> None:
    # Given the handlers and template.yaml as they are, when the document is generated again,
    # then docs/openapi.json is byte for byte that document: `make openapi` refreshes it.
    assert DOCUMENT.read_text(encoding="utf-8") == render(document), "docs/openapi.json is stale: run `make openapi`"


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema or a dangling $ref


def test_every_template_route_is_one_operation_and_nothing_else(document: dict[str, Any]) -> None:
    declared = {(r.path, r.method.lower()) for r in routes(load_template())}
    assert {(path, method) for path, method, _ in _operations(document)} == declared


def test_bearer_security_is_exactly_the_routes_behind_the_authorizer(document: dict[str, Any]) -> None:
    guarded = {(r.path, r.method.lower()): r.authorizer_name for r in routes(load_template()) if r.authorizer_name}
    assert guarded, "template.yaml guards no route"
    for path, method, op in _operations(document):
        names = {name for requirement in op.get("security", []) for name in requirement}
        if (path, method) in guarded:
            assert all(guarded[(path, method)] in req for req in op["security"]), (path, method)
        else:
            assert not names & set(guarded.values()), f"{method} {path} is public but documents a Bearer token"
    scheme = document["components"]["securitySchemes"]["JwtAuthorizer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")


def test_every_error_response_is_the_contract_error_body(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]
    assert document["components"]["schemas"]["ErrorDetail"]["required"] == ["code", "message"]
    for path, method, op in _operations(document):
        statuses = op["responses"]
        assert {"422", "429", "4XX", "5XX"} <= set(statuses), (path, method)
        for status, response in statuses.items():
            if status[0] in "45":
                (media,) = response["content"].values()
                assert media["schema"] == {"$ref": SCHEMA_REF + "ErrorBody"}, (path, method, status)
    text = json.dumps(document)
    for powertools_default in ("HTTPValidationError", "ResponseValidationError", '"detail"'):
        assert powertools_default not in text


def test_a_route_with_the_authorizer_documents_401(document: dict[str, Any]) -> None:
    for path, method, op in _operations(document):
        if op.get("security") and path != CALLBACK_PATH:
            assert "401" in op["responses"], (path, method)


def test_no_content_responses_have_no_body(document: dict[str, Any]) -> None:
    logout = document["paths"]["/auth/logout"]["post"]["responses"]["204"]
    assert "content" not in logout


def test_integer_bounds_stay_integers(document: dict[str, Any]) -> None:
    (amount,) = [p for p in document["paths"]["/channels"]["get"]["parameters"] if p["name"] == "amount"]
    bounds = amount["schema"]["anyOf"][0]
    assert bounds["maximum"] == 10**15
    assert isinstance(bounds["maximum"], int)


def test_every_registered_provider_has_its_callback_signature_documented() -> None:
    from paycore.providers import known_providers

    assert set(known_providers()) <= set(CALLBACK_SIGNATURE_HEADERS)


def test_clashing_component_names_are_renamed_per_part_and_identical_ones_kept_once() -> None:
    order = {"type": "object", "properties": {"id": {"type": "string"}}}
    other_order = {"type": "object", "properties": {"number": {"type": "integer"}}}
    shared = {"type": "string", "pattern": "^[A-Z]{3}$"}

    def part(order_schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "paths": {"/x": {"get": {"responses": {"200": {"$ref": SCHEMA_REF + "Order"}}}}},
            "components": {
                "schemas": {
                    "Order": {
                        **order_schema,
                        "properties": {**order_schema["properties"], "c": {"$ref": SCHEMA_REF + "Currency"}},
                    },
                    "Currency": shared,
                }
            },
        }

    merged, parts = merge_components({"orders": part(order), "sandbox": part(other_order)})
    assert set(merged) == {"orders.Order", "sandbox.Order", "Currency"}
    assert parts["orders"]["paths"]["/x"]["get"]["responses"]["200"]["$ref"] == SCHEMA_REF + "orders.Order"
    assert parts["sandbox"]["paths"]["/x"]["get"]["responses"]["200"]["$ref"] == SCHEMA_REF + "sandbox.Order"
    assert merged["sandbox.Order"]["properties"]["c"]["$ref"] == SCHEMA_REF + "Currency"

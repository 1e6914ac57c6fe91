"""template.yaml holds the shape every other part relies on."""

import pytest

from infra.local.template import Resolver, functions, load_template, resources_of_type, routes

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def test_globals_are_python313_on_arm64_with_json_logs(template: dict) -> None:
    glob = template["Globals"]["Function"]
    assert glob["Runtime"] == "python3.13"
    assert glob["Architectures"] == ["arm64"]
    assert glob["LoggingConfig"]["LogFormat"] == "JSON"
    assert glob["Tracing"] == "Active"


def test_every_function_uses_the_paycore_layer_and_has_a_service_name(template: dict) -> None:
    resolver = Resolver(template=template, parameters={"Stage": "t"})
    for spec in functions(template, resolver).values():
        assert spec.environment["POWERTOOLS_SERVICE_NAME"], spec.logical_id
        assert spec.handler == "app.lambda_handler"
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "PaycoreLayer"}]


def test_every_function_directory_exists_with_a_handler(template: dict) -> None:
    from tests.helpers import ROOT

    resolver = Resolver(template=template, parameters={"Stage": "t"})
    for spec in functions(template, resolver).values():
        assert (ROOT / "functions" / spec.name / "app.py").is_file(), spec.name


def test_tables_have_pitr_and_encryption(template: dict) -> None:
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    assert tables
    for lid, res in tables.items():
        props = res["Properties"]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, lid
        assert props["SSESpecification"]["SSEEnabled"] is True, lid
        assert props["BillingMode"] == "PAY_PER_REQUEST", lid


def test_channels_route_is_declared(template: dict) -> None:
    declared = {(r.method, r.path) for r in routes(template)}
    assert ("GET", "/channels") in declared


def test_gateway_responses_use_the_contract_error_shape(template: dict) -> None:
    import json

    responses = template["Resources"]["PaymentsApi"]["Properties"]["GatewayResponses"]
    for name in ("DEFAULT_4XX", "DEFAULT_5XX"):
        body = responses[name]["ResponseTemplates"]["application/json"]
        # the message is a VTL variable that API Gateway fills with a quoted JSON string
        filled = json.loads(body.replace("$context.error.messageString", '"Missing Authentication Token"'))
        assert set(filled["error"]) == {"code", "message"}


def test_stage_is_substituted_into_names(template: dict) -> None:
    resolver = Resolver(template=template, parameters={"Stage": "prod"})
    assert resolver.ref("ChannelsTable") == "serverless-payments-prod-channels"

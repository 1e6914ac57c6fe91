"""What template.yaml promises about identity: the authorizer on Bearer routes, no cache, secrets
without values, and each function's access limited to its own tables and secrets."""

import pytest

from infra.local.template import load_template, routes

pytestmark = pytest.mark.unit

PUBLIC_IDENTITY_ROUTES = {
    ("POST", "/auth/register"),
    ("POST", "/auth/verify"),
    ("POST", "/auth/verification-code"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("GET", "/.well-known/jwks.json"),
}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def test_every_route_needs_the_authorizer_unless_it_opts_out(template: dict) -> None:
    auth = template["Resources"]["PaymentsApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "JwtAuthorizer"
    by_route = {(r.method, r.path): r.authorizer for r in routes(template)}
    for route in PUBLIC_IDENTITY_ROUTES:
        assert by_route[route] is None, route
    assert by_route[("GET", "/channels")] == "AuthorizerFunction"
    assert by_route[("POST", "/auth/logout")] == "AuthorizerFunction"


def test_the_authorizer_reads_the_bearer_header_and_is_never_cached(template: dict) -> None:
    spec = template["Resources"]["PaymentsApi"]["Properties"]["Auth"]["Authorizers"]["JwtAuthorizer"]
    assert spec["FunctionArn"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert spec["FunctionPayloadType"] == "TOKEN"
    assert spec["Identity"]["Header"] == "Authorization"
    assert spec["Identity"]["ReauthorizeEvery"] == 0  # a logout refuses the very next call


def test_secrets_hold_no_values_in_the_template(template: dict) -> None:
    jwt_keys = template["Resources"]["JwtSigningKeysSecret"]["Properties"]
    assert "SecretString" not in jwt_keys
    assert "GenerateSecretString" not in jwt_keys
    hmac_root = template["Resources"]["IdentityHmacSecret"]["Properties"]
    assert "SecretString" not in hmac_root
    generated = hmac_root["GenerateSecretString"]
    assert (generated["GenerateStringKey"], generated["PasswordLength"]) == ("v1", 64)


def _policies(template: dict, function: str) -> list:
    return template["Resources"][function]["Properties"]["Policies"]


def test_the_authorizer_reads_only_sessions_and_the_jwt_keys(template: dict) -> None:
    assert _policies(template, "AuthorizerFunction") == [
        {"DynamoDBReadPolicy": {"TableName": {"Ref": "SessionsTable"}}},
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "JwtSigningKeysSecret"}}},
    ]


def test_the_jwt_private_keys_are_not_readable_where_nothing_is_signed_or_verified(template: dict) -> None:
    # Login signs tokens, the authorizer verifies them; orders may sign order payloads (sign_detached).
    grant = {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "JwtSigningKeysSecret"}}}
    assert grant in _policies(template, "LoginFunction")
    assert grant in _policies(template, "AuthorizerFunction")
    for lid in ("RegisterFunction", "ChannelsFunction"):
        assert grant not in template["Resources"][lid]["Properties"].get("Policies", []), lid


def test_identity_functions_have_their_service_names(template: dict) -> None:
    for lid, name in (
        ("RegisterFunction", "register"),
        ("LoginFunction", "login"),
        ("AuthorizerFunction", "authorizer"),
    ):
        assert template["Resources"][lid]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == name

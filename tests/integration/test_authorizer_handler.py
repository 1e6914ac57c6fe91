"""The authorizer function on moto: Allow with the caller in the context, Deny for every bad token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from paycore.identity import keys, sessions
from paycore.identity.keys import KeySet
from tests.conftest import AwsStack, load_handler
from tests.helpers import FakeContext, load_event
from tests.identity_support import (
    METHOD_ARN,
    TestUser,
    authorize,
    call,
    effect,
)

pytestmark = pytest.mark.integration

ISS, AUD = "urn:serverless-payments:test", "urn:serverless-payments:test:api"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _signed(claims: dict[str, Any], *, typ: str = "at+jwt", key_set: KeySet | None = None) -> str:
    key_set = key_set or keys.current_key_set()
    return jwt.encode(
        claims,
        key_set.private_keys[key_set.active_kid],
        algorithm="EdDSA",
        headers={"kid": key_set.active_kid, "typ": typ},
    )


def _alg_none(claims: dict[str, Any]) -> str:
    header = {"alg": "none", "typ": "at+jwt", "kid": keys.current_key_set().active_kid}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_public_key(claims: dict[str, Any]) -> str:
    key_set = keys.current_key_set()
    public_pem = key_set.public_keys[key_set.active_kid].public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key_set.active_kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"


def _unknown_kid(claims: dict[str, Any]) -> str:
    stranger = KeySet.from_secret(keys.add_key(None)[0])
    return _signed(claims, key_set=stranger)


BAD_TOKENS: dict[str, Callable[[dict[str, Any], dict[str, Any]], str | None]] = {
    "no token": lambda c, s: None,
    "alg none": lambda c, s: _alg_none(c),
    "HS256 with the public key as secret": lambda c, s: _hs256_with_public_key(c),
    "expired": lambda c, s: _signed({**c, "iat": c["iat"] - 1000, "exp": c["iat"] - 100}),
    "wrong audience": lambda c, s: _signed({**c, "aud": "urn:serverless-payments:prod:api"}),
    "wrong issuer": lambda c, s: _signed({**c, "iss": "urn:serverless-payments:prod"}),
    "refresh token as access token": lambda c, s: s["refresh_token"],
    "refresh-type JWT": lambda c, s: _signed({**c, "token_use": "refresh"}),
    "unknown kid": lambda c, s: _unknown_kid(c),
    "someone else's session": lambda c, s: _signed({**c, "sub": "another-user"}),
    "unknown session": lambda c, s: _signed({**c, "sid": "00000000-0000-0000-0000-000000000000"}),
    "tampered signature": lambda c, s: (
        s["access_token"][:-4] + ("AAAA" if not s["access_token"].endswith("AAAA") else "BBBB")
    ),
}


def test_a_valid_token_is_allowed_with_the_caller_in_the_context(session: dict) -> None:
    claims = _claims_of(session["access_token"])
    result = authorize(session["access_token"])
    assert effect(result) == "Allow"
    assert result["principalId"] == claims["sub"]
    assert result["context"] == {"user_id": claims["sub"], "session_id": claims["sid"], "key_version": "v1"}
    assert result["policyDocument"]["Statement"][0]["Resource"] == METHOD_ARN


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_tokens_are_denied_not_raised(session: dict, case: str) -> None:
    token = BAD_TOKENS[case](_claims_of(session["access_token"]), session)
    result = authorize(token)
    assert effect(result) == "Deny"
    assert result["principalId"] == "anonymous"
    assert "context" not in result


def test_a_logged_out_session_is_denied_on_the_next_call(session: dict) -> None:
    claims = _claims_of(session["access_token"])
    assert effect(authorize(session["access_token"])) == "Allow"
    sessions.end_session(claims["sid"])
    assert effect(authorize(session["access_token"])) == "Deny"


def test_request_events_are_authorized_too(session: dict) -> None:
    event = load_event("authorizer", "request")
    event["headers"]["Authorization"] = f"Bearer {session['access_token']}"
    result = load_handler("authorizer").lambda_handler(event, FakeContext())
    assert effect(result) == "Allow"
    assert result["policyDocument"]["Statement"][0]["Resource"] == event["methodArn"]


def test_the_sample_token_event_is_denied(aws: AwsStack) -> None:
    assert effect(load_handler("authorizer").lambda_handler(load_event("authorizer", "token"), FakeContext())) == "Deny"


def test_the_authorizer_context_reaches_the_channels_backend(seeded_channels: AwsStack, active_user: TestUser) -> None:
    # What API Gateway does for GET /channels: authorizer first, then the backend with its context.
    tokens = json.loads(call("/auth/login", active_user.credentials())["body"])
    result = authorize(tokens["access_token"])
    event = load_event("channels", "list_cny_1000")
    event["requestContext"]["authorizer"] = {"principalId": result["principalId"], **result["context"]}
    response = load_handler("channels").lambda_handler(event, FakeContext())
    assert response["statusCode"] == 200


def test_a_token_issued_in_the_future_is_denied(session: dict) -> None:
    claims = _claims_of(session["access_token"])
    later = int(time.time()) + 3600
    assert effect(authorize(_signed({**claims, "iat": later, "exp": later + 900}))) == "Deny"

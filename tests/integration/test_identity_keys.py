"""Key rotation end to end on moto, driven by infra/keys.py (what `make keys` runs on a stage)."""

from __future__ import annotations

import json

import jwt
import pytest

from infra import keys as keys_cli
from paycore.config import reset_settings
from paycore.errors import Unauthorized
from paycore.identity import keys, sessions
from tests.conftest import AwsStack
from tests.helpers import body
from tests.identity_support import (
    TestUser,
    authorize,
    call,
    effect,
    log_in,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def uncached_secrets(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> AwsStack:
    """Read secrets on every use, so a rotation shows at once (deployed: within 5 minutes)."""
    monkeypatch.setenv("SECRETS_CACHE_SECONDS", "0")
    reset_settings()
    return aws


def _keys(aws: AwsStack, *args: str) -> list[str]:
    action, arg = args[0], (args[1] if len(args) > 1 else None)
    return keys_cli.run(action, arg, stage="test", client=aws.client("secretsmanager"))


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def _published() -> list[str]:
    return [k["kid"] for k in body(call("/.well-known/jwks.json"))["keys"]]


def test_secret_names_come_from_the_template() -> None:
    assert keys_cli.secret_ids("prod") == {
        "JwtSigningKeysSecret": "serverless-payments/prod/jwt-signing-keys",
        "IdentityHmacSecret": "serverless-payments/prod/identity-hmac",
    }


def test_init_fills_empty_secrets_once(aws: AwsStack) -> None:
    client = aws.client("secretsmanager")
    for lid in ("JwtSigningKeysSecret", "IdentityHmacSecret"):
        client.put_secret_value(SecretId=aws.name(lid), SecretString="{}")
    created = _keys(aws, "init")
    assert created[0].startswith("created JWT key")
    assert created[1] == "created HMAC version v1 (current)"
    again = _keys(aws, "init")
    assert not any(line.startswith("created") for line in again)
    assert not any("PRIVATE KEY" in line for line in created + again)


def test_rotating_the_jwt_key_keeps_old_tokens_valid_until_the_old_key_is_retired(
    uncached_secrets: AwsStack, active_user: TestUser
) -> None:
    aws = uncached_secrets
    old_kid = keys.current_key_set().active_kid
    before = log_in(active_user)
    assert _kid(before["access_token"]) == old_kid

    added = _keys(aws, "add")[0]
    new_kid = added.split()[3]
    assert _published() == [old_kid, new_kid]  # published before it signs anything
    assert _kid(log_in(active_user)["access_token"]) == old_kid

    _keys(aws, "activate", new_kid)
    after = log_in(active_user)
    assert _kid(after["access_token"]) == new_kid
    # The overlap: tokens of both kids pass the authorizer.
    assert effect(authorize(before["access_token"])) == effect(authorize(after["access_token"])) == "Allow"

    with pytest.raises(ValueError, match="active"):
        _keys(aws, "retire", new_kid)
    _keys(aws, "retire", old_kid)
    assert _published() == [new_kid]
    assert effect(authorize(before["access_token"])) == "Deny"
    assert effect(authorize(after["access_token"])) == "Allow"


def test_order_signatures_verify_with_the_published_jwks(uncached_secrets: AwsStack) -> None:
    payload = json.dumps({"order_id": "o-1", "amount": 1000, "currency": "CNY"}, separators=(",", ":")).encode()
    signature = keys.sign_detached(payload)
    jwks = jwt.PyJWKSet.from_dict(body(call("/.well-known/jwks.json")))
    header = jwt.get_unverified_header(signature)
    verified = jwt.api_jws.PyJWS().decode_complete(
        signature, jwks[header["kid"]].key, algorithms=["EdDSA"], detached_payload=payload
    )
    assert verified["payload"] == payload
    assert keys.verify_detached(signature, payload)["kid"] == header["kid"]
    with pytest.raises(keys.BadSignature):
        keys.verify_detached(signature, payload.replace(b"1000", b"1001"))


def test_rotating_the_hmac_secret_leaves_live_sessions_their_signing_keys(
    uncached_secrets: AwsStack, active_user: TestUser
) -> None:
    aws = uncached_secrets
    old = log_in(active_user)
    old_sid = jwt.decode(old["access_token"], options={"verify_signature": False})["sid"]
    old_key = sessions.signing_key_for(old_sid)

    assert _keys(aws, "rotate-hmac")[0] == "HMAC version v2 is current"
    assert sessions.signing_key_for(old_sid) == old_key  # derived with the session's own version
    new = log_in(active_user)
    new_sid = jwt.decode(new["access_token"], options={"verify_signature": False})["sid"]
    stored = aws.client("dynamodb").get_item(TableName=aws.name("SessionsTable"), Key={"session_id": {"S": new_sid}})
    assert stored["Item"]["key_version"] == {"S": "v2"}

    with pytest.raises(ValueError, match="current"):
        _keys(aws, "retire-hmac", "v2")
    _keys(aws, "retire-hmac", "v1")  # only once every v1 session has expired (30 days)
    with pytest.raises(Unauthorized) as raised:
        sessions.signing_key_for(old_sid)
    assert raised.value.code == "session_inactive"
    # The same with the version the authorizer passes in its context: no key for a retired version.
    with pytest.raises(Unauthorized) as raised:
        sessions.signing_key_for(old_sid, "v1")
    assert raised.value.code == "session_inactive"
    assert sessions.signing_key_for(new_sid) == sessions.signing_key_for(new_sid, "v2")

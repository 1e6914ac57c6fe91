"""POST /auth/login, /auth/refresh, /auth/logout and GET /.well-known/jwks.json on moto."""

from __future__ import annotations

import base64
from typing import Any

import jwt
import pytest

from paycore.errors import Throttled, Unauthorized
from paycore.identity import login, sessions
from tests.conftest import AwsStack
from tests.helpers import body
from tests.identity_support import (
    TestUser,
    authorize,
    call,
    count_items,
    effect,
    log_in,
)

pytestmark = pytest.mark.integration


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _context(tokens: dict[str, Any]) -> dict[str, str]:
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return {"user_id": claims["sub"], "session_id": claims["sid"]}


@pytest.fixture
def argon2_verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verify that runs (the real one runs too: this only counts)."""
    from argon2 import PasswordHasher

    calls: list[str] = []
    real = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: calls.append(h) or real(self, h, p))
    return calls


def test_login_returns_the_contract_shape(active_user: TestUser) -> None:
    response = call("/auth/login", active_user.credentials())
    assert response["statusCode"] == 200
    tokens = body(response)
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token", "signing_key"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 900)
    assert len(_b64decode(tokens["refresh_token"])) == 32  # 256 bits
    key = _b64decode(tokens["signing_key"])
    assert len(key) == 32
    assert "=" not in tokens["signing_key"]
    assert _context(tokens)["user_id"] == active_user.user_id


def test_the_access_token_verifies_with_the_published_jwks(session: dict) -> None:
    response = call("/.well-known/jwks.json")
    assert response["statusCode"] == 200
    assert response["multiValueHeaders"]["Cache-Control"] == ["public, max-age=300"]
    jwks = jwt.PyJWKSet.from_dict(body(response))
    kid = jwt.get_unverified_header(session["access_token"])["kid"]
    claims = jwt.decode(
        session["access_token"],
        jwks[kid].key,
        algorithms=["EdDSA"],
        audience="urn:serverless-payments:test:api",
        issuer="urn:serverless-payments:test",
    )
    assert claims["token_use"] == "access"


def test_the_signing_key_is_what_signing_key_for_derives(session: dict) -> None:
    session_id = _context(session)["session_id"]
    assert sessions.signing_key_for(session_id) == _b64decode(session["signing_key"])


def test_nothing_secret_is_stored_on_the_session(aws: AwsStack, session: dict) -> None:
    items = aws.client("dynamodb").scan(TableName=aws.name("SessionsTable"))["Items"]
    tokens_table = aws.client("dynamodb").scan(TableName=aws.name("RefreshTokensTable"))["Items"]
    stored = str(items) + str(tokens_table)
    assert session["refresh_token"] not in stored
    assert session["signing_key"] not in stored
    assert items[0]["key_version"] == {"S": "v1"}


def test_wrong_password_and_unknown_user_answer_alike_after_one_verify_each(
    active_user: TestUser, argon2_verifications: list[str]
) -> None:
    wrong = call("/auth/login", {"username": active_user.username, "password": "not the password"})
    assert len(argon2_verifications) == 1
    unknown = call("/auth/login", {"username": "nobody-here", "password": "not the password"})
    assert len(argon2_verifications) == 2  # the unknown user cost an argon2 verify too
    assert wrong["statusCode"] == unknown["statusCode"] == 401
    assert wrong["body"] == unknown["body"]
    assert body(wrong) == {"error": {"code": "invalid_credentials", "message": "the username or password is wrong"}}
    # Both were checked against hashes with the same parameters, so they cost the same work.
    assert {h.split("$")[3] for h in argon2_verifications} == {"m=19456,t=2,p=1"}


def test_ten_failures_in_fifteen_minutes_throttle_the_account(active_user: TestUser) -> None:
    for _ in range(10):
        assert call("/auth/login", {"username": active_user.username, "password": "guess"})["statusCode"] == 401
    throttled = call("/auth/login", active_user.credentials())  # even the right password waits
    assert throttled["statusCode"] == 429
    assert body(throttled)["error"]["code"] == "too_many_attempts"
    retry_after = int(throttled["multiValueHeaders"]["Retry-After"][0])
    assert 0 < retry_after <= 15 * 60


def test_the_throttle_lifts_when_the_window_ends(aws: AwsStack, active_user: TestUser) -> None:
    import time

    t0 = int(time.time())
    for _ in range(10):
        with pytest.raises(Unauthorized):
            login.login(active_user.username, "guess", now=t0)
    with pytest.raises(Throttled) as raised:
        login.login(active_user.username, active_user.password, now=t0 + 899)
    assert raised.value.retry_after == 1
    tokens = login.login(active_user.username, active_user.password, now=t0 + 900)
    assert tokens.token_type == "Bearer"
    assert count_items(aws, "AuthThrottleTable") == 0  # a success clears the account's attempts


def test_unknown_usernames_are_throttled_like_real_ones(aws: AwsStack) -> None:
    answers = [call("/auth/login", {"username": "ghost", "password": "guess"})["statusCode"] for _ in range(11)]
    assert answers == [401] * 10 + [429]


def test_refresh_rotates_and_a_reused_token_revokes_the_session(session: dict) -> None:
    first = call("/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert first["statusCode"] == 200
    rotated = body(first)
    assert rotated["refresh_token"] != session["refresh_token"]
    assert rotated["access_token"] != session["access_token"]
    assert rotated["signing_key"] == session["signing_key"]  # one key per session
    assert effect(authorize(rotated["access_token"])) == "Allow"

    reused = call("/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert reused["statusCode"] == 401
    assert body(reused)["error"]["code"] == "token_reused"

    # The whole session is gone: its newest refresh token, its access tokens, its signing key.
    after = call("/auth/refresh", {"refresh_token": rotated["refresh_token"]})
    assert body(after)["error"]["code"] == "session_inactive"
    assert effect(authorize(rotated["access_token"])) == "Deny"
    with pytest.raises(Unauthorized) as raised:
        sessions.signing_key_for(_context(session)["session_id"])
    assert raised.value.code == "session_inactive"


def test_a_token_reused_several_rotations_later_is_still_recognised(session: dict) -> None:
    current = session
    for _ in range(3):
        current = body(call("/auth/refresh", {"refresh_token": current["refresh_token"]}))
    reused = call("/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert body(reused)["error"]["code"] == "token_reused"


def test_an_unknown_refresh_token_is_invalid_and_revokes_nothing(session: dict) -> None:
    response = call("/auth/refresh", {"refresh_token": "x" * 43})
    assert response["statusCode"] == 401
    assert body(response)["error"]["code"] == "invalid_token"
    assert effect(authorize(session["access_token"])) == "Allow"


def test_logout_ends_the_session(session: dict) -> None:
    assert effect(authorize(session["access_token"])) == "Allow"
    response = call("/auth/logout", authorizer=_context(session))
    assert response["statusCode"] == 204
    assert not response.get("body")
    assert effect(authorize(session["access_token"])) == "Deny"
    refresh = call("/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert body(refresh)["error"]["code"] == "session_inactive"
    with pytest.raises(Unauthorized):
        sessions.signing_key_for(_context(session)["session_id"])


def test_logout_without_the_authorizer_context_is_401(aws: AwsStack) -> None:
    response = call("/auth/logout")
    assert response["statusCode"] == 401
    assert body(response)["error"]["code"] == "unauthorized"


def test_a_session_expires_thirty_days_after_login(active_user: TestUser) -> None:
    import time

    t0 = int(time.time()) - sessions.SESSION_SECONDS - 5  # a login 30 days and 5 seconds ago
    tokens = login.login(active_user.username, active_user.password, now=t0)
    with pytest.raises(Unauthorized) as raised:
        sessions.refresh(tokens.refresh_token)
    assert raised.value.code == "session_inactive"
    with pytest.raises(Unauthorized):
        sessions.signing_key_for(_context(tokens.model_dump())["session_id"])


def test_signing_key_for_an_unknown_session_is_session_inactive(aws: AwsStack) -> None:
    with pytest.raises(Unauthorized) as raised:
        sessions.signing_key_for("00000000-0000-0000-0000-000000000000")
    assert raised.value.code == "session_inactive"


def test_each_login_is_its_own_session_with_its_own_signing_key(active_user: TestUser) -> None:
    first, second = log_in(active_user), log_in(active_user)
    assert _context(first)["session_id"] != _context(second)["session_id"]
    assert first["signing_key"] != second["signing_key"]
    call("/auth/logout", authorizer=_context(first))
    assert effect(authorize(first["access_token"])) == "Deny"
    assert effect(authorize(second["access_token"])) == "Allow"


def test_refresh_tokens_carry_the_session_key_version_and_old_ones_still_refresh(aws: AwsStack, session: dict) -> None:
    """A refresh issues tokens from what its refresh token copies of the session (no read of the
    session); a token stored before the copy existed reads the session instead and works the same."""
    table = aws.name("RefreshTokensTable")
    client = aws.client("dynamodb")
    stored = client.scan(TableName=table)["Items"]
    assert [item["key_version"] for item in stored] == [{"S": "v1"}]
    rotated = body(call("/auth/refresh", {"refresh_token": session["refresh_token"]}))
    assert rotated["signing_key"] == session["signing_key"]

    legacy_hash = sessions.hash_refresh_token(rotated["refresh_token"])
    client.update_item(TableName=table, Key={"token_hash": {"S": legacy_hash}}, UpdateExpression="REMOVE key_version")
    again = call("/auth/refresh", {"refresh_token": rotated["refresh_token"]})
    assert again["statusCode"] == 200
    assert body(again)["signing_key"] == session["signing_key"]
    assert effect(authorize(body(again)["access_token"])) == "Allow"


def test_a_refresh_after_logout_writes_nothing(aws: AwsStack, session: dict) -> None:
    call("/auth/logout", authorizer=_context(session))
    before = aws.client("dynamodb").scan(TableName=aws.name("RefreshTokensTable"))["Items"]
    refused = call("/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert body(refused)["error"]["code"] == "session_inactive"
    assert aws.client("dynamodb").scan(TableName=aws.name("RefreshTokensTable"))["Items"] == before


def test_the_authorizer_key_version_gives_the_session_signing_key(session: dict) -> None:
    context = authorize(session["access_token"])["context"]
    key = sessions.signing_key_for(context["session_id"], context["key_version"])
    assert key == sessions.signing_key_for(context["session_id"]) == _b64decode(session["signing_key"])

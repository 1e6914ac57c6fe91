"""The whole identity flow over HTTP against the local stack, as a developer walks it with curl:
register, read the code from /_local/outbox, verify, log in, refresh, reuse detected, log out,
access refused. docs/identity.md has the same walk as curl commands."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import requests

from tests.e2e.identity_client import TIMEOUT, Account, fresh_account

pytestmark = pytest.mark.e2e


def _channels(account: Account, tokens: dict[str, Any] | None) -> Any:
    headers = account.bearer(tokens) if tokens else {}
    return requests.get(f"{account.base_url}/channels", params={"currency": "CNY"}, headers=headers, timeout=TIMEOUT)


def test_register_verify_login_refresh_reuse_logout(api_url: str) -> None:
    account = fresh_account(api_url)

    # Register: 201, pending, and one code in the outbox by email and by SMS.
    registered = account.register()
    assert registered.status_code == 201, registered.text
    assert registered.json()["status"] == "pending_verification"
    not_yet = account.post("/auth/login", {"username": account.username, "password": account.password})
    assert not_yet.status_code == 403
    code = account.code_from_outbox()

    # Verify, then log in.
    verified = account.post("/auth/verify", {"username": account.username, "code": code})
    assert verified.status_code == 200
    assert verified.json() == {"status": "active"}
    first = account.log_in()
    assert first["token_type"] == "Bearer"
    assert first["expires_in"] == 900

    # The access token opens a Bearer route and verifies with the published keys.
    assert _channels(account, None).status_code == 401
    assert _channels(account, first).status_code == 200
    jwks = jwt.PyJWKSet.from_dict(requests.get(f"{api_url}/.well-known/jwks.json", timeout=TIMEOUT).json())
    kid = jwt.get_unverified_header(first["access_token"])["kid"]
    claims = jwt.decode(
        first["access_token"], jwks[kid].key, algorithms=["EdDSA"], options={"verify_aud": False, "verify_iss": False}
    )
    assert claims["sub"] == registered.json()["user_id"]

    # Refresh rotates; presenting the used token again revokes the whole session.
    refreshed = account.post("/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _channels(account, second).status_code == 200
    reused = account.post("/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "token_reused"
    assert _channels(account, second).status_code == 401

    # A new session; logout ends it and the next call is refused.
    again = account.log_in()
    assert _channels(account, again).status_code == 200
    assert account.post("/auth/logout", token=again["access_token"]).status_code == 204
    refused = _channels(account, again)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    after = account.post("/auth/refresh", {"refresh_token": again["refresh_token"]})
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "session_inactive"

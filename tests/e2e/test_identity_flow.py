"""The whole identity flow over HTTP against the local stack, as a developer walks it with curl:
register, read the code from /_local/outbox, verify, log in, refresh, reuse detected, log out,
access refused. docs/identity.md has the same walk as curl commands."""

from __future__ import annotations

import re
import secrets
from typing import Any

import jwt
import pytest
import requests

pytestmark = pytest.mark.e2e

TIMEOUT = 10


@pytest.fixture(scope="module")
def base_url(request: pytest.FixtureRequest) -> str:
    """The local stack's API URL from the e2e suite's session fixture ``local_stack``."""
    try:
        stack = request.getfixturevalue("local_stack")
    except pytest.FixtureLookupError:
        pytest.skip("the local stack's e2e fixture (tests/e2e/conftest.py, branch localstack) is not here yet")
    return str(getattr(stack, "api_url", stack)).rstrip("/")


def _post(base_url: str, path: str, payload: dict[str, Any] | None = None, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{base_url}{path}", json=payload, headers=headers, timeout=TIMEOUT)


def _channels(base_url: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{base_url}/channels", params={"currency": "CNY"}, headers=headers, timeout=TIMEOUT)


def _code_from_outbox(base_url: str, phone_number: str, email: str) -> str:
    sms = requests.get(f"{base_url}/_local/outbox", params={"to": phone_number}, timeout=TIMEOUT).json()["sms"]
    emails = requests.get(f"{base_url}/_local/outbox", params={"to": email}, timeout=TIMEOUT).json()["emails"]
    assert len(sms) == 1, sms
    assert len(emails) == 1, emails
    code = re.search(r"\b(\d{6})\b", sms[-1]["message"])
    assert code is not None
    assert code.group(1) in emails[-1]["body"]
    return code.group(1)


def test_register_verify_login_refresh_reuse_logout(base_url: str) -> None:
    suffix = secrets.token_hex(4)
    username, email = f"e2e-{suffix}", f"e2e-{suffix}@example.com"
    phone_number = f"+86138{secrets.randbelow(10**8):08d}"
    password = "correct horse battery staple"

    # Register: 201, pending, and a code in the outbox by email and SMS.
    registered = _post(
        base_url,
        "/auth/register",
        {"username": username, "password": password, "email": email, "phone_number": phone_number},
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["status"] == "pending_verification"
    assert _post(base_url, "/auth/login", {"username": username, "password": password}).status_code == 403
    code = _code_from_outbox(base_url, phone_number, email)

    # Verify, then log in.
    verified = _post(base_url, "/auth/verify", {"username": username, "code": code})
    assert verified.status_code == 200
    assert verified.json() == {"status": "active"}
    login = _post(base_url, "/auth/login", {"username": username, "password": password})
    assert login.status_code == 200, login.text
    first = login.json()
    assert first["token_type"] == "Bearer"
    assert first["expires_in"] == 900

    # The access token opens a Bearer route and verifies with the published keys.
    assert _channels(base_url, None).status_code == 401
    assert _channels(base_url, first["access_token"]).status_code == 200
    jwks = jwt.PyJWKSet.from_dict(requests.get(f"{base_url}/.well-known/jwks.json", timeout=TIMEOUT).json())
    kid = jwt.get_unverified_header(first["access_token"])["kid"]
    claims = jwt.decode(
        first["access_token"], jwks[kid].key, algorithms=["EdDSA"], options={"verify_aud": False, "verify_iss": False}
    )
    assert claims["sub"] == registered.json()["user_id"]

    # Refresh rotates; presenting the used token again revokes the whole session.
    refreshed = _post(base_url, "/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _channels(base_url, second["access_token"]).status_code == 200
    reused = _post(base_url, "/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "token_reused"
    assert _channels(base_url, second["access_token"]).status_code == 401

    # A new session; logout ends it and the next call is refused.
    again = _post(base_url, "/auth/login", {"username": username, "password": password}).json()
    assert _channels(base_url, again["access_token"]).status_code == 200
    logout = _post(base_url, "/auth/logout", token=again["access_token"])
    assert logout.status_code == 204
    refused = _channels(base_url, again["access_token"])
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    after = _post(base_url, "/auth/refresh", {"refresh_token": again["refresh_token"]})
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "session_inactive"

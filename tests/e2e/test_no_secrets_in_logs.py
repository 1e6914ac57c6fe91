"""No secret used in a whole flow appears anywhere in what the local stack printed.

A stack of its own (its output to a file through ``start_local_stack``) serves the flow: register →
the code from the outbox → verify → a wrong password → login → refresh → channels → a signed order
→ checkout Pay → the sandbox's signed webhook → paid → a signed refund → its webhook → a forged
webhook → logout. Then the stack is stopped (every line flushed) and its whole output is searched
for each secret of the flow: the password, the code, every access and refresh token, the signing
key, each X-Signature sent, any webhook signature, and every secret value in the stack's Secrets
Manager (JWT private keys, the identity HMAC root, the sandbox webhook secret, provider secrets).

The second test shows the check can fail: a secret put on purpose where the stack logs it (a
request line's query string) is found.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.e2e.conftest import LocalStackProcess, start_local_stack
from tests.e2e.identity_client import PASSWORD, TIMEOUT, Account, fresh_account, new_account
from tests.leaks import find_leaks, secret_strings

pytestmark = pytest.mark.e2e


class Flow:
    """An account's calls, remembering every secret value that went over the wire."""

    def __init__(self, account: Account):
        self.account = account
        self.secrets: dict[str, str] = {"password": PASSWORD}

    def keep(self, name: str, value: str) -> None:
        self.secrets[f"{name} #{len(self.secrets)}"] = value

    def keep_tokens(self, tokens: dict[str, Any]) -> None:
        self.keep("access token", tokens["access_token"])
        self.keep("access token signature", tokens["access_token"].rsplit(".", 1)[1])
        self.keep("refresh token", tokens["refresh_token"])
        self.keep("signing key", tokens["signing_key"])

    def signed_post(self, path: str, payload: dict[str, Any]) -> requests.Response:
        from paycore import request_signature

        key_b64 = self.account.tokens["signing_key"]
        key = base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4))
        body = json.dumps(payload).encode()
        header = request_signature.sign(key, int(time.time()), secrets.token_urlsafe(16), "POST", path, body)
        self.keep("X-Signature", header)
        self.keep("X-Signature v1", header.rsplit("v1=", 1)[1])
        headers = {**self.account.bearer(), "X-Signature": header, "Content-Type": "application/json"}
        return requests.post(f"{self.account.base_url}{path}", data=body, headers=headers, timeout=TIMEOUT)

    def order(self, order_id: str) -> dict[str, Any]:
        answer = requests.get(
            f"{self.account.base_url}/orders/{order_id}", headers=self.account.bearer(), timeout=TIMEOUT
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


def _wait_for(check: Any, what: str, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def _stack_secrets(stack: LocalStackProcess) -> dict[str, str]:
    """Every secret value in the stack's Secrets Manager (read from its moto server), less the JWT
    key ids: they name the keys and are public (the JWKS publishes them)."""
    jwks = requests.get(f"{stack.api_url}/.well-known/jwks.json", timeout=TIMEOUT).json()
    public = {key["kid"] for key in jwks["keys"]}
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=stack.moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto accepts any credentials
    )
    found: dict[str, str] = {}
    for page in client.get_paginator("list_secrets").paginate():
        for entry in page["SecretList"]:
            raw = client.get_secret_value(SecretId=entry["ARN"]).get("SecretString") or ""
            try:
                value: Any = json.loads(raw)
            except ValueError:
                value = raw
            found |= secret_strings(value, entry["Name"])
    return {name: value for name, value in found.items() if value not in public}


def _walk_the_flow(api_url: str) -> Flow:
    account = fresh_account(api_url)
    flow = Flow(account)
    registered = account.register()
    assert registered.status_code == 201, registered.text
    account.user_id = registered.json()["user_id"]
    code = account.code_from_outbox()
    flow.keep("verification code", code)
    assert account.post("/auth/verify", {"username": account.username, "code": code}).status_code == 200

    wrong = account.post("/auth/login", {"username": account.username, "password": "not the password at all"})
    assert wrong.status_code == 401
    flow.keep("wrong password", "not the password at all")
    flow.keep_tokens(account.log_in())
    refreshed = account.post("/auth/refresh", {"refresh_token": account.tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    account.tokens = refreshed.json()
    flow.keep_tokens(account.tokens)

    channels = requests.get(
        f"{api_url}/channels", params={"amount": 2500, "currency": "CNY"}, headers=account.bearer(), timeout=TIMEOUT
    )
    assert channels.status_code == 200, channels.text

    order_id = str(uuid.uuid4())
    payload = {"order_id": order_id, "amount": 2500, "currency": "CNY", "channel": "auto", "subject": "Green tea"}
    created = flow.signed_post("/orders", payload)
    assert created.status_code == 201, created.text
    checkout_url = created.json()["payment"]["checkout_url"]
    assert requests.post(checkout_url, data={"action": "pay"}, timeout=TIMEOUT).status_code == 200
    _wait_for(lambda: flow.order(order_id)["status"] == "paid", "the sandbox webhook to mark the order paid")

    refund = flow.signed_post(f"/orders/{order_id}/refunds", {"refund_id": "rf-logs-1", "amount": 1000})
    assert refund.status_code == 201, refund.text
    _wait_for(lambda: flow.order(order_id)["status"] == "partially_refunded", "the refund webhook")

    forged = f"t={int(time.time())},v1={secrets.token_hex(32)}"
    flow.keep("forged webhook signature", forged.rsplit("v1=", 1)[1])
    refused = requests.post(
        f"{api_url}/callbacks/sandbox",
        data=json.dumps({"id": "evt_forged", "order_id": order_id}).encode(),
        headers={"Sandbox-Signature": forged, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert 400 <= refused.status_code < 500

    logout = requests.post(f"{api_url}/auth/logout", headers=account.bearer(), timeout=TIMEOUT)
    assert logout.status_code == 204
    return flow


def _report(leaks: list[Any]) -> str:
    return "\n".join(f"{leak.name} ({leak.form}): ...{leak.line}..." for leak in leaks)


def test_a_whole_flow_leaves_no_secret_in_the_stacks_output(tmp_path: Path) -> None:
    stack = start_local_stack(tmp_path)
    try:
        flow = _walk_the_flow(stack.api_url)
        stored = _stack_secrets(stack)
    finally:
        stack.stop()
    output = stack.output()

    # the output is the real thing: the flow's requests and the functions' JSON lines are in it
    assert "POST /orders -> 201" in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith('{"level"')]
    services = {line.get("service") for line in lines}
    assert lines
    assert services
    assert any(line.get("correlation_id") for line in lines)
    assert any(line.get("user_id") == flow.account.user_id for line in lines)

    # the stack's own secrets: the sandbox's webhook secret and the JWT private key at least
    assert any("sandbox-webhook" in name for name in stored)
    assert any("jwt-signing-keys" in name and "line" in name for name in stored)
    leaks = find_leaks(output, {**flow.secrets, **stored})
    assert leaks == [], "secrets in the local stack's output:\n" + _report(leaks)


def test_the_check_fails_when_a_secret_is_logged_on_purpose(tmp_path: Path) -> None:
    stack = start_local_stack(tmp_path)
    try:
        account = new_account(stack.api_url)
        access_token, password = account.tokens["access_token"], account.password
        # The local gateway logs each request line, query string included: a client that puts
        # secrets in a URL gets them logged (as API Gateway would in an access log with the path).
        answer = requests.get(
            f"{stack.api_url}/channels",
            params={"currency": "CNY", "note": password, "token": access_token},
            headers=account.bearer(),
            timeout=TIMEOUT,
        )
        assert answer.status_code in (200, 422)
    finally:
        stack.stop()
    leaks = find_leaks(stack.output(), {"password": password, "access token": access_token})
    assert sorted(leak.name for leak in leaks) == ["access token", "password"], _report(leaks)
    assert all("GET /channels?" in leak.line for leak in leaks)

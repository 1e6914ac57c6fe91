"""The whole payment flow over HTTP on the local stack, as a client app and a payer do it:
log in → create a signed order → open the checkout URL (the QR code) → Pay → the sandbox's webhook
arrives through the SQS delivery function → the order is paid → partial refund → the refund's
webhook → the refunded amount shows on the order."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from typing import Any

import pytest
import requests

from paycore import request_signature
from tests.e2e import identity_client

pytestmark = pytest.mark.e2e


TIMEOUT = 10


def _signed(account: Any, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, str]:
    key_b64 = account.tokens["signing_key"]
    key = base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4))
    body = json.dumps(payload).encode() if payload is not None else b""
    header = request_signature.sign(key, int(time.time()), secrets.token_urlsafe(16), method, path, body)
    return {**account.bearer(), "X-Signature": header, "Content-Type": "application/json"}


def _post(account: Any, api_url: str, path: str, payload: dict[str, Any] | None) -> requests.Response:
    headers = _signed(account, "POST", path, payload)
    data = json.dumps(payload).encode() if payload is not None else b""
    return requests.post(f"{api_url}{path}", data=data, headers=headers, timeout=TIMEOUT)


def _wait_for(check: Any, what: str, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def test_login_order_checkout_pay_paid_partial_refund(api_url: str) -> None:
    account = identity_client.new_account(api_url)
    order_id = str(uuid.uuid4())
    payload = {"order_id": order_id, "amount": 2500, "currency": "CNY", "channel": "auto", "subject": "Green tea"}

    created = _post(account, api_url, "/orders", payload)
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "pending"
    checkout_url = order["payment"]["checkout_url"]
    assert order["payment"]["qr_code"] == checkout_url
    assert checkout_url.startswith(api_url)

    # the same request again (re-signed) replays the order
    again = _post(account, api_url, "/orders", payload)
    assert again.status_code == 201
    assert again.json()["payment"] == order["payment"]

    # the payer follows the QR code and presses Pay, as a browser posts the form
    page = requests.get(checkout_url, timeout=TIMEOUT)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert "25.00 CNY" in page.text
    assert 'id="pay"' in page.text
    paid_page = requests.post(checkout_url, data={"action": "pay"}, timeout=TIMEOUT)
    assert paid_page.status_code == 200
    assert "Payment accepted" in paid_page.text

    def order_now() -> dict[str, Any]:
        answer = requests.get(f"{api_url}/orders/{order_id}", headers=account.bearer(), timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        return answer.json()

    _wait_for(lambda: order_now()["status"] == "paid", "the sandbox webhook to mark the order paid")

    refund = _post(account, api_url, f"/orders/{order_id}/refunds", {"refund_id": "rf-e2e-1", "amount": 1000})
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "pending"

    refunded = _wait_for(
        lambda: (o := order_now())["status"] == "partially_refunded" and o, "the refund webhook to be applied"
    )
    assert refunded["refunded_amount"] == 1000
    assert refunded["refund_pending_amount"] == 0
    assert [(r["refund_id"], r["status"], r["amount"]) for r in refunded["refunds"]] == [
        ("rf-e2e-1", "succeeded", 1000)
    ]

    listed = requests.get(
        f"{api_url}/orders", params={"status": "partially_refunded"}, headers=account.bearer(), timeout=TIMEOUT
    )
    assert [o["order_id"] for o in listed.json()["orders"]] == [order_id]


def test_a_tampered_order_request_is_401_over_http(api_url: str) -> None:
    account = identity_client.new_account(api_url)
    payload = {"order_id": str(uuid.uuid4()), "amount": 2500, "currency": "CNY", "channel": "auto", "subject": "Tea"}
    headers = _signed(account, "POST", "/orders", payload)
    tampered = json.dumps({**payload, "amount": 1}).encode()
    answer = requests.post(f"{api_url}/orders", data=tampered, headers=headers, timeout=TIMEOUT)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_signature"


def test_callbacks_and_checkout_need_no_bearer_token(api_url: str) -> None:
    unsigned = requests.post(f"{api_url}/callbacks/sandbox", data=b"{}", timeout=TIMEOUT)
    assert unsigned.status_code == 400  # reached the function: refused for its missing signature
    missing = requests.get(f"{api_url}/sandbox/checkout/pay_{'0' * 24}", timeout=TIMEOUT)
    assert missing.status_code == 404


def test_signed_order_calls_go_through_the_authorizer_and_stop_at_logout(api_url: str) -> None:
    """The orders function derives the X-Signature key from the key version the authorizer passes in
    its context (no second read of the session); after logout the authorizer refuses the next call."""
    account = identity_client.new_account(api_url)
    payload = {"order_id": str(uuid.uuid4()), "amount": 1200, "currency": "CNY", "channel": "sandbox", "subject": "Tea"}
    assert _post(account, api_url, "/orders", payload).status_code == 201
    assert account.post("/auth/logout", token=account.tokens["access_token"]).status_code == 204
    again = {**payload, "order_id": str(uuid.uuid4())}
    refused = _post(account, api_url, "/orders", again)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"

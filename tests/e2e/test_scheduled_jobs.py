"""The scheduled jobs over HTTP on the local stack: an order created through the API is in the day's
report mailed to the ops topic (``/_local/outbox``), and once its minute is up the sweeper run through
``POST /_local/schedules/sweeper`` expires it."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests

from tests.e2e.test_orders_flow import _post

pytestmark = pytest.mark.e2e

identity_client = pytest.importorskip(
    "tests.e2e.identity_client", reason="needs the identity slice (login and the authorizer) on main"
)

TIMEOUT = 30
SHORTEST_EXPIRY = 60  # expires_in's minimum (seconds)


def test_report_a_day_then_sweep_an_expired_order(api_url: str) -> None:
    account = identity_client.new_account(api_url)
    order_id = str(uuid.uuid4())
    payload = {
        "order_id": order_id,
        "amount": 1234,
        "currency": "KWD",
        "channel": "sandbox",
        "subject": "Dates, 1 kg",
        "expires_in": SHORTEST_EXPIRY,
    }
    created = _post(account, api_url, "/orders", payload)
    assert created.status_code == 201, created.text
    created_at = time.time()

    # The daily report for today (the local stack's REPORT_TIMEZONE is the default, UTC)
    today = datetime.now(tz=UTC).date().isoformat()
    run = requests.post(f"{api_url}/_local/schedules/stats", json={"date": today}, timeout=TIMEOUT)
    assert run.status_code == 200, run.text
    assert (run.json()["date"], run.json()["published"]) == (today, True)

    outbox = requests.get(f"{api_url}/_local/outbox", timeout=TIMEOUT).json()["sns"]
    (email,) = [m for m in outbox if m["subject"] == f"Payments daily report {today} (UTC) [partial]"][-1:]
    text, _, payload_json = email["message"].partition("\n--- JSON ---\n")
    report = json.loads(payload_json)
    (kwd,) = [row for row in report["rows"] if (row["channel"], row["currency"]) == ("sandbox", "KWD")]
    assert kwd["created"] >= 1
    assert kwd["created_amount"] >= 1234
    assert any(line.startswith("sandbox") and " KWD " in line for line in text.splitlines())

    # Once the order's minute is up, the sweeper expires it
    time.sleep(max(0.0, created_at + SHORTEST_EXPIRY + 1 - time.time()))
    swept = requests.post(f"{api_url}/_local/schedules/sweeper", timeout=TIMEOUT)
    assert swept.status_code == 200, swept.text
    assert swept.json()["expired"] >= 1
    assert swept.json()["errors"] == 0

    order = requests.get(f"{api_url}/orders/{order_id}", headers=account.bearer(), timeout=TIMEOUT).json()
    assert order["status"] == "expired"
    checkout = requests.post(order["payment"]["checkout_url"], data={"action": "pay"}, timeout=TIMEOUT)
    assert "Payment accepted" not in checkout.text  # closed at the provider: the payer cannot pay any more

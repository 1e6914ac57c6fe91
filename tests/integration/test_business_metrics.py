"""The business metrics and log keys of the order paths, through the real handlers on moto: one
OrdersCreated per new order (by channel), PaymentsSucceeded/PaymentsFailed per transition,
CallbackSignatureFailures per refused webhook (by provider), and the order's id in the lines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import AwsStack, load_handler
from tests.helpers import CapturedLogs, FakeContext, body, load_event
from tests.orders_support import Orders, call, callback_event, deliver_callback, sandbox_event

pytestmark = pytest.mark.integration


def _counts(out: str, metric: str) -> list[dict[str, Any]]:
    """Every EMF record of ``metric`` printed: its dimensions (names and values) and its value."""
    found = []
    for line in out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            if any(m["Name"] == metric for m in directive["Metrics"]):
                for dimensions in directive["Dimensions"]:
                    found.append({**{d: record[d] for d in dimensions}, "value": record[metric]})
    return found


def test_a_new_order_counts_once_by_channel_and_its_lines_carry_its_id(
    seeded_channels: AwsStack,
    identity: Any,
    capsys: pytest.CaptureFixture[str],
    captured_logs: CapturedLogs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = identity.user()
    client = Orders(user)
    seeded_channels.use_function_env(monkeypatch, "OrdersFunction")
    event = client.create_event(
        {
            "order_id": "0b0e7a52-4f7e-4c59-9d7c-6b1c2f0c1a01",
            "amount": 1000,
            "currency": "CNY",
            "channel": "sandbox",
            "subject": "Tea",
        }
    )
    assert call("orders", event)["statusCode"] == 201
    assert call("orders", client.create_event(json.loads(event["body"])))["statusCode"] == 201  # a replay

    counted = _counts(capsys.readouterr().out, "OrdersCreated")
    assert {"service": "orders", "stage": "test", "value": [1.0]} in counted
    assert {"service": "orders", "stage": "test", "channel": "sandbox", "value": [1.0]} in counted
    assert len(counted) == 2  # the replay answered the same order and counted nothing
    [created] = [line for line in captured_logs.lines() if line["message"] == "order created"]
    assert created["order_id"] == "0b0e7a52-4f7e-4c59-9d7c-6b1c2f0c1a01"
    assert created["user_id"] == user.user_id


@pytest.mark.parametrize(
    ("kind", "metric"), [("payment.succeeded", "PaymentsSucceeded"), ("payment.failed", "PaymentsFailed")]
)
def test_a_payment_outcome_counts_by_channel_once(
    seeded_channels: AwsStack,
    identity: Any,
    capsys: pytest.CaptureFixture[str],
    captured_logs: CapturedLogs,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    metric: str,
) -> None:
    created = body(Orders(identity.user()).create(amount=1000, currency="CNY"))
    raw = sandbox_event(created, kind)
    seeded_channels.use_function_env(monkeypatch, "CallbacksFunction")
    capsys.readouterr()

    assert deliver_callback(seeded_channels, raw)["statusCode"] == 200
    assert deliver_callback(seeded_channels, raw)["statusCode"] == 200  # the same event again: a duplicate

    counted = _counts(capsys.readouterr().out, metric)
    assert sorted(counted, key=len) == [
        {"service": "callbacks", "stage": "test", "value": [1.0]},
        {"service": "callbacks", "stage": "test", "channel": "sandbox", "value": [1.0]},
    ]
    applied = [line for line in captured_logs.lines() if line["message"] == "provider event applied"]
    assert [(a["order_id"], a["provider"]) for a in applied] == [(created["order_id"], "sandbox")] * 2


def test_a_refused_webhook_counts_a_signature_failure_by_provider(
    seeded_channels: AwsStack, identity: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    created = body(Orders(identity.user()).create(amount=1000, currency="CNY"))
    seeded_channels.use_function_env(monkeypatch, "CallbacksFunction")
    capsys.readouterr()
    forged = call("callbacks", callback_event(sandbox_event(created), "t=1795635000,v1=" + "0" * 64))
    assert forged["statusCode"] == 400

    counted = _counts(capsys.readouterr().out, "CallbackSignatureFailures")
    assert {"service": "callbacks", "stage": "test", "provider": "sandbox", "value": [1.0]} in counted
    assert {"service": "callbacks", "stage": "test", "value": [1.0]} in counted


def test_the_daily_report_counts_report_sent_once_published(
    seeded_channels: AwsStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded_channels.use_function_env(monkeypatch, "StatsFunction")
    capsys.readouterr()
    result = load_handler("stats").lambda_handler(load_event("stats", "rerun_day"), FakeContext())
    assert result["published"] is True

    assert {"service": "stats", "stage": "test", "value": [1.0]} in _counts(capsys.readouterr().out, "ReportSent")

"""The sandbox's per-channel knobs: one sandbox plays several acquirers that behave differently
(the transaction simulator's channel behaviour, docs/simulator.md), and its ledger can be read back."""

from __future__ import annotations

import json

import pytest

from paycore.errors import InvalidRequest
from tests.conftest import AwsStack
from tests.helpers import body
from tests.orders_support import Orders, api_event, call

pytestmark = pytest.mark.integration


def _pay(order: dict) -> str:
    payment_id = order["payment"]["checkout_url"].rsplit("/", 1)[-1]
    event = api_event(
        "sandbox/checkout_pay",
        user=None,
        path_params={"payment_id": payment_id},
        headers={"Accept": "application/json"},
    )
    event["body"] = "action=pay"
    return str(json.loads(call("sandbox", event)["body"])["result"])


def test_a_channel_s_decline_rate_applies_to_its_payments_only(seeded_channels: AwsStack, identity) -> None:
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    sandbox.set_behaviour(channel="sandbox_slow", decline_rate_bps=10_000)
    assert sandbox.behaviour("sandbox_slow").decline_rate_bps == 10_000
    assert sandbox.behaviour().decline_rate_bps == 0
    assert sandbox.behaviour("sandbox").decline_rate_bps == 0

    slow = body(client.create(amount=2000, currency="CNY", channel="sandbox_slow"))
    fast = body(client.create(amount=2000, currency="CNY", channel="sandbox"))
    assert _pay(slow) == "declined"
    assert _pay(fast) == "paid"
    assert sandbox.payment_for_order(slow["order_id"]).channel == "sandbox_slow"  # type: ignore[union-attr]


def test_a_channel_that_is_down_refuses_new_payments_with_503(seeded_channels: AwsStack, identity) -> None:
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    sandbox.set_behaviour(channel="sandbox", payment_error_rate_bps=10_000)
    refused = client.create(amount=1500, currency="CNY", channel="sandbox")
    assert refused["statusCode"] == 503
    assert json.loads(refused["body"])["error"]["code"] == "provider_unavailable"
    assert client.create(amount=1500, currency="CNY", channel="sandbox_slow")["statusCode"] == 201


def test_global_knobs_still_apply_under_a_channel_s_own(seeded_channels: AwsStack) -> None:
    from paycore.sandbox import service as sandbox

    sandbox.set_behaviour(channel="sandbox", latency_ms=0, decline_rate_bps=500)
    sandbox.set_behaviour(duplicate_rate_bps=2_000)
    assert sandbox.behaviour("sandbox").duplicate_rate_bps == 2_000
    assert sandbox.behaviour("sandbox").decline_rate_bps == 500


def test_overrides_can_be_read_and_put_back(seeded_channels: AwsStack) -> None:
    from paycore.sandbox import service as sandbox

    before = sandbox.behaviour_overrides("sandbox")
    assert before == {}
    sandbox.set_behaviour(channel="sandbox", decline_rate_bps=9_000, latency_ms=40)
    assert sandbox.behaviour_overrides("sandbox") == {"decline_rate_bps": 9_000, "latency_ms": 40}
    sandbox.replace_behaviour(before, channel="sandbox")
    assert sandbox.behaviour("sandbox") == sandbox.behaviour()


def test_channel_knobs_are_checked_like_the_global_ones(seeded_channels: AwsStack) -> None:
    from paycore.sandbox import service as sandbox

    with pytest.raises(InvalidRequest, match="at most 10000"):
        sandbox.set_behaviour(channel="sandbox", payment_error_rate_bps=10_001)
    with pytest.raises(InvalidRequest, match="unknown sandbox knobs"):
        sandbox.set_behaviour(channel="sandbox", volume=11)
    with pytest.raises(InvalidRequest, match="non-negative"):
        sandbox.replace_behaviour({"latency_ms": -1}, channel="sandbox")


def test_a_payment_s_refunds_and_events_can_be_read_back(seeded_channels: AwsStack, identity) -> None:
    from paycore.data import sandbox as store
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    created = body(client.create(amount=3000, currency="CNY", channel="sandbox"))
    assert _pay(created) == "paid"
    payment = sandbox.payment_for_order(created["order_id"])
    assert payment is not None
    sandbox.refund(created["order_id"], "rf-1", 1000, now=int(payment.paid_at or 0) + 1)
    refunds, events = store.payment_items(payment.payment_id)
    assert [(r.refund_id, int(r.amount), r.status) for r in refunds] == [("rf-1", 1000, "succeeded")]
    assert sorted(json.loads(e.body)["type"] for e in events) == ["payment.succeeded", "refund.succeeded"]

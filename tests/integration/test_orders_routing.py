"""Orders and the router: "auto" orders are routed and carry their decision; final outcomes teach
the router after the transition commits, and a router failure never fails the transition."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from paycore.data import routing as router_store
from paycore.data.orders import OrderItem
from paycore.routing import service as routing_service
from paycore.routing.service import policy_config
from tests.conftest import AwsStack
from tests.helpers import body
from tests.orders_support import Orders, deliver_callback, sandbox_event

pytestmark = pytest.mark.integration

SEGMENT = "CNY#1e1"  # 10.00 yuan


def _router_item(channel: str, segment: str = SEGMENT) -> router_store.RouterStateItem | None:
    model = router_store._model()  # bound to the configured table
    try:
        return model.get(segment, channel)
    except model.DoesNotExist:
        return None


def test_an_auto_order_is_routed_and_records_its_decision(seeded_channels: AwsStack, identity) -> None:
    client = Orders(identity.user())
    created = body(client.create(channel="auto", amount=1000, currency="CNY"))
    assert created["channel"] in {"sandbox", "sandbox_slow"}
    stored = OrderItem.get(f"ORDER#{created['order_id']}", "ORDER")
    assert stored.routing_segment == SEGMENT
    assert stored.routing_propensity == pytest.approx(0.5, abs=1e-3)  # no history yet: a fair draw
    assert stored.routing_policy == policy_config().version
    explicit = body(client.create(channel="sandbox", amount=1000, currency="CNY"))
    assert OrderItem.get(f"ORDER#{explicit['order_id']}", "ORDER").routing_propensity is None


def test_final_outcomes_update_the_router(seeded_channels: AwsStack, identity) -> None:
    # Given two orders on sandbox, When one is paid and the other fails (provider callbacks), Then
    # the router's item for (CNY#1e1, sandbox) counts one of each, and the failure run is 1
    client = Orders(identity.user())
    paid = body(client.create(channel="sandbox", amount=1000, currency="CNY"))
    failed = body(client.create(channel="sandbox", amount=1500, currency="CNY"))
    assert deliver_callback(seeded_channels, sandbox_event(paid))["statusCode"] == 200
    assert deliver_callback(seeded_channels, sandbox_event(failed, "payment.failed"))["statusCode"] == 200
    item = _router_item("sandbox")
    assert item is not None
    assert (item.paid, item.failed, item.expired, item.run) == (1, 1, 0, 1)
    # the failure run is ordered by when the payments were created (the events carry created_at)
    assert item.run_from == OrderItem.get(f"ORDER#{failed['order_id']}", "ORDER").created_at
    assert item.ok_at == OrderItem.get(f"ORDER#{paid['order_id']}", "ORDER").created_at
    # a duplicate delivery changes neither the order nor the router
    deliver_callback(seeded_channels, sandbox_event(paid, event_id="evt_once"))
    deliver_callback(seeded_channels, sandbox_event(paid, event_id="evt_once"))
    assert _router_item("sandbox").paid == 1  # type: ignore[union-attr]


def test_a_cancelled_order_teaches_nothing(seeded_channels: AwsStack, identity) -> None:
    client = Orders(identity.user())
    created = body(client.create(channel="sandbox", amount=1000, currency="CNY"))
    assert body(client.cancel(created["order_id"]))["status"] == "cancelled"
    assert _router_item("sandbox") is None


def test_the_router_moves_auto_orders_off_a_failing_channel(
    seeded_channels: AwsStack, identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given sandbox failing every payment and sandbox_slow paying, When auto orders keep coming,
    # Then after a few failures sandbox gets only a small share, and every outcome was counted.
    # The draws are seeded: with the system's randomness the share bound below held in most runs,
    # not all (a run of unlucky draws is rare, not impossible); the seed keeps the policy under test.
    monkeypatch.setattr(routing_service, "_uniform", random.Random(20261126))
    client = Orders(identity.user())
    chosen: Counter[str] = Counter()
    for i in range(40):
        created = body(client.create(channel="auto", amount=1000 + i, currency="CNY"))
        chosen[created["channel"]] += 1
        kind = "payment.failed" if created["channel"] == "sandbox" else "payment.succeeded"
        deliver_callback(seeded_channels, sandbox_event(created, kind))
    assert chosen["sandbox"] <= 12  # a fair start, then the run of failures eliminates it
    assert chosen["sandbox_slow"] >= 28
    item = _router_item("sandbox")
    assert item is not None
    assert (item.paid, item.failed, item.run) == (0, chosen["sandbox"], chosen["sandbox"])
    assert _router_item("sandbox_slow").paid == chosen["sandbox_slow"]  # type: ignore[union-attr]


def test_a_router_outage_does_not_fail_the_payment(seeded_channels: AwsStack, identity) -> None:
    client = Orders(identity.user())
    created = body(client.create(channel="sandbox", amount=1000, currency="CNY"))
    seeded_channels.client("dynamodb").delete_table(TableName=seeded_channels.name("RouterStateTable"))
    assert deliver_callback(seeded_channels, sandbox_event(created))["statusCode"] == 200
    assert body(client.get(created["order_id"]))["status"] == "paid"

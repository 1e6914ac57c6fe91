"""Cancel and refunds: provider first, conditional writes, refunds never past the paid amount."""

from __future__ import annotations

import time

import pytest

from tests.conftest import AwsStack
from tests.helpers import FakeContext, body
from tests.orders_support import (
    Orders,
    capture_domain_events,
    concurrently,
    deliver_callback,
    queued_jobs,
    table_items,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def paid(seeded_channels: AwsStack, identity) -> tuple[Orders, dict]:
    """An order paid through the sandbox's own checkout and its delivered webhook."""
    from paycore.data import sandbox as sandbox_store
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    created = body(client.create(amount=1000, currency="CNY"))
    payment_id = created["payment"]["checkout_url"].rsplit("/", 1)[-1]
    assert sandbox.pay(payment_id, int(time.time())).result == "paid"
    [job] = queued_jobs(seeded_channels)
    event = sandbox_store.get_event(job["payment_id"], job["event_id"])
    assert event is not None
    assert deliver_callback(seeded_channels, event.body.encode())["statusCode"] == 200
    assert body(client.get(created["order_id"]))["status"] == "paid"
    return client, created


def _deliver_queued(stack: AwsStack) -> list[dict]:
    from paycore.data import sandbox as sandbox_store

    answers = []
    for job in queued_jobs(stack):
        event = sandbox_store.get_event(job["payment_id"], job["event_id"])
        assert event is not None
        answers.append(deliver_callback(stack, event.body.encode()))
    return answers


# ------------------------------------------------------------------ cancel


def test_cancel_closes_at_the_provider_and_cancels(seeded_channels: AwsStack, identity) -> None:
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    created = body(client.create())
    events = capture_domain_events(seeded_channels)

    response = client.cancel(created["order_id"])

    assert response["statusCode"] == 200
    assert body(response)["status"] == "cancelled"
    payment = sandbox.payment_for_order(created["order_id"])
    assert payment is not None
    assert payment.status == "closed"
    assert [e["detail-type"] for e in events.read()] == ["order.cancelled"]
    # the payer can no longer pay it
    assert sandbox.pay(payment.payment_id, int(time.time())).result == "already_closed"
    # cancelling again answers the same order
    again = client.cancel(created["order_id"])
    assert again["statusCode"] == 200
    assert body(again)["status"] == "cancelled"
    # it left the sparse index of pending orders
    item = next(
        i
        for i in table_items(seeded_channels, "OrdersTable")
        if i["pk"]["S"] == f"ORDER#{created['order_id']}" and i["sk"]["S"] == "ORDER"
    )
    assert "pending_shard" not in item
    assert "pending_expires_at" not in item


def test_cancel_a_paid_order_is_409(seeded_channels: AwsStack, paid: tuple[Orders, dict]) -> None:
    client, created = paid
    response = client.cancel(created["order_id"])
    assert response["statusCode"] == 409
    assert body(response)["error"]["code"] == "invalid_state"


def test_cancel_when_the_payer_won_the_race_records_the_payment(seeded_channels: AwsStack, identity) -> None:
    """Paid at the provider, webhook not arrived yet: cancel finds it paid, records paid, answers 409."""
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    created = body(client.create())
    payment_id = created["payment"]["checkout_url"].rsplit("/", 1)[-1]
    sandbox.pay(payment_id, int(time.time()))

    response = client.cancel(created["order_id"])

    assert response["statusCode"] == 409
    assert body(response)["error"]["code"] == "invalid_state"
    assert body(client.get(created["order_id"]))["status"] == "paid"
    # the late webhook then changes nothing
    assert all(r["statusCode"] == 200 for r in _deliver_queued(seeded_channels))
    assert body(client.get(created["order_id"]))["status"] == "paid"


def test_cancel_someone_elses_order_is_404(seeded_channels: AwsStack, identity) -> None:
    created = body(Orders(identity.user("alice")).create())
    assert Orders(identity.user("mallory")).cancel(created["order_id"])["statusCode"] == 404


# ------------------------------------------------------------------ refunds


def test_partial_then_full_refund_follows_the_providers_events(
    seeded_channels: AwsStack, paid: tuple[Orders, dict]
) -> None:
    client, created = paid
    events = capture_domain_events(seeded_channels)

    first = client.refund(created["order_id"], "rf-1", 400, reason="damaged")
    assert first["statusCode"] == 201
    refund = body(first)
    assert (refund["refund_id"], refund["amount"], refund["status"]) == ("rf-1", 400, "pending")
    assert refund["order"]["refund_pending_amount"] == 400
    assert body(client.get(created["order_id"]))["status"] == "paid"  # until the provider confirms

    _deliver_queued(seeded_channels)
    order = body(client.get(created["order_id"]))
    assert order["status"] == "partially_refunded"
    assert order["refunded_amount"] == 400
    assert order["refunds"][0]["status"] == "succeeded"

    assert client.refund(created["order_id"], "rf-2", 600)["statusCode"] == 201
    _deliver_queued(seeded_channels)
    order = body(client.get(created["order_id"]))
    assert order["status"] == "refunded"
    assert order["refunded_amount"] == 1000
    assert order["refund_pending_amount"] == 0
    assert [e["detail-type"] for e in events.read()] == ["order.partially_refunded", "order.refunded"]


def test_a_refund_past_the_paid_amount_is_refused(seeded_channels: AwsStack, paid: tuple[Orders, dict]) -> None:
    client, created = paid
    assert client.refund(created["order_id"], "rf-1", 700)["statusCode"] == 201

    response = client.refund(created["order_id"], "rf-2", 301)

    assert response["statusCode"] == 409
    assert body(response)["error"]["code"] == "refund_exceeds_paid"
    assert client.refund(created["order_id"], "rf-3", 300)["statusCode"] == 201
    assert client.refund(created["order_id"], "rf-4", 1)["statusCode"] == 409


def test_concurrent_refunds_never_sum_past_the_paid_amount(
    seeded_channels: AwsStack, paid: tuple[Orders, dict]
) -> None:
    from paycore.errors import PaymentError
    from paycore.orders import service
    from paycore.schemas.orders import RefundIn

    client, created = paid
    user_id = client.user.user_id

    def refund(i: int):
        return lambda: service.request_refund(
            user_id, created["order_id"], RefundIn(refund_id=f"rf-{i}", amount=300), lambda_context=FakeContext()
        )

    results = concurrently([refund(i) for i in range(6)])

    accepted = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, PaymentError)]
    assert len(accepted) == 3  # 3 x 300 <= 1000 < 4 x 300
    assert len(refused) == 3
    assert {e.code for e in refused} <= {"refund_exceeds_paid", "request_in_progress"}
    order = body(client.get(created["order_id"]))
    assert order["refund_pending_amount"] == 900
    assert sum(r["amount"] for r in order["refunds"]) == 900


def test_the_same_refund_id_replays_and_a_different_body_is_422(
    seeded_channels: AwsStack, paid: tuple[Orders, dict]
) -> None:
    client, created = paid
    first = client.refund(created["order_id"], "rf-1", 400)
    again = client.refund(created["order_id"], "rf-1", 400)
    assert again["statusCode"] == 201
    assert body(again) == body(first)
    changed = client.refund(created["order_id"], "rf-1", 500)
    assert changed["statusCode"] == 422
    assert body(changed)["error"]["code"] == "idempotency_mismatch"
    assert len(body(client.get(created["order_id"]))["refunds"]) == 1


def test_refunding_an_unpaid_order_is_409(seeded_channels: AwsStack, identity) -> None:
    client = Orders(identity.user())
    created = body(client.create())
    response = client.refund(created["order_id"], "rf-1", 100)
    assert response["statusCode"] == 409
    assert body(response)["error"]["code"] == "invalid_state"


def test_a_failed_refund_gives_the_amount_back(seeded_channels: AwsStack, paid: tuple[Orders, dict]) -> None:
    from paycore.sandbox import service as sandbox

    client, created = paid
    sandbox.set_behaviour(refund_failure_rate_bps=10_000)  # the sandbox fails every refund
    assert client.refund(created["order_id"], "rf-1", 1000)["statusCode"] == 201
    assert [r["statusCode"] for r in _deliver_queued(seeded_channels)] == [200]

    order = body(client.get(created["order_id"]))
    assert order["status"] == "paid"
    assert order["refund_pending_amount"] == 0
    assert order["refunds"][0]["status"] == "failed"

    sandbox.set_behaviour(refund_failure_rate_bps=0)
    assert client.refund(created["order_id"], "rf-2", 1000)["statusCode"] == 201
    _deliver_queued(seeded_channels)
    assert body(client.get(created["order_id"]))["status"] == "refunded"


def test_a_refund_the_provider_refuses_outright_is_409_and_released(
    seeded_channels: AwsStack, paid: tuple[Orders, dict]
) -> None:
    client, created = paid
    # the sandbox has less left than the order says (refunded outside this API)
    payment_id = created["payment"]["checkout_url"].rsplit("/", 1)[-1]
    seeded_channels.client("dynamodb").update_item(
        TableName=seeded_channels.name("SandboxTable"),
        Key={"pk": {"S": f"PAY#{payment_id}"}, "sk": {"S": "PAYMENT"}},
        UpdateExpression="SET refundable = :zero",
        ExpressionAttributeValues={":zero": {"N": "0"}},
    )
    response = client.refund(created["order_id"], "rf-1", 500)
    assert response["statusCode"] == 409
    assert body(response)["error"]["code"] == "provider_refused"
    order = body(client.get(created["order_id"]))
    assert order["refund_pending_amount"] == 0
    assert order["refunds"][0]["status"] == "failed"


# ------------------------------------------------------------------ expiry (the sweeper's entry point)


def test_expire_order_closes_at_the_provider_and_leaves_the_pending_index(seeded_channels: AwsStack, identity) -> None:
    from paycore.data import orders as store
    from paycore.orders import service
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    created = body(client.create(expires_in=60))
    events = capture_domain_events(seeded_channels)
    expires_at = store.get_order(created["order_id"]).expires_at  # type: ignore[union-attr]

    assert service.expire_order(created["order_id"], now=expires_at - 1) == "pending"  # not yet
    due = [
        o.order_id for shard in range(store.PENDING_SHARDS) for o in store.pending_orders_due(shard, int(expires_at))
    ]
    assert due == [created["order_id"]]

    assert service.expire_order(created["order_id"], now=expires_at + 1) == "expired"

    assert body(client.get(created["order_id"]))["status"] == "expired"
    assert sandbox.payment_for_order(created["order_id"]).status == "closed"  # type: ignore[union-attr]
    assert [e["detail-type"] for e in events.read()] == ["order.expired"]
    assert [o for shard in range(store.PENDING_SHARDS) for o in store.pending_orders_due(shard, 2**40)] == []
    counters = [i for i in table_items(seeded_channels, "OrdersTable") if i["pk"]["S"].startswith("STATS#")]
    assert sum(int(c.get("expired_count", {"N": "0"})["N"]) for c in counters) == 1


def test_expiring_an_order_the_payer_just_paid_records_the_payment(seeded_channels: AwsStack, identity) -> None:
    from paycore.orders import service
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    created = body(client.create(expires_in=60))
    payment = sandbox.payment_for_order(created["order_id"])
    assert payment is not None
    sandbox.pay(payment.payment_id, int(payment.expires_at) - 1)

    assert service.expire_order(created["order_id"], now=int(payment.expires_at) + 5) == "paid"
    assert body(client.get(created["order_id"]))["status"] == "paid"

"""``paycore.data.orders.applied``: the order a committed change leaves, computed without reading it,
is the order DynamoDB (moto) stores, for every kind of change the services make."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import AwsStack

pytestmark = pytest.mark.integration


def _stored_order(now: float):  # type: ignore[no-untyped-def]
    from paycore.data import orders as store

    order_id = str(uuid.uuid4())
    order = store.OrderItem(
        store.order_pk(order_id),
        store.ORDER_SK,
        order_id=order_id,
        user_id="u-1",
        status="pending",
        version=1,
        amount=1000,
        currency="CNY",
        channel="sandbox",
        provider="sandbox",
        subject="tea",
        provider_payment_id="p-1",
        created_at=int(now),
        updated_at=int(now),
        expires_at=int(now) + 900,
        request_hash="h",
        user_pk="USER#u-1",
        user_status="USER#u-1#pending",
        created_sk=f"{int(now * 1000):013d}#{order_id}",
        pending_shard=store.pending_shard(order_id),
        pending_expires_at=int(now) + 900,
    )
    history = store.HistoryItem(order.pk, store.history_sk(now, "created"), kind="created", at=int(now))
    assert store.create_order(order, history, {"created_count": 1})
    stored = store.get_order(order_id)
    assert stored is not None
    return stored


def _commit_and_compare(change) -> None:  # type: ignore[no-untyped-def]
    from paycore.data import orders as store

    assert store.apply_change(change)
    stored = store.get_order(change.order.order_id)
    assert stored is not None
    assert store.applied(change).to_simple_dict() == stored.to_simple_dict()


def test_paid_then_refund_reserved_then_refunded_as_stored(aws: AwsStack) -> None:
    from paycore.data import orders as store

    now = time.time()
    order = _stored_order(now)

    def history(kind: str, at: float) -> store.HistoryItem:
        return store.HistoryItem(order.pk, store.history_sk(at, kind), kind=kind, at=int(at))

    paid = store.OrderChange(
        order=order,
        history=history("paid", now + 1),
        from_statuses=("pending",),
        to_status="paid",
        set_fields={"paid_at": int(now) + 1, "refundable_amount": 1000},
        leave_pending_index=True,
        counters={"paid_count": 1, "paid_amount": 1000},
        at=now + 1,
    )
    _commit_and_compare(paid)

    refund = store.RefundItem(
        order.pk, "REFUND#r-1", refund_id="r-1", order_id=order.order_id, user_id="u-1", amount=400,
        currency="CNY", status="pending", created_at=int(now) + 2, updated_at=int(now) + 2,
    )  # fmt: skip
    reserved = store.OrderChange(
        order=store.applied(paid),
        history=history("refund_requested", now + 2),
        from_statuses=("paid", "partially_refunded"),
        min_refundable=400,
        add_fields={"refundable_amount": -400, "refund_pending_amount": 400},
        refund=store.RefundChange(item=refund, create=True),
        at=now + 2,
    )
    _commit_and_compare(reserved)

    refunded = store.OrderChange(
        order=store.applied(reserved),
        history=history("refund_succeeded", now + 3),
        from_statuses=("paid", "partially_refunded"),
        to_status="partially_refunded",
        add_fields={"refunded_amount": 400, "refund_pending_amount": -400},
        refund=store.RefundChange(item=refund, from_status="pending", fields={"status": "succeeded"}),
        at=now + 3,
    )
    _commit_and_compare(refunded)


def test_expired_as_stored(aws: AwsStack) -> None:
    from paycore.data import orders as store

    now = time.time()
    order = _stored_order(now)
    expired = store.OrderChange(
        order=order,
        history=store.HistoryItem(order.pk, store.history_sk(now, "expired"), kind="expired", at=int(now)),
        from_statuses=("pending",),
        to_status="expired",
        set_fields={"closed_at": int(now)},
        leave_pending_index=True,
        counters={"expired_count": 1},
        at=now,
    )
    _commit_and_compare(expired)
    assert store.applied(expired).pending_shard is None

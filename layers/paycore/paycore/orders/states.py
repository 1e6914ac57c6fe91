"""The order state machine (docs/orders.md draws it).

``pending`` → ``paid`` | ``failed`` | ``expired`` | ``cancelled``;
``paid`` → ``partially_refunded`` → ``refunded`` (or ``paid`` → ``refunded`` in one refund).
"""

from __future__ import annotations

import enum


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.FAILED, OrderStatus.EXPIRED, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset({OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}),
}

# Orders that were closed without money: a payment that lands on one is refunded automatically.
CLOSED_UNPAID = frozenset({OrderStatus.FAILED, OrderStatus.EXPIRED, OrderStatus.CANCELLED})
# Orders whose payment went through (refunds allowed while money is left).
PAID_STATES = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED})
REFUNDABLE = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED})


def can_move(current: str, target: str) -> bool:
    return OrderStatus(target) in TRANSITIONS.get(OrderStatus(current), frozenset())


def status_after_refund(amount: int, refunded_total: int) -> OrderStatus:
    """The status of a paid order once ``refunded_total`` of its ``amount`` was refunded."""
    return OrderStatus.REFUNDED if refunded_total >= amount else OrderStatus.PARTIALLY_REFUNDED

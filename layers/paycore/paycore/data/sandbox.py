"""The sandbox provider's own ledger in DynamoDB (the ``SandboxTable``), kept apart from orders
as a real provider's would be.

============================  ======================  ==========================================
pk                            sk                      what
============================  ======================  ==========================================
``PAY#<payment_id>``          ``PAYMENT``             a payment (status, money, notify URL)
``ORDER#<order_id>``          ``PAYMENT``             which payment a merchant order has (1:1)
``PAY#<payment_id>``          ``REFUND#<refund_id>``  a refund of the payment
``PAY#<payment_id>``          ``EVENT#<event_id>``    a webhook event: its exact body and delivery
``CONFIG``                    ``BEHAVIOUR``           the behaviour knobs (docs/orders.md)
``CONFIG``                    ``BEHAVIOUR#<channel>`` one channel's knobs, over the ones above
============================  ======================  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, PynamoDBException, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from paycore.config import sandbox_settings
from paycore.data.base import bind, get_or_none, is_condition_failure, transact
from paycore.errors import DataAccessError

PAYMENT_SK = "PAYMENT"


class SandboxPayment(Model):
    class Meta:
        table_name: str | None = None
        template_table = "SandboxTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=PAYMENT_SK)
    payment_id = UnicodeAttribute()
    order_id = UnicodeAttribute()
    amount = NumberAttribute()
    currency = UnicodeAttribute()
    subject = UnicodeAttribute()
    status = UnicodeAttribute()  # pending | paid | failed | closed
    notify_url = UnicodeAttribute()
    checkout_url = UnicodeAttribute()
    expires_at = NumberAttribute()
    created_at = NumberAttribute()
    paid_at = NumberAttribute(null=True)
    refundable = NumberAttribute(default=0)
    channel = UnicodeAttribute(null=True)  # the merchant's channel id: its behaviour knobs apply


class SandboxOrderPointer(Model):
    class Meta:
        table_name: str | None = None
        template_table = "SandboxTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=PAYMENT_SK)
    payment_id = UnicodeAttribute()


class SandboxRefund(Model):
    class Meta:
        table_name: str | None = None
        template_table = "SandboxTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    refund_id = UnicodeAttribute()
    provider_refund_id = UnicodeAttribute()
    amount = NumberAttribute()
    status = UnicodeAttribute()
    created_at = NumberAttribute()


class SandboxEvent(Model):
    class Meta:
        table_name: str | None = None
        template_table = "SandboxTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    event_id = UnicodeAttribute()
    body = UnicodeAttribute()  # the exact JSON the webhook carries (signed at each attempt)
    created_at = NumberAttribute()
    attempts = NumberAttribute(default=0)
    delivered_at = NumberAttribute(null=True)
    last_status = NumberAttribute(null=True)


class SandboxBehaviour(Model):
    class Meta:
        table_name: str | None = None
        template_table = "SandboxTable"

    pk = UnicodeAttribute(hash_key=True, default="CONFIG")
    sk = UnicodeAttribute(range_key=True, default="BEHAVIOUR")
    decline_rate_bps = NumberAttribute(null=True)
    delivery_delay_seconds = NumberAttribute(null=True)
    duplicate_rate_bps = NumberAttribute(null=True)
    out_of_order_rate_bps = NumberAttribute(null=True)
    out_of_order_delay_seconds = NumberAttribute(null=True)
    late_payment_grace_seconds = NumberAttribute(null=True)
    refund_failure_rate_bps = NumberAttribute(null=True)
    payment_error_rate_bps = NumberAttribute(null=True)
    latency_ms = NumberAttribute(null=True)


KNOBS = (
    "decline_rate_bps",
    "delivery_delay_seconds",
    "duplicate_rate_bps",
    "out_of_order_rate_bps",
    "out_of_order_delay_seconds",
    "late_payment_grace_seconds",
    "refund_failure_rate_bps",
    "payment_error_rate_bps",
    "latency_ms",
)


def _bind() -> None:
    table = sandbox_settings().table
    for model in (SandboxPayment, SandboxOrderPointer, SandboxRefund, SandboxEvent, SandboxBehaviour):
        bind(model, table)


def payment_pk(payment_id: str) -> str:
    return f"PAY#{payment_id}"


def get_payment(payment_id: str) -> SandboxPayment | None:
    _bind()
    item: SandboxPayment | None = get_or_none(SandboxPayment, payment_pk(payment_id), PAYMENT_SK, "sandbox payment")
    return item


def payment_id_for_order(order_id: str) -> str | None:
    _bind()
    pointer = get_or_none(SandboxOrderPointer, f"ORDER#{order_id}", PAYMENT_SK, "sandbox order")
    return str(pointer.payment_id) if pointer is not None else None


def create_payment(payment: SandboxPayment) -> bool:
    """Put the payment and its order pointer together; False when the order already has one."""
    _bind()
    pointer = SandboxOrderPointer(f"ORDER#{payment.order_id}", PAYMENT_SK, payment_id=payment.payment_id)

    def build(tx: TransactWrite) -> None:
        tx.save(pointer, condition=SandboxOrderPointer.pk.does_not_exist())
        tx.save(payment, condition=SandboxPayment.pk.does_not_exist())

    return transact("create the sandbox payment", build)


def move_payment(
    payment: SandboxPayment,
    *,
    from_status: str,
    to_status: str,
    event: SandboxEvent | None,
    fields: dict[str, Any] | None = None,
    condition: Condition | None = None,
) -> bool:
    """Move a payment between statuses (with its webhook event); False when it was not in ``from_status``."""
    _bind()
    actions: list[Any] = [SandboxPayment.status.set(to_status)]
    actions += [getattr(SandboxPayment, name).set(value) for name, value in (fields or {}).items()]
    cond: Condition = SandboxPayment.status == from_status
    if condition is not None:
        cond &= condition

    def build(tx: TransactWrite) -> None:
        tx.update(SandboxPayment(payment.pk, PAYMENT_SK), actions=actions, condition=cond)
        if event is not None:
            tx.save(event, condition=SandboxEvent.pk.does_not_exist())

    return transact("update the sandbox payment", build)


def get_refund(payment_id: str, refund_id: str) -> SandboxRefund | None:
    _bind()
    item: SandboxRefund | None = get_or_none(SandboxRefund, payment_pk(payment_id), f"REFUND#{refund_id}", "refund")
    return item


def create_refund(payment: SandboxPayment, refund: SandboxRefund, event: SandboxEvent, *, deduct: bool) -> bool:
    """Record a refund (and, when it moves money, take its amount off what is refundable),
    atomically; False when the refund id exists or the payment is not paid with that much left."""
    _bind()
    paid_enough = (SandboxPayment.status == "paid") & (SandboxPayment.refundable >= int(refund.amount))

    def build(tx: TransactWrite) -> None:
        tx.save(refund, condition=SandboxRefund.pk.does_not_exist())
        if deduct:
            tx.update(
                SandboxPayment(payment.pk, PAYMENT_SK),
                actions=[SandboxPayment.refundable.add(-int(refund.amount))],
                condition=paid_enough,
            )
        else:
            tx.condition_check(SandboxPayment, payment.pk, PAYMENT_SK, condition=paid_enough)
        tx.save(event, condition=SandboxEvent.pk.does_not_exist())

    return transact("record the sandbox refund", build)


def get_event(payment_id: str, event_id: str) -> SandboxEvent | None:
    _bind()
    item: SandboxEvent | None = get_or_none(SandboxEvent, payment_pk(payment_id), f"EVENT#{event_id}", "event")
    return item


def record_attempt(payment_id: str, event_id: str, status: int | None, delivered_at: int | None) -> None:
    _bind()
    actions: list[Any] = [SandboxEvent.attempts.add(1)]
    if status is not None:
        actions.append(SandboxEvent.last_status.set(status))
    if delivered_at is not None:
        actions.append(SandboxEvent.delivered_at.set(delivered_at))
    try:
        SandboxEvent(payment_pk(payment_id), f"EVENT#{event_id}").update(
            actions=actions, condition=SandboxEvent.pk.exists()
        )
    except UpdateError as exc:
        if not is_condition_failure(exc):
            raise DataAccessError("could not record the delivery attempt") from exc


def _behaviour_sk(channel: str | None) -> str:
    return "BEHAVIOUR" if channel is None else f"BEHAVIOUR#{channel}"


def behaviour_overrides(channel: str | None = None) -> dict[str, int]:
    """The knobs set at run time for every channel (``channel`` None) or for one channel (the rest
    come from the function's environment)."""
    _bind()
    item = get_or_none(SandboxBehaviour, "CONFIG", _behaviour_sk(channel), "sandbox behaviour")
    if item is None:
        return {}
    return {name: int(value) for name in KNOBS if (value := getattr(item, name)) is not None}


def set_behaviour(knobs: Mapping[str, int | None], channel: str | None = None) -> None:
    _bind()
    values: dict[str, Any] = {name: knobs.get(name) for name in KNOBS}
    item = SandboxBehaviour("CONFIG", _behaviour_sk(channel), **values)
    try:
        item.save()
    except PutError as exc:
        raise DataAccessError("could not save the sandbox behaviour") from exc


def payment_items(payment_id: str) -> tuple[list[SandboxRefund], list[SandboxEvent]]:
    """A payment's refunds and webhook events (one Query of its partition), for whoever audits the
    provider's ledger (the transaction simulator's checker)."""
    _bind()
    refunds: list[SandboxRefund] = []
    events: list[SandboxEvent] = []
    try:
        for item in SandboxRefund.query(payment_pk(payment_id), SandboxRefund.sk.startswith("REFUND#")):
            refunds.append(item)
        for event in SandboxEvent.query(payment_pk(payment_id), SandboxEvent.sk.startswith("EVENT#")):
            events.append(event)
    except PynamoDBException as exc:
        raise DataAccessError("could not read the sandbox payment's items") from exc
    return refunds, events

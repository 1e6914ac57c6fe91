"""Provider events applied to orders: verified, deduplicated, one conditional transaction each.

:func:`handle_callback` verifies the provider's signature over the raw body (the adapter does),
then :func:`apply_event` applies each event:

* the event id is recorded (``EVENT#<provider>#<id>``, kept 7 days) in the same transaction as
  the order change, so a repeated delivery changes nothing, however many arrive at once;
* the order moves only from the state the event was planned on (version condition), and a
  history item is written with it;
* a payment whose amount, currency or payment id differs from the order never marks it paid:
  an anomaly is recorded, metric ``Anomalies`` emitted and ops alerted on the SNS topic;
* a payment on an expired, cancelled or failed order (or a second payment of a paid one) is
  recorded and refunded automatically; a redelivery of it submits that refund again if it never
  reached the provider (the function died after the commit), under the same refund id;
* domain events go to EventBridge after the commit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from paycore.data import orders as store
from paycore.errors import Conflict, DataAccessError, ProviderUnavailable
from paycore.observability import Metric, count, log_keys, logger
from paycore.orders import notify
from paycore.orders.states import PAID_STATES, REFUNDABLE, OrderStatus, status_after_refund
from paycore.providers import get_provider
from paycore.providers.base import (
    CallbackAck,
    EventKind,
    InvalidCallback,
    PaymentState,
    PaymentStatus,
    ProviderError,
    ProviderEvent,
    RefundStatus,
)

MAX_RETRIES = 8
_DAY = 86_400
LATE_PAYMENT_REFUNDED = "late_payment_refunded"  # the outcome (and event marker) of a late payment


def handle_callback(provider_name: str, headers: Mapping[str, str], raw_body: bytes, now: float) -> CallbackAck:
    """POST /callbacks/{provider}: 4xx (nothing written) unless the provider's signature holds."""
    provider = get_provider(provider_name)  # unknown provider → 404, nothing written
    try:
        events = provider.parse_callback(headers, raw_body, now=now)  # InvalidCallback → 400
    except InvalidCallback:
        count(Metric.CALLBACK_SIGNATURE_FAILURES, provider=provider_name)
        raise
    for event in events:
        with log_keys(order_id=event.order_id, provider=provider_name):
            outcome = apply_event(provider_name, event, now=now)
            logger.info(
                "provider event applied",
                extra={"provider": provider_name, "event_id": event.event_id, "kind": event.kind, "outcome": outcome},
            )
    return provider.ack(True)


def event_detail(order: store.OrderItem, at: float, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "status": order.status,
        "amount": int(order.amount),
        "currency": order.currency,
        "channel": order.channel,
        "refunded_amount": int(order.refunded_amount),
        "created_at": int(order.created_at),
        "occurred_at": int(at),
        **extra,
    }


@dataclass
class _Plan:
    """What one event does: a change to commit (or a record-only marker) and what follows it."""

    outcome: str
    change: store.OrderChange | None = None
    marker_only: store.EventMarkerItem | None = None
    anomaly_only: store.AnomalyItem | None = None
    after: list[Callable[[], None]] = field(default_factory=list)


def _marker(provider: str, event: ProviderEvent, outcome: str, now: float) -> store.EventMarkerItem:
    return store.EventMarkerItem(
        f"EVENT#{provider}#{event.event_id}",
        store.EVENT_SK,
        provider=provider,
        event_id=event.event_id,
        kind=event.kind.value,
        order_id=event.order_id,
        outcome=outcome,
        received_at=int(now),
        purge_at=int(now) + store.EVENT_MARKER_DAYS * _DAY,
    )


def _history(order: store.OrderItem, event: ProviderEvent, kind: str, now: float, **fields: Any) -> store.HistoryItem:
    return store.HistoryItem(
        order.pk,
        store.history_sk(now, f"{kind}#{event.event_id}"),
        kind=kind,
        at=int(now),
        amount=event.amount,
        currency=event.currency,
        provider_event_id=event.event_id,
        refund_id=event.refund_id,
        **fields,
    )


def apply_event(provider: str, event: ProviderEvent, *, now: float | None = None) -> str:
    """Apply one verified event exactly once; returns what it did (for logs and tests)."""
    at = time.time() if now is None else now
    marker = store.get_event_marker(provider, event.event_id)
    if marker is not None:
        if marker.outcome == LATE_PAYMENT_REFUNDED:
            _finish_late_refund(provider, event, at)
        return "duplicate"
    for _ in range(MAX_RETRIES):
        order = store.get_order(event.order_id)
        plan = _plan(provider, order, event, at)
        if plan.change is not None:
            committed = store.apply_change(plan.change)
        elif plan.marker_only is not None:
            committed = store.record_event_only(plan.marker_only, anomaly=plan.anomaly_only)
        else:  # pragma: no cover - every plan carries one or the other
            raise DataAccessError("an event plan with nothing to write")
        if committed:
            for effect in plan.after:
                effect()
            return plan.outcome
        if store.get_event_marker(provider, event.event_id) is not None:
            return "duplicate"  # a concurrent delivery of the same event won
        # another event changed the order between our read and write: plan again on the new state
    raise DataAccessError(f"could not apply event {event.event_id} after {MAX_RETRIES} attempts")


def apply_provider_state(order: store.OrderItem, state: PaymentState, event_id: str, *, now: float) -> str | None:
    """Apply what a provider's query (or close) answered as if its webhook had arrived.

    A PAID or FAILED state becomes the same ``payment.succeeded``/``payment.failed`` event a
    webhook carries, applied by :func:`apply_event` (amount, currency and payment id checked,
    history, counters and domain events written the same way), deduplicated on ``event_id``.
    Returns the outcome, or None for a state that decides nothing (pending, closed, not found).
    """
    kinds = {PaymentStatus.PAID: EventKind.PAYMENT_SUCCEEDED, PaymentStatus.FAILED: EventKind.PAYMENT_FAILED}
    kind = kinds.get(state.status)
    if kind is None:
        return None
    event = ProviderEvent(
        event_id=event_id,
        kind=kind,
        order_id=order.order_id,
        provider_payment_id=state.provider_payment_id,
        amount=int(state.amount if state.amount is not None else order.amount),
        currency=state.currency or order.currency,
        occurred_at=state.paid_at or datetime.fromtimestamp(now, tz=UTC),
    )
    return apply_event(order.provider, event, now=now)


def _plan(provider: str, order: store.OrderItem | None, event: ProviderEvent, now: float) -> _Plan:
    if order is None:
        return _unknown_order(provider, event, now)
    if event.kind == EventKind.PAYMENT_SUCCEEDED:
        return _payment_succeeded(provider, order, event, now)
    if event.kind == EventKind.PAYMENT_FAILED:
        return _payment_failed(provider, order, event, now)
    return _refund_event(provider, order, event, now)


def _record_only(provider: str, event: ProviderEvent, outcome: str, now: float) -> _Plan:
    return _Plan(outcome=outcome, marker_only=_marker(provider, event, outcome, now))


def _alert(reason: str, provider: str, event: ProviderEvent, order: store.OrderItem | None) -> Callable[[], None]:
    def run() -> None:
        count(Metric.ANOMALIES, channel=order.channel if order else None)
        details = {
            "reason": reason,
            "provider": provider,
            "event_id": event.event_id,
            "kind": event.kind.value,
            "order_id": event.order_id,
            "event_amount": event.amount,
            "event_currency": event.currency,
            "order_amount": int(order.amount) if order else None,
            "order_currency": order.currency if order else None,
            "order_status": order.status if order else None,
        }
        logger.warning("payment anomaly", extra=details)
        notify.alert_ops(f"Payment anomaly: {reason} (order {event.order_id})", details)

    return run


def _unknown_order(provider: str, event: ProviderEvent, now: float) -> _Plan:
    anomaly = store.AnomalyItem(
        f"ANOMALY#{provider}",
        f"{int(now * 1000):015d}#{event.event_id}",
        provider=provider,
        event_id=event.event_id,
        order_id=event.order_id,
        reason="unknown_order",
        amount=event.amount,
        currency=event.currency,
        at=int(now),
    )
    plan = _record_only(provider, event, "anomaly:unknown_order", now)
    plan.anomaly_only = anomaly
    plan.after.append(_alert("unknown_order", provider, event, None))
    return plan


def _anomaly(provider: str, order: store.OrderItem, event: ProviderEvent, reason: str, now: float) -> _Plan:
    change = store.OrderChange(
        order=order,
        history=_history(order, event, "anomaly", now, detail=reason),
        marker=_marker(provider, event, f"anomaly:{reason}", now),
        counters={"anomaly_count": 1},
        at=now,
    )
    return _Plan(outcome=f"anomaly:{reason}", change=change, after=[_alert(reason, provider, event, order)])


def _mismatch(order: store.OrderItem, event: ProviderEvent) -> str | None:
    if event.currency != order.currency:
        return "currency_mismatch"
    if event.amount != int(order.amount):
        return "amount_mismatch"
    if (
        order.provider_payment_id
        and event.provider_payment_id
        and event.provider_payment_id != order.provider_payment_id
    ):
        return "payment_mismatch"
    return None


def _payment_succeeded(provider: str, order: store.OrderItem, event: ProviderEvent, now: float) -> _Plan:
    status = OrderStatus(order.status)
    if status == OrderStatus.PENDING:
        reason = _mismatch(order, event)
        if reason is not None:
            return _anomaly(provider, order, event, reason, now)
        change = store.OrderChange(
            order=order,
            history=_history(order, event, "paid", now, from_status=status.value, to_status=OrderStatus.PAID.value),
            from_statuses=(OrderStatus.PENDING.value,),
            to_status=OrderStatus.PAID.value,
            set_fields={"paid_at": int(event.occurred_at.timestamp()), "refundable_amount": int(order.amount)},
            leave_pending_index=True,
            marker=_marker(provider, event, "paid", now),
            counters={"paid_count": 1, "paid_amount": int(order.amount)},
            at=now,
        )
        return _Plan(
            outcome="paid",
            change=change,
            after=[_counted(Metric.PAYMENTS_SUCCEEDED, order), _publish_applied(change, "order.paid", now)],
        )
    if status in PAID_STATES and event.provider_payment_id in (None, order.provider_payment_id):
        return _record_only(provider, event, "already_paid", now)
    # A payment on a closed order, or a second payment of a paid one: keep it and give it back.
    return _late_payment(provider, order, event, now)


def late_refund_id(provider: str, event_id: str) -> str:
    """The id of a late payment's automatic refund: a UUID derived from the provider's event, so
    a redelivery of the event finds its refund, and every adapter can send it as the refund's key
    (Stripe's idempotency key; Alipay's out_request_no and WeChat Pay's out_refund_no take a UUID
    as 32 hex digits, and not an event id such as WeChat Pay's ``<transaction_id>:paid``)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"serverless-payments:late-payment:{provider}:{event_id}"))


def _late_payment(provider: str, order: store.OrderItem, event: ProviderEvent, now: float) -> _Plan:
    refund_id = late_refund_id(provider, event.event_id)
    refund = store.RefundItem(
        order.pk,
        f"REFUND#{refund_id}",
        refund_id=refund_id,
        order_id=order.order_id,
        user_id=order.user_id,
        amount=event.amount,
        currency=event.currency,
        status="pending",
        reason=f"automatic refund of a payment received while the order was {order.status}",
        automatic=True,
        provider_payment_id=event.provider_payment_id,
        created_at=int(now),
        updated_at=int(now),
    )
    change = store.OrderChange(
        order=order,
        history=_history(order, event, "late_payment", now, detail=f"order was {order.status}"),
        refund=store.RefundChange(item=refund, create=True),
        marker=_marker(provider, event, LATE_PAYMENT_REFUNDED, now),
        counters={"late_payment_count": 1, "late_payment_amount": event.amount},
        at=now,
    )

    def refund_it() -> None:
        count(Metric.LATE_PAYMENT_REFUNDED, channel=order.channel)
        current = store.applied(change)  # what the commit wrote (conditioned on the version): no read
        notify.publish("order.late_payment", event_detail(current, now, late_amount=event.amount))
        submit_refund(current, refund, now, provider_payment_id=event.provider_payment_id)

    return _Plan(outcome=LATE_PAYMENT_REFUNDED, change=change, after=[refund_it])


def _finish_late_refund(provider: str, event: ProviderEvent, now: float) -> None:
    """A redelivered late payment whose automatic refund never reached the provider (the function
    died between the commit and the submission, or the provider failed): submit it now. The
    refund's own id keys it at the provider, so a submission that did arrive is not repeated."""
    refund = store.get_refund(event.order_id, late_refund_id(provider, event.event_id))
    if refund is None or refund.status != "pending" or refund.provider_refund_id:
        return  # submitted (or settled) already
    order = store.get_order(event.order_id)
    if order is not None:
        logger.info("late payment's refund submitted on redelivery", extra={"refund_id": refund.refund_id})
        resubmit_refund(order, refund, now)


def _payment_failed(provider: str, order: store.OrderItem, event: ProviderEvent, now: float) -> _Plan:
    if order.status != OrderStatus.PENDING:
        return _record_only(provider, event, f"ignored:{order.status}", now)
    change = store.OrderChange(
        order=order,
        history=_history(order, event, "failed", now, from_status=order.status, to_status=OrderStatus.FAILED.value),
        from_statuses=(OrderStatus.PENDING.value,),
        to_status=OrderStatus.FAILED.value,
        set_fields={"closed_at": int(now)},
        leave_pending_index=True,
        marker=_marker(provider, event, "failed", now),
        counters={"failed_count": 1},
        at=now,
    )
    return _Plan(
        outcome="failed",
        change=change,
        after=[_counted(Metric.PAYMENTS_FAILED, order), _publish_applied(change, "order.failed", now)],
    )


def _refund_event(provider: str, order: store.OrderItem, event: ProviderEvent, now: float) -> _Plan:
    refund = store.get_refund(order.order_id, event.refund_id) if event.refund_id else None
    if refund is None:
        return _anomaly(provider, order, event, "unknown_refund", now)
    if refund.status != "pending":
        return _record_only(provider, event, f"already_{refund.status}", now)
    if event.amount != int(refund.amount) or event.currency != refund.currency:
        return _anomaly(provider, order, event, "refund_mismatch", now)
    succeeded = event.kind == EventKind.REFUND_SUCCEEDED
    new_status = "succeeded" if succeeded else "failed"
    refund_change = store.RefundChange(
        item=refund,
        from_status="pending",
        fields={"status": new_status, "updated_at": int(now)}
        | ({"provider_refund_id": event.provider_refund_id} if event.provider_refund_id else {}),
    )
    change = store.OrderChange(
        order=order,
        history=_history(order, event, f"refund_{new_status}", now),
        refund=refund_change,
        marker=_marker(provider, event, f"refund_{new_status}", now),
        at=now,
    )
    if refund.automatic:  # a late payment given back: the order's own money is not involved
        after = [] if succeeded else [_alert("late_payment_refund_failed", provider, event, order)]
        return _Plan(outcome=f"refund_{new_status}", change=change, after=after)
    amount = int(refund.amount)
    if succeeded:
        target = status_after_refund(int(order.amount), int(order.refunded_amount) + amount)
        change.from_statuses = tuple(s.value for s in REFUNDABLE)
        change.to_status = target.value
        change.history.from_status = order.status
        change.history.to_status = target.value
        change.add_fields = {"refunded_amount": amount, "refund_pending_amount": -amount}
        change.counters = {"refunded_count": 1, "refunded_amount": amount}
        return _Plan(
            outcome=f"refund_succeeded:{target.value}",
            change=change,
            after=[_publish_applied(change, f"order.{target.value}", now, refund_id=refund.refund_id)],
        )
    change.add_fields = {"refundable_amount": amount, "refund_pending_amount": -amount}
    return _Plan(
        outcome="refund_failed",
        change=change,
        after=[_publish_applied(change, "order.refund_failed", now, refund_id=refund.refund_id)],
    )


def _counted(metric: Metric, order: store.OrderItem) -> Callable[[], None]:
    """Count the transition once it is committed, by the order's channel."""
    return lambda: count(metric, channel=order.channel)


def _publish_applied(change: store.OrderChange, detail_type: str, now: float, **extra: Any) -> Callable[[], None]:
    """Publish the domain event once ``change`` has committed, from the order as it committed it
    (:func:`paycore.data.orders.applied`; no read after the commit)."""

    def run() -> None:
        notify.publish(detail_type, event_detail(store.applied(change), now, **extra))

    return run


def submit_refund(
    order: store.OrderItem, refund: store.RefundItem, now: float, *, provider_payment_id: str | None = None
) -> bool:
    """Ask the provider to refund; a synchronous answer is applied like the provider's event.
    True when such an answer (or a refusal) changed the refund and the order; False when the
    refund is still pending.

    Raises :class:`paycore.errors.ProviderUnavailable` when the provider fails: the refund stays
    pending (its amount reserved), and the same refund id can be submitted again (the sweeper's
    refund reconciler does, after a grace period). An automatic refund alerts ops instead of
    raising. A definite refusal fails the refund (its amount is refundable again) and raises
    Conflict ``provider_refused``; an automatic refund's failure alerts ops.
    """
    try:
        outcome = _submit(order, refund, now, provider_payment_id)
    except ProviderUnavailable:
        if not refund.automatic:
            raise
        _alert("late_payment_refund_failed", order.provider, _refund_as_event(order, refund, ""), order)()
        return False
    if outcome == _REFUSED and not refund.automatic:
        raise Conflict("The payment provider refused the refund.", code="provider_refused")
    return outcome != _PENDING


def resubmit_refund(order: store.OrderItem, refund: store.RefundItem, now: float) -> bool:
    """Submit a pending refund whose submission was lost (a crash after it was recorded) or failed,
    under its own id, so the provider refunds at most once however often it is submitted.

    False when the provider was unavailable: the refund stays pending and goes to the back of the
    reconciler's queue. A definite refusal fails it (as in :func:`submit_refund`) and returns True.
    """
    try:
        _submit(order, refund, now, None)
    except ProviderUnavailable:
        store.defer_refund_submission(order.order_id, refund.refund_id, int(now))
        return False
    return True


_PENDING, _SETTLED, _REFUSED = "pending", "settled", "refused"


def _submit(order: store.OrderItem, refund: store.RefundItem, now: float, provider_payment_id: str | None) -> str:
    """One refund call to the provider, keyed by ``refund.refund_id``: the refund is still pending
    (the provider has it), settled by the provider's synchronous answer, or refused (it failed)."""
    provider = get_provider(order.provider)
    try:
        result = provider.refund(
            order.order_id,
            provider_payment_id or refund.provider_payment_id or order.provider_payment_id,
            refund.refund_id,
            int(refund.amount),
            refund.currency,
            # the total of the payment refunded (WeChat Pay's amount.total must equal it): the order's
            # for its own payment; a late payment's own amount for its automatic refund, which gives
            # that whole payment back and may differ from the order's amount
            int(refund.amount) if refund.automatic else int(order.amount),
        )
    except ProviderError as exc:
        logger.warning(
            "provider refund failed",
            extra={"order_id": order.order_id, "refund_id": refund.refund_id, "retryable": exc.retryable},
        )
        if exc.retryable:  # unknown outcome: the refund stays pending and may be submitted again
            raise ProviderUnavailable() from exc
        # a definite refusal: the refund failed (the order's own: its amount is refundable again)
        apply_event(order.provider, _refund_as_event(order, refund, f"refused:{refund.refund_id}"), now=now)
        return _REFUSED
    if result.provider_refund_id:
        store.update_refund_provider_id(order.order_id, refund.refund_id, result.provider_refund_id)
    if result.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
        kind = EventKind.REFUND_SUCCEEDED if result.status == RefundStatus.SUCCEEDED else EventKind.REFUND_FAILED
        apply_event(order.provider, _refund_as_event(order, refund, f"sync:{refund.refund_id}", kind), now=now)
        return _SETTLED
    return _PENDING


def _refund_as_event(
    order: store.OrderItem, refund: store.RefundItem, event_id: str, kind: EventKind = EventKind.REFUND_FAILED
) -> ProviderEvent:
    return ProviderEvent(
        event_id=event_id,
        kind=kind,
        order_id=order.order_id,
        provider_payment_id=order.provider_payment_id,
        amount=int(refund.amount),
        currency=refund.currency,
        occurred_at=datetime.now(tz=UTC),
        refund_id=refund.refund_id,
    )

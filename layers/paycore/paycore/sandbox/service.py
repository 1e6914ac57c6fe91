"""What the sandbox provider does: payments, the payer's Pay/Decline, close, refund, and events.

Every state change of a sandbox payment is a conditional write together with the webhook event it
causes (one transaction), and each event is then queued for delivery according to the behaviour
knobs: an initial delay, a chance of a duplicate delivery, and a chance of an extra delay that
lets later events overtake it (out-of-order).

Knobs can be set for every payment or for one merchant channel (its own knobs override the global
ones for the payments made through it), so one sandbox can play several acquirers that behave
differently: the transaction simulator gives each channel its success rate over time, its
outages and its latency this way (docs/simulator.md).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, fields
from typing import Any

from paycore.config import sandbox_settings
from paycore.data import sandbox as store
from paycore.errors import InvalidRequest, NotFound
from paycore.observability import logger
from paycore.providers.base import ProviderError
from paycore.sandbox import webhooks

PROVIDER = "sandbox"
BPS = 10_000  # rates are basis points: 10000 = always


@dataclass(frozen=True)
class Behaviour:
    decline_rate_bps: int = 0  # chance that Pay is declined
    delivery_delay_seconds: int = 0  # wait before the first delivery of every event
    duplicate_rate_bps: int = 0  # chance that an event is delivered twice
    out_of_order_rate_bps: int = 0  # chance that an event is held back ...
    out_of_order_delay_seconds: int = 5  # ... this much longer, so later events overtake it
    late_payment_grace_seconds: int = 0  # how long after expiry Pay still succeeds (late payments)
    refund_failure_rate_bps: int = 0  # chance that a refund fails (refund.failed, money not moved)
    payment_error_rate_bps: int = 0  # chance that creating a payment fails (an outage: the API answers 503)
    latency_ms: int = 0  # how long creating and paying a payment take (a slow acquirer)

    def validated(self) -> Behaviour:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 0:
                raise InvalidRequest(f"{f.name} must be a non-negative integer", code="invalid_behaviour")
            if f.name.endswith("_bps") and value > BPS:
                raise InvalidRequest(f"{f.name} is at most {BPS}", code="invalid_behaviour")
        return self


def behaviour(channel: str | None = None) -> Behaviour:
    """The knobs in force: the function's environment, overridden by what was set at run time for
    every payment, overridden by what was set for ``channel``."""
    s = sandbox_settings()
    base = {
        "decline_rate_bps": s.decline_rate_bps,
        "delivery_delay_seconds": s.delivery_delay_seconds,
        "duplicate_rate_bps": s.duplicate_rate_bps,
        "out_of_order_rate_bps": s.out_of_order_rate_bps,
        "out_of_order_delay_seconds": s.out_of_order_delay_seconds,
        "late_payment_grace_seconds": s.late_payment_grace_seconds,
        "refund_failure_rate_bps": s.refund_failure_rate_bps,
    }
    merged = {**base, **store.behaviour_overrides()}
    if channel is not None:
        merged |= store.behaviour_overrides(channel)
    return Behaviour(**merged)


def _known_knobs(knobs: dict[str, int]) -> None:
    unknown = set(knobs) - {f.name for f in fields(Behaviour)}
    if unknown:
        raise InvalidRequest(f"unknown sandbox knobs {sorted(unknown)}", code="invalid_behaviour")


def set_behaviour(channel: str | None = None, **knobs: int) -> Behaviour:
    """Change knobs at run time (the simulator's entry point); unnamed knobs keep their value. With
    ``channel``, only that channel's payments see them. Returns the knobs now in force there."""
    _known_knobs(knobs)
    if channel is None:
        updated = Behaviour(**{**behaviour().__dict__, **knobs}).validated()
        store.set_behaviour(dict(updated.__dict__))
        return updated
    overrides = {**store.behaviour_overrides(channel), **knobs}
    Behaviour(**{**behaviour().__dict__, **overrides}).validated()
    store.set_behaviour(overrides, channel)
    return behaviour(channel)


def behaviour_overrides(channel: str | None = None) -> dict[str, int]:
    """What was set at run time (for every payment, or for one channel), without the defaults."""
    return store.behaviour_overrides(channel)


def replace_behaviour(overrides: dict[str, int], channel: str | None = None) -> None:
    """Put back exactly these overrides (``{}``: none), e.g. what :func:`behaviour_overrides` read before."""
    _known_knobs(overrides)
    Behaviour(**{**behaviour().__dict__, **overrides}).validated()
    store.set_behaviour(dict(overrides), channel)


def _chance(bps: int) -> bool:
    return bps > 0 and secrets.randbelow(BPS) < bps


def _take_time(knobs: Behaviour) -> None:
    if knobs.latency_ms:
        time.sleep(knobs.latency_ms / 1000)


# ------------------------------------------------------------------ events


def _new_event(payment: store.SandboxPayment, kind: str, now: int, **extra: Any) -> store.SandboxEvent:
    event_id = f"evt_{secrets.token_hex(12)}"
    data = {
        "payment_id": payment.payment_id,
        "order_id": payment.order_id,
        "amount": int(payment.amount),
        "currency": payment.currency,
        **extra,
    }
    body = json.dumps({"id": event_id, "type": kind, "created": now, "data": data}, sort_keys=True)
    return store.SandboxEvent(
        store.payment_pk(payment.payment_id), f"EVENT#{event_id}", event_id=event_id, body=body, created_at=now
    )


def _dispatch(payment_id: str, event: store.SandboxEvent, now: int, channel: str | None) -> None:
    """Queue the event's deliveries as the behaviour says (after its transaction committed)."""
    knobs = behaviour(channel)
    copies = 2 if _chance(knobs.duplicate_rate_bps) else 1
    for _ in range(copies):
        delay = knobs.delivery_delay_seconds
        if _chance(knobs.out_of_order_rate_bps):
            delay += knobs.out_of_order_delay_seconds
        webhooks.enqueue(webhooks.Job(payment_id, event.event_id, 1, now + delay), now)
    logger.info("sandbox event queued", extra={"event_id": event.event_id, "copies": copies})


# ------------------------------------------------------------------ payments


def create_payment(
    *,
    order_id: str,
    amount: int,
    currency: str,
    subject: str,
    expires_at: int,
    notify_url: str,
    base_url: str,
    now: int,
    channel: str | None = None,
) -> store.SandboxPayment:
    """Create the payment of a merchant order; the same order gets the same payment back."""
    knobs = behaviour(channel)
    _take_time(knobs)
    if _chance(knobs.payment_error_rate_bps):
        raise ProviderError("the sandbox is failing for this channel (payment_error_rate_bps)", provider=PROVIDER)
    payment_id = f"pay_{secrets.token_hex(12)}"
    payment = store.SandboxPayment(
        store.payment_pk(payment_id),
        store.PAYMENT_SK,
        payment_id=payment_id,
        order_id=order_id,
        amount=amount,
        currency=currency,
        subject=subject,
        status="pending",
        notify_url=notify_url,
        checkout_url=f"{base_url.rstrip('/')}/sandbox/checkout/{payment_id}",
        expires_at=expires_at,
        created_at=now,
        refundable=0,
        channel=channel,
    )
    if store.create_payment(payment):
        return payment
    existing = payment_for_order(order_id)
    if existing is None or int(existing.amount) != amount or existing.currency != currency:
        raise ProviderError("order already has a different sandbox payment", provider=PROVIDER, retryable=False)
    return existing


def get_payment(payment_id: str) -> store.SandboxPayment:
    payment = store.get_payment(payment_id)
    if payment is None:
        raise NotFound("No such sandbox payment.", code="payment_not_found")
    return payment


def payment_for_order(order_id: str) -> store.SandboxPayment | None:
    payment_id = store.payment_id_for_order(order_id)
    return store.get_payment(payment_id) if payment_id else None


@dataclass(frozen=True)
class Outcome:
    payment: store.SandboxPayment
    result: str  # paid | declined | expired | already_<status>


def pay(payment_id: str, now: int) -> Outcome:
    """The payer pressed Pay: paid, or declined at the configured rate, or refused when closed."""
    payment = get_payment(payment_id)
    knobs = behaviour(payment.channel)
    _take_time(knobs)
    if payment.status != "pending":
        return Outcome(payment, f"already_{payment.status}")
    if now > int(payment.expires_at) + knobs.late_payment_grace_seconds:
        return Outcome(payment, "expired")
    if _chance(knobs.decline_rate_bps):
        return _fail(payment, now, "declined")
    event = _new_event(payment, "payment.succeeded", now)
    moved = store.move_payment(
        payment,
        from_status="pending",
        to_status="paid",
        event=event,
        fields={"paid_at": now, "refundable": int(payment.amount)},
    )
    if not moved:
        return Outcome(get_payment(payment_id), "already_" + get_payment(payment_id).status)
    _dispatch(payment_id, event, now, payment.channel)
    return Outcome(get_payment(payment_id), "paid")


def decline(payment_id: str, now: int) -> Outcome:
    """The payer pressed Decline: the payment fails (final, as a declined QR payment is)."""
    payment = get_payment(payment_id)
    if payment.status != "pending":
        return Outcome(payment, f"already_{payment.status}")
    return _fail(payment, now, "declined")


def _fail(payment: store.SandboxPayment, now: int, result: str) -> Outcome:
    event = _new_event(payment, "payment.failed", now)
    if not store.move_payment(payment, from_status="pending", to_status="failed", event=event):
        current = get_payment(payment.payment_id)
        return Outcome(current, f"already_{current.status}")
    _dispatch(payment.payment_id, event, now, payment.channel)
    return Outcome(get_payment(payment.payment_id), result)


def close(order_id: str) -> store.SandboxPayment | None:
    """Close the order's payment so it can no longer be paid; returns it as it is afterwards."""
    payment = payment_for_order(order_id)
    if payment is None or payment.status != "pending":
        return payment
    store.move_payment(payment, from_status="pending", to_status="closed", event=None)
    return get_payment(payment.payment_id)


def refund(
    order_id: str, refund_id: str, amount: int, now: int, *, payment_id: str | None = None
) -> store.SandboxRefund:
    """Refund part or all of a paid payment; idempotent on ``refund_id``. The refund completes
    asynchronously: a ``refund.succeeded`` webhook follows.

    ``payment_id`` names the payment to refund, as a real provider's refund names its charge; a
    payment the sandbox does not have, or one of another order, is refused (no money moves).
    Without it, the order's payment is refunded.
    """
    payment = payment_for_order(order_id) if payment_id is None else store.get_payment(payment_id)
    if payment is None or payment.order_id != order_id:
        named = payment_id or "(none)"
        raise ProviderError(
            f"the sandbox has no payment {named} for order {order_id}", provider=PROVIDER, retryable=False
        )
    existing = store.get_refund(payment.payment_id, refund_id)
    if existing is not None:
        if int(existing.amount) != amount:
            raise ProviderError("refund id reused with another amount", provider=PROVIDER, retryable=False)
        return existing
    provider_refund_id = f"re_{secrets.token_hex(12)}"
    fails = _chance(behaviour(payment.channel).refund_failure_rate_bps)
    item = store.SandboxRefund(
        store.payment_pk(payment.payment_id),
        f"REFUND#{refund_id}",
        refund_id=refund_id,
        provider_refund_id=provider_refund_id,
        amount=amount,
        status="failed" if fails else "succeeded",
        created_at=now,
    )
    kind = "refund.failed" if fails else "refund.succeeded"
    event = _new_event(payment, kind, now, amount=amount, refund_id=refund_id, provider_refund_id=provider_refund_id)
    if not store.create_refund(payment, item, event, deduct=not fails):
        again = store.get_refund(payment.payment_id, refund_id)
        if again is not None and int(again.amount) == amount:
            return again
        raise ProviderError(
            "the sandbox refused the refund (not paid, or too much)", provider=PROVIDER, retryable=False
        )
    _dispatch(payment.payment_id, event, now, payment.channel)
    return item

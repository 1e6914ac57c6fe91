"""Stripe webhooks: Stripe-Signature verification and the events that change an order.

Event bodies follow docs.stripe.com/api/events/object with data.object a PaymentIntent
(docs.stripe.com/api/payment_intents/object) or a Refund (docs.stripe.com/api/refunds/object).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from paycore.providers.accounts import ProviderAccount, StaticAccount
from paycore.providers.base import EventKind, InvalidCallback, ProviderError
from paycore.providers.stripe_provider import StripeProvider, from_stripe_amount, to_stripe_amount

pytestmark = pytest.mark.unit

NOW = 1_767_225_600
ORDER = "3f2b8c1e-9d4a-4b7e-8f00-1a2b3c4d5e6f"
SECRETS = ["whsec_old_rotating_out", "whsec_current"]


def provider(secrets: Any = SECRETS) -> StripeProvider:
    creds = {"api_key": "sk_test_unit", "webhook_secrets": secrets}
    return StripeProvider(StaticAccount(ProviderAccount("stripe", "test/stripe", "http://127.0.0.1:9", creds)))


def event(event_type: str, obj: dict[str, Any], event_id: str = "evt_1NG8Du2eZvKYlo2CUI79vXWy") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": NOW - 5,
            "livemode": False,
            "type": event_type,
            "data": {"object": obj},
        }
    ).encode()


def intent(status: str = "succeeded", flow: str = "wechat_pay", **extra: Any) -> dict[str, Any]:
    return {
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "payment_intent",
        "amount": 2000,
        "amount_received": 2000 if status == "succeeded" else 0,
        "currency": "cny",
        "status": status,
        "metadata": {"order_id": ORDER, "flow": flow},
        **extra,
    }


def signed(body: bytes, secret: str = SECRETS[1], t: int = NOW) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={t},v1={digest}"}


def test_payment_intent_succeeded_is_a_payment_event_deduped_by_event_id() -> None:
    body = event("payment_intent.succeeded", intent())
    [evt] = provider().parse_callback(signed(body), body, now=NOW)
    assert evt.event_id == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    assert evt.kind is EventKind.PAYMENT_SUCCEEDED
    assert (evt.order_id, evt.amount, evt.currency) == (ORDER, 2000, "CNY")
    assert evt.provider_payment_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"


def test_a_secret_being_rotated_out_still_verifies() -> None:
    body = event("payment_intent.succeeded", intent())
    assert provider().parse_callback(signed(body, "whsec_old_rotating_out"), body, now=NOW)
    assert provider("whsec_current").parse_callback(signed(body), body, now=NOW)  # a single string works too


def test_zero_decimal_currency_amounts_are_taken_as_they_are() -> None:
    body = event("payment_intent.succeeded", intent(amount=500, amount_received=500, currency="jpy"))
    [evt] = provider().parse_callback(signed(body), body, now=NOW)
    assert (evt.amount, evt.currency) == (500, "JPY")


def test_failed_qr_payment_is_a_failed_event_but_a_declined_card_in_checkout_is_not() -> None:
    body = event("payment_intent.payment_failed", intent("requires_payment_method"))
    [evt] = provider().parse_callback(signed(body), body, now=NOW)
    assert evt.kind is EventKind.PAYMENT_FAILED
    body = event("payment_intent.payment_failed", intent("requires_payment_method", flow="card"))
    assert provider().parse_callback(signed(body), body, now=NOW) == []


def test_refund_events_carry_our_refund_id_once_final() -> None:
    refund = {
        "id": "re_1Nispe2eZvKYlo2Cd31jOCgZ",
        "object": "refund",
        "amount": 500,
        "currency": "cny",
        "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "status": "succeeded",
        "metadata": {"order_id": ORDER, "refund_id": "7d3c1a2b-0000-4000-8000-000000000001"},
    }
    body = event("refund.created", refund, "evt_refund_1")
    [evt] = provider().parse_callback(signed(body), body, now=NOW)
    assert evt.kind is EventKind.REFUND_SUCCEEDED
    assert (evt.refund_id, evt.provider_refund_id, evt.amount) == (
        "7d3c1a2b-0000-4000-8000-000000000001",
        "re_1Nispe2eZvKYlo2Cd31jOCgZ",
        500,
    )
    body = event("refund.created", {**refund, "status": "pending"}, "evt_refund_2")
    assert provider().parse_callback(signed(body), body, now=NOW) == []
    body = event("refund.failed", {**refund, "status": "failed"}, "evt_refund_3")
    assert provider().parse_callback(signed(body), body, now=NOW)[0].kind is EventKind.REFUND_FAILED


@pytest.mark.parametrize(
    "body",
    [
        event(
            "checkout.session.completed", {"id": "cs_1", "object": "checkout.session", "metadata": {"order_id": ORDER}}
        ),
        event("payment_intent.succeeded", {**intent(), "metadata": {}}),  # another integration's payment
        event("customer.created", {"id": "cus_1", "object": "customer"}),
    ],
)
def test_verified_events_that_change_no_order_are_acknowledged_without_events(body: bytes) -> None:
    assert provider().parse_callback(signed(body), body, now=NOW) == []


@pytest.mark.parametrize(
    ("case", "now"),
    [("wrong_secret", NOW), ("altered_amount", NOW), ("stale", NOW + 301), ("no_header", NOW)],
)
def test_refused_webhooks(case: str, now: int) -> None:
    body = event("payment_intent.succeeded", intent())
    headers = signed(body, "whsec_attacker" if case == "wrong_secret" else "whsec_current")
    if case == "no_header":
        headers = {}
    if case == "altered_amount":
        body = body.replace(b'"amount_received": 2000', b'"amount_received": 200000')
    with pytest.raises(InvalidCallback):
        provider().parse_callback(headers, body, now=now)


@pytest.mark.parametrize(
    "body", [b"not json", b'{"object": "list"}', event("payment_intent.succeeded", intent(currency="zzz"))]
)
def test_signed_but_malformed_events_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidCallback):
        provider().parse_callback(signed(body), body, now=NOW)


def test_acks_are_2xx_only_when_accepted() -> None:
    assert provider().ack(True).status_code == 200
    assert provider().ack(False).status_code == 400


@pytest.mark.parametrize(
    ("amount", "currency", "stripe_amount"),
    [(1050, "USD", 1050), (500, "JPY", 500), (12340, "KWD", 12340), (5, "ISK", 500), (300, "MGA", 3)],
)
def test_amounts_convert_exactly_to_stripe_minor_units(amount: int, currency: str, stripe_amount: int) -> None:
    assert to_stripe_amount(amount, currency) == stripe_amount
    assert from_stripe_amount(stripe_amount, currency) == amount


@pytest.mark.parametrize(("amount", "currency"), [(12345, "KWD"), (301, "MGA")])
def test_amounts_stripe_cannot_take_exactly_are_refused(amount: int, currency: str) -> None:
    with pytest.raises(ProviderError):
        to_stripe_amount(amount, currency)

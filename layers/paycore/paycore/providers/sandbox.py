"""The sandbox provider's adapter: the order logic talks to the simulator only through this.

A real provider is reached over HTTPS; the sandbox's "API" is ``paycore.sandbox.service`` called
in-process (same stack, its own table), while its webhooks travel over HTTP like any provider's.
The checkout page lives on this API (``/sandbox/checkout/{payment_id}``), so its base URL is the
one the order's ``notify_url`` was built on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from paycore import money
from paycore.providers.base import (
    CallbackAck,
    CreatedPayment,
    EventKind,
    InvalidCallback,
    PaymentRequest,
    PaymentState,
    PaymentStatus,
    ProviderEvent,
    RefundResult,
    RefundStatus,
)
from paycore.providers.common import header

NAME = "sandbox"
CALLBACK_PATH = "/callbacks/sandbox"
_STATUS = {
    "pending": PaymentStatus.PENDING,
    "paid": PaymentStatus.PAID,
    "failed": PaymentStatus.FAILED,
    "closed": PaymentStatus.CLOSED,
}


def _when(seconds: int | float | None) -> datetime | None:
    return datetime.fromtimestamp(float(seconds), tz=UTC) if seconds is not None else None


class SandboxProvider:
    name = NAME

    def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        from paycore.sandbox import service

        base_url = request.notify_url.rsplit("/callbacks/", 1)[0]
        payment = service.create_payment(
            order_id=request.order_id,
            amount=request.amount,
            currency=request.currency,
            subject=request.subject,
            expires_at=int(request.expires_at.timestamp()),
            notify_url=request.notify_url,
            base_url=base_url,
            now=int(datetime.now(tz=UTC).timestamp()),
            channel=request.channel.get("id"),
        )
        return CreatedPayment(
            provider_payment_id=payment.payment_id,
            qr_code=payment.checkout_url,
            checkout_url=payment.checkout_url,
            expires_at=datetime.fromtimestamp(int(payment.expires_at), tz=UTC),
        )

    def parse_callback(self, headers: Mapping[str, str], raw_body: bytes, *, now: float) -> list[ProviderEvent]:
        from paycore.sandbox import webhooks

        webhooks.verify(webhooks.webhook_secret(), header(headers, webhooks.SIGNATURE_HEADER), raw_body, now)
        return [_parse_event(raw_body)]

    def ack(self, accepted: bool) -> CallbackAck:
        if accepted:
            return CallbackAck(status_code=200, body='{"received": true}', content_type="application/json")
        return CallbackAck(status_code=400, body='{"received": false}', content_type="application/json")

    def query_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
        from paycore.sandbox import service

        payment = service.payment_for_order(order_id)
        if payment is None:
            return PaymentState(status=PaymentStatus.NOT_FOUND, provider_payment_id=provider_payment_id)
        return PaymentState(
            status=_STATUS[payment.status],
            provider_payment_id=payment.payment_id,
            amount=int(payment.amount),
            currency=payment.currency,
            paid_at=_when(payment.paid_at),
        )

    def close_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
        from paycore.sandbox import service

        service.close(order_id)
        return self.query_payment(order_id, provider_payment_id)

    def refund(
        self, order_id: str, provider_payment_id: str | None, refund_id: str, amount: int, currency: str, total: int
    ) -> RefundResult:
        from paycore.sandbox import service

        # The payment named (as a real provider refunds the charge it is given); the order's own
        # when none is named. An id the sandbox does not know for this order is refused.
        item = service.refund(
            order_id, refund_id, amount, int(datetime.now(tz=UTC).timestamp()), payment_id=provider_payment_id
        )
        # The sandbox confirms refunds by webhook (refund.succeeded), like Stripe's refund events.
        return RefundResult(provider_refund_id=item.provider_refund_id, status=RefundStatus.PENDING)


_KINDS = {kind.value: kind for kind in EventKind}


def _parse_event(raw_body: bytes) -> ProviderEvent:
    try:
        data: Any = json.loads(raw_body)
        obj = data["data"]
        kind = _KINDS[data["type"]]
        amount, currency = obj["amount"], obj["currency"]
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise ValueError("amount is not a positive integer")
        if not money.is_currency(currency):
            raise ValueError("currency is not ISO 4217")
        return ProviderEvent(
            event_id=str(data["id"]),
            kind=kind,
            order_id=str(obj["order_id"]),
            provider_payment_id=str(obj["payment_id"]),
            amount=amount,
            currency=currency,
            occurred_at=datetime.fromtimestamp(int(data["created"]), tz=UTC),
            refund_id=obj.get("refund_id"),
            provider_refund_id=obj.get("provider_refund_id"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCallback("the sandbox event is malformed") from exc


def factory() -> SandboxProvider:
    return SandboxProvider()

"""The provider interface: what every payment provider adapter does, in provider-neutral terms.

Amounts are always integer minor units with an ISO 4217 currency; adapters convert to and from
the provider's own representation (yuan strings, fen integers, Stripe's minor units) exactly.
Adapters raise :class:`ProviderError` for provider failures (network, 5xx, unexpected answers)
and :class:`InvalidCallback` for a callback that fails verification; nothing else escapes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from paycore.errors import PaymentError


class ProviderError(Exception):
    """The provider could not be reached or answered something unusable. Retryable."""

    def __init__(self, message: str, *, provider: str, retryable: bool = True):
        super().__init__(message)
        self.provider = provider
        self.retryable = retryable


class InvalidCallback(PaymentError):
    """A callback failed verification (signature, timestamp, shape): 4xx and nothing written."""

    status = 400
    code = "invalid_callback"
    default_message = "The callback could not be verified."


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"  # created, not paid yet (includes "not scanned yet")
    PAID = "paid"
    FAILED = "failed"  # declined or failed; no money moved
    CLOSED = "closed"  # closed/cancelled at the provider; no money moved
    NOT_FOUND = "not_found"  # the provider has no such payment (e.g. an Alipay precreate never scanned)


class EventKind(enum.StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class PaymentRequest:
    order_id: str  # our id; adapters send it as the merchant reference (out_trade_no, metadata)
    amount: int
    currency: str
    subject: str
    expires_at: datetime
    notify_url: str  # where the provider posts callbacks (/callbacks/{provider})
    channel: Mapping[str, Any] = field(default_factory=dict)  # the channel's configuration item
    return_url: str | None = None


@dataclass(frozen=True)
class CreatedPayment:
    provider_payment_id: str
    qr_code: str | None  # content to render as a QR code (a URL or provider code)
    checkout_url: str | None  # a page the payer can open
    expires_at: datetime


@dataclass(frozen=True)
class PaymentState:
    status: PaymentStatus
    provider_payment_id: str | None
    amount: int | None = None
    currency: str | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True)
class ProviderEvent:
    """One verified event from a callback, in neutral terms."""

    event_id: str  # the provider's event id (the dedupe key, with the provider name)
    kind: EventKind
    order_id: str
    provider_payment_id: str | None
    amount: int
    currency: str
    occurred_at: datetime
    refund_id: str | None = None  # our refund id, for refund events
    provider_refund_id: str | None = None


@dataclass(frozen=True)
class CallbackAck:
    """What to answer the provider: each provider expects its own body (Alipay: ``success``)."""

    status_code: int
    body: str = ""
    content_type: str = "text/plain"


@dataclass(frozen=True)
class RefundResult:
    provider_refund_id: str | None
    status: RefundStatus


@runtime_checkable
class PaymentProvider(Protocol):
    name: str

    def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        """Create the payment at the provider; idempotent on ``request.order_id``."""

    def parse_callback(self, headers: Mapping[str, str], raw_body: bytes, *, now: float) -> list[ProviderEvent]:
        """Verify the callback over the raw body, then parse it. Raises InvalidCallback."""

    def ack(self, accepted: bool) -> CallbackAck:
        """The answer the provider expects for an accepted (or refused) callback."""

    def query_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
        """The provider's current view of the payment."""

    def close_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
        """Close an unpaid payment so it can no longer be paid; returns the state after closing
        (PAID when the payer won the race, so the caller records the payment instead)."""

    def refund(
        self, order_id: str, provider_payment_id: str | None, refund_id: str, amount: int, currency: str, total: int
    ) -> RefundResult:
        """Refund ``amount`` of a paid payment; idempotent on ``refund_id``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from paycore.money import MAX_MINOR_UNITS
from paycore.schemas.common import CurrencyCode

# JSON integers only: "1000" or 1000.0 is refused rather than coerced (money is never guessed at).
StrictAmount = Annotated[
    int,
    Field(strict=True, gt=0, le=MAX_MINOR_UNITS, description="Amount in the currency's minor units (fen, cents, yen)"),
]

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
REFUND_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
OrderStatusName = Literal["pending", "paid", "failed", "expired", "cancelled", "partially_refunded", "refunded"]


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(default=1, gt=0, le=100_000)
    unit_amount: int | None = Field(default=None, ge=0, description="Price of one unit, minor units")


class CreateOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(
        pattern=UUID_PATTERN,
        description="Client-generated UUID; the idempotency key",
        examples=["3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b"],
    )
    amount: Annotated[StrictAmount, Field(examples=[1000])]
    currency: CurrencyCode
    channel: str = Field(pattern=r"^[a-z0-9_]{1,64}$", description='A channel id, or "auto"', examples=["auto"])
    subject: str = Field(min_length=1, max_length=256, examples=["Coffee beans, 250 g"])
    items: list[OrderLine] | None = Field(default=None, max_length=100)
    expires_in: int | None = Field(
        default=None, strict=True, ge=60, le=86_400, description="Seconds until the order expires (default 900)"
    )


class PaymentOut(BaseModel):
    qr_code: str | None = Field(description="Content to render as a QR code")
    checkout_url: str | None = Field(description="A page where the payer pays")
    expires_at: str = Field(description="ISO 8601 UTC")


class RefundOut(BaseModel):
    refund_id: str
    order_id: str
    amount: int
    currency: str
    status: Literal["pending", "succeeded", "failed"]
    reason: str | None = None
    automatic: bool = Field(description="True for the refund of a payment that arrived after the order closed")
    created_at: str
    updated_at: str


class OrderOut(BaseModel):
    order_id: str
    status: OrderStatusName
    amount: int
    currency: str
    channel: str
    subject: str
    items: list[OrderLine] | None = None
    payment: PaymentOut
    expires_at: str
    created_at: str
    updated_at: str
    paid_at: str | None = None
    refunded_amount: int = Field(description="Refunds the provider confirmed, minor units")
    refund_pending_amount: int = Field(description="Refunds requested and not confirmed yet, minor units")
    refunds: list[RefundOut] | None = Field(default=None, description="Present on GET /orders/{order_id}")
    signature: str | None = Field(description="The server's signature over the order (docs/orders.md)")


class OrderList(BaseModel):
    orders: list[OrderOut]
    next_cursor: str | None


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refund_id: str = Field(
        pattern=REFUND_ID_PATTERN, description="Client-chosen; the idempotency key", examples=["r-1"]
    )
    amount: Annotated[StrictAmount, Field(examples=[500])]
    reason: str | None = Field(default=None, max_length=256)


class RefundCreated(RefundOut):
    order: OrderOut

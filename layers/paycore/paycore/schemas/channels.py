from __future__ import annotations

from pydantic import BaseModel, Field

from paycore.schemas.common import CurrencyCode


class AmountLimits(BaseModel):
    min: int = Field(description="Smallest accepted amount, minor units")
    max: int = Field(description="Largest accepted amount, minor units")


class ChannelOut(BaseModel):
    id: str
    name: str
    provider: str
    currencies: list[CurrencyCode]
    available: bool = Field(description="Whether the channel takes new payments now")
    methods: list[str] = Field(description="How the payer pays: qr_code, checkout")
    limits: dict[str, AmountLimits] = Field(description="Accepted amounts per currency")
    description: str | None = None
    score: float | None = Field(
        default=None,
        description="The router's probability of choosing this channel for this payment now "
        "(given when amount and currency are; docs/routing.md)",
    )
    success_rate: float | None = Field(
        default=None, description="The router's estimate of this channel's recent success rate for such payments"
    )


class ChannelList(BaseModel):
    channels: list[ChannelOut] = Field(
        description="Eligible channels; with amount and currency, available ones by the router's score, highest first"
    )
    recommended: str | None = Field(
        description="The channel id to use for this payment, or null when none is available"
    )

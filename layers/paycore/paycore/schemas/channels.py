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


class ChannelList(BaseModel):
    channels: list[ChannelOut]
    recommended: str | None = Field(
        description="The channel id to use for this payment, or null when none is available"
    )

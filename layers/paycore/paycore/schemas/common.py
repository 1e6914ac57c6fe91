from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from paycore.money import MAX_MINOR_UNITS

CurrencyCode = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 alphabetic code, e.g. CNY", examples=["CNY"]),
]
MinorAmount = Annotated[
    int,
    Field(gt=0, le=MAX_MINOR_UNITS, description="Amount in the currency's minor units (fen, cents, yen)"),
]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable snake_case error code")
    message: str = Field(description="Human-readable explanation")


class ErrorBody(BaseModel):
    """The one error shape of the API."""

    model_config = ConfigDict(title="Error")
    error: ErrorDetail

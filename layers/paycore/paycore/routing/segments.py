"""Routing segments: the currency and a log-scale band of the amount in the currency's major units.

A channel's success rate differs by currency (a different acquirer, a different payer base) and by
amount (large payments meet limits, 3-D Secure and risk checks that small ones do not). The router
therefore learns one posterior per (segment, channel). Bands are decades of the amount in major
units (yuan, dollars, yen), computed with integers only: a currency's own scale sets the band, which
keeps the number of segments small (7 per currency) so each one still sees enough traffic to learn.

=========  ==========================================
band       amount in major units
=========  ==========================================
``lt1``    below 1 (e.g. 0.50 USD, 0.5 CNY)
``1e0``    1 to 9.99...
``1e1``    10 to 99.99...
``1e2``    100 to 999.99...
``1e3``    1,000 to 9,999.99...
``1e4``    10,000 to 99,999.99...
``ge1e5``  100,000 and above
=========  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass

from paycore import money

TOP_DECADE = 5  # amounts of 10^5 major units and more share the top band
BANDS: tuple[str, ...] = ("lt1", *(f"1e{k}" for k in range(TOP_DECADE)), f"ge1e{TOP_DECADE}")


def amount_band(amount: int, currency: str) -> str:
    """The band of ``amount`` (minor units, > 0) in ``currency``; raises KeyError for an unknown currency."""
    if amount <= 0:
        raise ValueError("amount must be a positive number of minor units")
    major = amount // 10 ** money.exponent(currency)
    if major < 1:
        return BANDS[0]
    decade = len(str(major)) - 1  # integer log10, exact for any size
    return BANDS[min(decade, TOP_DECADE) + 1]


@dataclass(frozen=True)
class Segment:
    currency: str
    band: str

    @property
    def key(self) -> str:
        """The stored form, e.g. ``"CNY#1e2"`` (the router-state table's partition key suffix)."""
        return f"{self.currency}#{self.band}"

    @classmethod
    def of(cls, amount: int, currency: str) -> Segment:
        return cls(currency=currency, band=amount_band(amount, currency))

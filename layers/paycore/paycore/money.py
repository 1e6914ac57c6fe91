"""Money rules: integer minor units and ISO 4217 currencies.

The exponent (number of minor-unit digits) of each active ISO 4217 currency, from the ISO 4217
list maintained by SIX (list one, as of 2025). Funds codes, precious metals and testing codes
(X..) are left out: a payment is never made in them.
"""

from __future__ import annotations

from typing import Final

_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
_ZERO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_TWO_DECIMALS = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD "
    "CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD "
    "GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD "
    "MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP "
    "PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS "
    "TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD XCG YER ZAR ZMW ZWG"
)

CURRENCY_EXPONENTS: Final[dict[str, int]] = {
    **dict.fromkeys(_TWO_DECIMALS.split(), 2),
    **dict.fromkeys(_ZERO_DECIMALS.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
}

# The largest amount any order may carry, in minor units: well inside DynamoDB's number range and
# JavaScript's safe integers, so clients in any language read it exactly.
MAX_MINOR_UNITS: Final[int] = 10**15


def is_currency(code: str) -> bool:
    return code in CURRENCY_EXPONENTS


def exponent(code: str) -> int:
    """Minor-unit digits of ``code``; raises KeyError for an unknown currency."""
    return CURRENCY_EXPONENTS[code]


def format_minor(amount: int, currency: str) -> str:
    """Human text for an amount, e.g. ``format_minor(1050, "USD") == "10.50 USD"`` (exact, no floats)."""
    digits = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits) if digits else (abs(amount), 0)
    text = f"{whole}.{frac:0{digits}d}" if digits else str(whole)
    return f"{sign}{text} {currency}"

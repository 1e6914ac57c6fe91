import pytest

from paycore import money

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("code", "digits"), [("JPY", 0), ("CNY", 2), ("USD", 2), ("KWD", 3), ("EUR", 2)])
def test_exponent_of_contract_currencies(code: str, digits: int) -> None:
    assert money.exponent(code) == digits


@pytest.mark.parametrize("code", ["ABC", "usd", "XAU", "XTS", ""])
def test_non_currencies_are_refused(code: str) -> None:
    assert not money.is_currency(code)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1050, "USD", "10.50 USD"),
        (5, "CNY", "0.05 CNY"),
        (1000, "JPY", "1000 JPY"),
        (1234, "KWD", "1.234 KWD"),
        (-7, "USD", "-0.07 USD"),
    ],
)
def test_format_minor_is_exact(amount: int, currency: str, text: str) -> None:
    assert money.format_minor(amount, currency) == text

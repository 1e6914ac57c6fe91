import pytest

from paycore.channels import Channel, validate_money_query
from paycore.errors import InvalidRequest

pytestmark = pytest.mark.unit

SANDBOX = Channel.from_dict(
    {
        "id": "sandbox",
        "name": "Sandbox",
        "provider": "sandbox",
        "currencies": ["CNY", "USD"],
        "limits": {"CNY": {"min": 1, "max": 5000}, "USD": {"min": 50, "max": 100}},
        "methods": ["qr_code"],
    }
)


@pytest.mark.parametrize(
    ("amount", "currency", "accepted"),
    [
        (1000, "CNY", True),
        (5000, "CNY", True),
        (5001, "CNY", False),
        (49, "USD", False),
        (None, "USD", True),
        (1000, "EUR", False),
        (None, None, True),
    ],
)
def test_channel_accepts_its_currencies_within_limits(amount: int | None, currency: str | None, accepted: bool) -> None:
    assert SANDBOX.accepts(amount, currency) is accepted


def test_unknown_currency_is_a_422_with_its_own_code() -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_money_query(100, "ABC")
    assert info.value.status == 422
    assert info.value.code == "invalid_currency"


def test_amount_without_currency_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        validate_money_query(100, None)

"""GET /channels through the real handler, on moto with the template's tables and seed data."""

from __future__ import annotations

import pytest

from tests.conftest import AwsStack, load_handler
from tests.helpers import FakeContext, body, load_event

pytestmark = pytest.mark.integration


def _call(event: dict) -> dict:
    return load_handler("channels").lambda_handler(event, FakeContext())


def test_cny_1000_lists_the_sandbox_channel_as_recommended(seeded_channels: AwsStack) -> None:
    response = _call(load_event("channels", "list_cny_1000"))
    assert response["statusCode"] == 200
    data = body(response)
    ids = [c["id"] for c in data["channels"]]
    assert ids[0] == "sandbox"
    assert data["recommended"] == "sandbox"
    sandbox = data["channels"][0]
    assert sandbox["available"] is True
    assert "CNY" in sandbox["currencies"]
    assert sandbox["limits"]["CNY"] == {"min": 1, "max": 5000000}


def test_amount_below_a_channels_minimum_leaves_it_out(seeded_channels: AwsStack) -> None:
    event = load_event("channels", "list_cny_1000")
    event["queryStringParameters"] = {"amount": "50", "currency": "CNY"}
    event["multiValueQueryStringParameters"] = {"amount": ["50"], "currency": ["CNY"]}
    data = body(_call(event))
    assert [c["id"] for c in data["channels"]] == ["sandbox"]  # sandbox_slow starts at 100


def test_over_every_limit_lists_nothing_and_recommends_nothing(seeded_channels: AwsStack) -> None:
    data = body(_call(load_event("channels", "list_over_limit")))
    assert data == {"channels": [], "recommended": None}


def test_no_filter_lists_every_channel(seeded_channels: AwsStack) -> None:
    data = body(_call(load_event("channels", "list_all")))
    assert {c["id"] for c in data["channels"]} == {"sandbox", "sandbox_slow"}


def test_unknown_currency_is_422_in_the_contract_shape(seeded_channels: AwsStack) -> None:
    response = _call(load_event("channels", "list_unknown_currency"))
    assert response["statusCode"] == 422
    assert body(response) == {
        "error": {"code": "invalid_currency", "message": "currency 'ABC' is not an ISO 4217 currency code"}
    }


def test_negative_amount_is_422_validation_error(seeded_channels: AwsStack) -> None:
    response = _call(load_event("channels", "list_negative_amount"))
    assert response["statusCode"] == 422
    err = body(response)["error"]
    assert err["code"] == "validation_error"
    assert "amount" in err["message"]


def test_a_channel_switched_off_is_listed_unavailable_and_not_recommended(
    seeded_channels: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.data.channels import ChannelItem

    monkeypatch.setenv("CHANNELS_CACHE_SECONDS", "0")
    from paycore.config import reset_settings

    reset_settings()
    item = ChannelItem.get("CHANNEL", "sandbox")
    item.update(actions=[ChannelItem.available.set(False)])
    data = body(_call(load_event("channels", "list_cny_1000")))
    by_id = {c["id"]: c for c in data["channels"]}
    assert by_id["sandbox"]["available"] is False
    assert data["recommended"] == "sandbox_slow"


def test_unknown_route_is_404_in_the_contract_shape(seeded_channels: AwsStack) -> None:
    event = load_event("channels", "list_all")
    event["path"] = event["resource"] = "/nowhere"
    response = _call(event)
    assert response["statusCode"] == 404
    assert body(response)["error"]["code"] == "not_found"

"""GET /channels ranks channels by the router's score and recommends the top one."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from paycore import channels
from paycore.errors import InvalidRequest
from paycore.routing import service
from tests.conftest import AwsStack, load_handler
from tests.helpers import FakeContext, body, load_event

pytestmark = pytest.mark.integration


def _list(amount: str | None, currency: str | None) -> dict:
    event = load_event("channels", "list_cny_1000")
    query = {k: v for k, v in (("amount", amount), ("currency", currency)) if v is not None}
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    response = load_handler("channels").lambda_handler(event, FakeContext())
    assert response["statusCode"] == 200
    return body(response)


def _teach(channel_id: str, outcome: str, count: int, amount: int = 1000) -> None:
    now = time.time()
    for i in range(count):
        assert service.observe(
            order_id=f"{channel_id}-{outcome}-{i}",
            channel_id=channel_id,
            amount=amount,
            currency="CNY",
            outcome=outcome,
            at=now - 60 + i * 0.1,
        )


def test_without_history_the_priority_order_stands(seeded_channels: AwsStack) -> None:
    data = _list("1000", "CNY")
    assert [c["id"] for c in data["channels"]] == ["sandbox", "sandbox_slow"]
    assert data["recommended"] == "sandbox"
    assert [c["score"] for c in data["channels"]] == pytest.approx([0.5, 0.5], abs=1e-3)
    assert [c["success_rate"] for c in data["channels"]] == [0.5, 0.5]  # the uniform prior's mean


def test_the_channel_that_fails_drops_below_the_one_that_succeeds(seeded_channels: AwsStack) -> None:
    # Given sandbox failing and sandbox_slow succeeding for 10-yuan payments
    _teach("sandbox", "expired", 12)
    _teach("sandbox", "paid", 3)
    _teach("sandbox_slow", "paid", 20)
    # When a 10-yuan payment lists channels, Then sandbox_slow is first and recommended
    data = _list("1000", "CNY")
    ranked = data["channels"]
    assert [c["id"] for c in ranked] == ["sandbox_slow", "sandbox"]
    assert data["recommended"] == "sandbox_slow"
    assert ranked[0]["score"] > 0.9
    assert ranked[1]["score"] >= service.policy_config().epsilon / 2 - 1e-4  # the exploration floor
    assert ranked[0]["success_rate"] > 0.9 > 0.3 > ranked[1]["success_rate"]
    # another amount band has its own segment, still without history
    other = _list("100000", "CNY")  # 1,000 yuan
    assert other["recommended"] == "sandbox"
    assert [c["score"] for c in other["channels"]] == pytest.approx([0.5, 0.5], abs=1e-3)


def test_without_an_amount_nothing_is_scored(seeded_channels: AwsStack) -> None:
    data = _list(None, "CNY")
    assert data["recommended"] == "sandbox"
    assert all(c["score"] is None for c in data["channels"])


def test_an_unavailable_channel_is_listed_last_and_never_scored(seeded_channels: AwsStack) -> None:
    aws = seeded_channels
    aws.client("dynamodb").update_item(
        TableName=aws.name("ChannelsTable"),
        Key={"pk": {"S": "CHANNEL"}, "channel_id": {"S": "sandbox"}},
        UpdateExpression="SET available = :f",
        ExpressionAttributeValues={":f": {"BOOL": False}},
    )
    channels.reset_cache()
    data = _list("1000", "CNY")
    assert [c["id"] for c in data["channels"]] == ["sandbox_slow", "sandbox"]
    assert data["recommended"] == "sandbox_slow"
    assert data["channels"][0]["score"] == 1.0
    assert data["channels"][1]["score"] is None


def test_auto_routing_draws_from_the_scores(seeded_channels: AwsStack) -> None:
    # Given a clear winner, When 200 auto orders are routed, Then about 1 - epsilon/2 of them go to
    # it and the rest explore (the exploration floor), never an ineligible or unavailable channel
    _teach("sandbox", "failed", 10)
    _teach("sandbox_slow", "paid", 30)
    chosen = Counter(channels.route_auto(1000, "CNY", decision_id=f"o{i}").channel_id for i in range(200))
    assert set(chosen) <= {"sandbox", "sandbox_slow"}
    assert chosen["sandbox_slow"] >= 180
    with pytest.raises(InvalidRequest, match="No channel accepts") as info:
        channels.route_auto(10**12, "CNY", decision_id="too-big")
    assert info.value.code == "no_channel_available"

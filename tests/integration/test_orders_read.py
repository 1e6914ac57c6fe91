"""GET /orders and GET /orders/{order_id}: the caller's own orders only, cursor pages, status filter."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import AwsStack
from tests.helpers import body
from tests.orders_support import Orders

pytestmark = pytest.mark.integration


def test_get_returns_the_callers_order_with_its_refunds(seeded_channels: AwsStack, identity) -> None:
    client = Orders(identity.user())
    created = body(client.create())
    response = client.get(created["order_id"])
    assert response["statusCode"] == 200
    order = body(response)
    assert order["order_id"] == created["order_id"]
    assert order["refunds"] == []
    assert order["signature"] == created["signature"]


def test_someone_elses_order_is_404(seeded_channels: AwsStack, identity) -> None:
    created = body(Orders(identity.user("alice")).create())
    response = Orders(identity.user("mallory")).get(created["order_id"])
    assert response["statusCode"] == 404
    assert body(response)["error"]["code"] == "order_not_found"


def test_an_unknown_order_is_404(seeded_channels: AwsStack, identity) -> None:
    response = Orders(identity.user()).get("0b7f9c1e-2d4a-4f6b-8c3e-5a1d9e7f2b60")
    assert response["statusCode"] == 404


def test_list_pages_through_the_callers_orders_newest_first(seeded_channels: AwsStack, identity) -> None:
    alice = Orders(identity.user("alice"))
    ids = [body(alice.create(amount=100 + i))["order_id"] for i in range(5)]
    body(Orders(identity.user("bob")).create())

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = body(alice.list(**query))
        seen += [o["order_id"] for o in page["orders"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))
    assert pages >= 3
    amounts = [o["amount"] for o in body(alice.list(limit="5"))["orders"]]
    assert amounts == sorted(amounts, reverse=True)  # created later, larger: newest first


def test_status_filter(seeded_channels: AwsStack, identity) -> None:
    client = Orders(identity.user())
    keep = body(client.create())["order_id"]
    gone = body(client.create())["order_id"]
    assert client.cancel(gone)["statusCode"] == 200

    pending = body(client.list(status="pending"))["orders"]
    cancelled = body(client.list(status="cancelled"))["orders"]
    assert [o["order_id"] for o in pending] == [keep]
    assert [o["order_id"] for o in cancelled] == [gone]


@pytest.mark.parametrize("cursor", ["garbage!", base64.urlsafe_b64encode(b'{"k": "x", "s": null}').decode()])
def test_a_bad_cursor_is_422(seeded_channels: AwsStack, identity, cursor: str) -> None:
    response = Orders(identity.user()).list(cursor=cursor)
    assert response["statusCode"] == 422
    assert body(response)["error"]["code"] in ("invalid_cursor", "validation_error")


def test_a_cursor_cannot_reach_another_users_orders(seeded_channels: AwsStack, identity) -> None:
    """The cursor only says where to continue; the partition is always the caller's."""
    alice, bob = Orders(identity.user("alice")), Orders(identity.user("bob"))
    for _ in range(3):
        alice.create()
    cursor = body(alice.list(limit="1"))["next_cursor"]
    assert cursor
    page = body(bob.list(cursor=cursor))
    assert page["orders"] == []


def test_a_cursor_from_another_filter_is_refused(seeded_channels: AwsStack, identity) -> None:
    client = Orders(identity.user())
    for _ in range(3):
        client.create()
    cursor = body(client.list(limit="1"))["next_cursor"]
    decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert decoded["s"] is None
    response = client.list(cursor=cursor, status="pending")
    assert response["statusCode"] == 422


def test_unknown_status_and_bad_limit_are_422(seeded_channels: AwsStack, identity) -> None:
    client = Orders(identity.user())
    assert client.list(status="lost")["statusCode"] == 422
    assert client.list(limit="0")["statusCode"] == 422
    assert client.list(limit="101")["statusCode"] == 422

"""Tampered order requests through the handler: 401 invalid_signature and nothing written."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.conftest import AwsStack
from tests.helpers import body
from tests.orders_support import Orders, api_event, call, new_order, sign_event, table_items

pytestmark = pytest.mark.integration


def _census(stack: AwsStack) -> tuple[int, int]:
    return len(table_items(stack, "OrdersTable")), len(table_items(stack, "SandboxTable"))


def _refused(response: dict) -> None:
    assert response["statusCode"] == 401, body(response)
    assert body(response)["error"]["code"] == "invalid_signature"


def test_changed_amount_after_signing(seeded_channels: AwsStack, identity) -> None:
    user = identity.user()
    event = api_event("orders/create_order", user=user, body=new_order(amount=1000))
    sign_event(event, user)
    event["body"] = event["body"].replace('"amount": 1000', '"amount": 1')
    before = _census(seeded_channels)
    _refused(call("orders", event))
    assert _census(seeded_channels) == before


def test_changed_currency_after_signing(seeded_channels: AwsStack, identity) -> None:
    user = identity.user()
    event = api_event("orders/create_order", user=user, body=new_order(currency="CNY", amount=100))
    sign_event(event, user)
    event["body"] = json.dumps({**json.loads(event["body"]), "currency": "USD"})
    before = _census(seeded_channels)
    _refused(call("orders", event))
    assert _census(seeded_channels) == before


def test_a_signature_for_another_path(seeded_channels: AwsStack, identity) -> None:
    user = identity.user()
    client = Orders(user)
    first = body(client.create())
    other = body(client.create())
    event = api_event("orders/cancel_order", user=user, path_params={"order_id": first["order_id"]}, body="")
    sign_event(event, user)
    # the same signed request, sent to the other order
    event["path"] = f"/orders/{other['order_id']}/cancel"
    event["pathParameters"] = {"order_id": other["order_id"]}
    _refused(call("orders", event))
    assert body(client.get(other["order_id"]))["status"] == "pending"


def test_a_replayed_nonce(seeded_channels: AwsStack, identity) -> None:
    user = identity.user()
    event = api_event("orders/create_order", user=user, body=new_order())
    sign_event(event, user)
    assert call("orders", event)["statusCode"] == 201
    replay = dict(event, body=json.dumps(new_order()))  # same header, another order...
    _refused(call("orders", replay))
    _refused(call("orders", event))  # ...or exactly the same request


def test_an_old_timestamp(seeded_channels: AwsStack, identity) -> None:
    user = identity.user()
    event = api_event("orders/create_order", user=user, body=new_order())
    sign_event(event, user, now=time.time() - 301)
    before = _census(seeded_channels)
    _refused(call("orders", event))
    assert _census(seeded_channels) == before


def test_a_signature_from_another_session(seeded_channels: AwsStack, identity) -> None:
    alice, mallory = identity.user("alice"), identity.user("mallory")
    event = api_event("orders/create_order", user=alice, body=new_order())
    sign_event(event, mallory)
    _refused(call("orders", event))


def test_a_missing_signature_on_refund_and_cancel(seeded_channels: AwsStack, identity) -> None:
    user = identity.user()
    order_id = str(uuid.uuid4())
    for case, extra in (("orders/cancel_order", {"body": ""}), ("orders/create_refund", {})):
        event = api_event(case, user=user, path_params={"order_id": order_id}, **extra)
        _refused(call("orders", event))

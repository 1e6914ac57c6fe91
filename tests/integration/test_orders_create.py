"""POST /orders through the real handler on moto: validation, signature, idempotency, provider payment."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from paycore.orders.signing import canonical_from_response
from tests.conftest import AwsStack
from tests.helpers import FakeContext, body
from tests.orders_support import (
    Orders,
    api_event,
    call,
    concurrently,
    new_order,
    sign_event,
    table_items,
)

pytestmark = pytest.mark.integration


def _orders(stack: AwsStack) -> list[dict]:
    return [i for i in table_items(stack, "OrdersTable") if i["sk"]["S"] == "ORDER"]


def _parse(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def test_create_returns_a_pending_order_with_the_sandbox_payment_and_a_verifiable_signature(
    seeded_channels: AwsStack, identity
) -> None:
    user = identity.user()
    response = Orders(user).create(amount=1234, currency="CNY", items=[{"name": "Beans", "quantity": 2}])

    assert response["statusCode"] == 201
    order = body(response)
    assert order["status"] == "pending"
    assert (order["amount"], order["currency"], order["channel"]) == (1234, "CNY", "sandbox")
    checkout = order["payment"]["checkout_url"]
    assert checkout.startswith("http://127.0.0.1:3000/sandbox/checkout/pay_")
    assert order["payment"]["qr_code"] == checkout
    assert order["items"] == [{"name": "Beans", "quantity": 2, "unit_amount": None}]
    # default expiry: 900 s after creation
    assert _parse(order["expires_at"]) - _parse(order["created_at"]) == 900
    identity.verify_detached(order["signature"], canonical_from_response(order))

    # the sandbox provider holds the payment in its own table
    payment_id = checkout.rsplit("/", 1)[-1]
    sandbox = table_items(seeded_channels, "SandboxTable")
    assert any(i["pk"]["S"] == f"PAY#{payment_id}" and i["status"]["S"] == "pending" for i in sandbox)


def test_the_same_request_again_replays_the_first_response(seeded_channels: AwsStack, identity) -> None:
    client = Orders(identity.user())
    fields = new_order(amount=500)
    first = call("orders", client.create_event(fields))
    second = call("orders", client.create_event(fields))  # re-signed: a new nonce, same body

    assert first["statusCode"] == second["statusCode"] == 201
    assert body(first) == body(second)
    assert len(_orders(seeded_channels)) == 1


def test_the_same_order_id_with_another_body_is_422_idempotency_mismatch(seeded_channels: AwsStack, identity) -> None:
    client = Orders(identity.user())
    fields = new_order(amount=500)
    assert call("orders", client.create_event(fields))["statusCode"] == 201

    response = call("orders", client.create_event({**fields, "amount": 501}))

    assert response["statusCode"] == 422
    assert body(response)["error"]["code"] == "idempotency_mismatch"
    assert len(_orders(seeded_channels)) == 1


def test_ten_concurrent_identical_creates_make_one_order_and_no_500(seeded_channels: AwsStack, identity) -> None:
    """Ten signed requests at once, each through the signature check and the create the handler
    runs: one order; the others replay it or answer 409 request_in_progress with Retry-After."""
    from paycore.api import Caller
    from paycore.errors import PaymentError
    from paycore.orders import auth, service
    from paycore.schemas.orders import CreateOrderIn

    user = identity.user()
    client = Orders(user)
    fields = new_order(amount=700)
    events = [client.create_event(fields) for _ in range(10)]  # ten signatures, ten nonces
    caller = Caller(user.user_id, user.session_id, user.key_version)

    def create(event: dict):
        def run() -> dict:
            auth.verify_request(caller, event["headers"], "POST", "/orders", event["body"].encode(), time.time())
            return service.create_order(
                user.user_id, CreateOrderIn(**fields), base_url="http://127.0.0.1:3000", lambda_context=FakeContext()
            )

        return run

    results = concurrently([create(e) for e in events])

    errors = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(e, PaymentError) for e in errors), errors
    assert {(e.status, e.code) for e in errors} <= {(409, "request_in_progress")}
    assert all(int(e.headers["Retry-After"]) >= 1 for e in errors)
    created = [r for r in results if isinstance(r, dict)]
    assert created
    assert len({r["payment"]["checkout_url"] for r in created}) == 1
    assert len(_orders(seeded_channels)) == 1
    sandbox_payments = [i for i in table_items(seeded_channels, "SandboxTable") if i["pk"]["S"].startswith("PAY#")]
    assert len(sandbox_payments) == 1
    # and a late duplicate through the handler replays the order
    again = call("orders", client.create_event(fields))
    assert again["statusCode"] == 201
    assert body(again)["payment"] == created[0]["payment"]


def test_a_retry_after_a_lost_idempotency_record_returns_the_order_already_written(
    seeded_channels: AwsStack, identity
) -> None:
    """What a Lambda timeout leaves: the order was written, the idempotency record never completed
    (Powertools lets the retry run again once the in-progress record's deadline passed)."""
    client = Orders(identity.user())
    fields = new_order(amount=800)
    first = body(call("orders", client.create_event(fields)))
    ddb = seeded_channels.client("dynamodb")
    table = seeded_channels.name("IdempotencyTable")
    for item in table_items(seeded_channels, "IdempotencyTable"):
        ddb.delete_item(TableName=table, Key={"id": item["id"]})

    again = call("orders", client.create_event(fields))

    assert again["statusCode"] == 201
    assert body(again) == first
    history = [i for i in table_items(seeded_channels, "OrdersTable") if i["sk"]["S"].startswith("HIST#")]
    assert len(history) == 1


def test_someone_elses_order_id_is_409_and_leaks_nothing(seeded_channels: AwsStack, identity) -> None:
    fields = new_order()
    assert call("orders", Orders(identity.user("alice")).create_event(fields))["statusCode"] == 201

    response = call("orders", Orders(identity.user("mallory")).create_event(fields))

    assert response["statusCode"] == 409
    assert body(response)["error"]["code"] == "order_exists"
    assert "payment" not in body(response)


def test_auto_channel_takes_the_recommended_one(seeded_channels: AwsStack, identity) -> None:
    response = Orders(identity.user()).create(channel="auto", amount=50, currency="CNY")
    assert response["statusCode"] == 201
    assert body(response)["channel"] == "sandbox"  # sandbox_slow starts at 100


def test_expires_in_sets_the_expiry(seeded_channels: AwsStack, identity) -> None:
    before = time.time()
    order = body(Orders(identity.user()).create(expires_in=60))
    assert before + 59 <= _parse(order["expires_at"]) <= time.time() + 61
    assert order["payment"]["expires_at"] == order["expires_at"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"amount": 0}, "validation_error"),
        ({"amount": -5}, "validation_error"),
        ({"amount": 10.5}, "validation_error"),
        ({"amount": "1000"}, "validation_error"),
        ({"currency": "cny"}, "validation_error"),
        ({"currency": "XYZ"}, "invalid_currency"),
        ({"currency": "GBP"}, "unsupported_currency"),
        ({"amount": 5_000_001}, "amount_out_of_range"),
        ({"currency": "USD", "amount": 49}, "amount_out_of_range"),
        ({"channel": "nope"}, "unknown_channel"),
        ({"order_id": "not-a-uuid"}, "validation_error"),
        ({"expires_in": 59}, "validation_error"),
        ({"expires_in": 86_401}, "validation_error"),
        ({"subject": ""}, "validation_error"),
        ({"surprise": 1}, "validation_error"),
    ],
)
def test_bad_input_is_422_and_writes_no_order(seeded_channels: AwsStack, identity, fields: dict, code: str) -> None:
    response = Orders(identity.user()).create(**fields)
    assert response["statusCode"] == 422, body(response)
    assert body(response)["error"]["code"] == code
    assert _orders(seeded_channels) == []


def test_no_channel_for_the_amount_is_422(seeded_channels: AwsStack, identity) -> None:
    response = Orders(identity.user()).create(channel="auto", amount=9_999_999, currency="CNY")
    assert response["statusCode"] == 422
    assert body(response)["error"]["code"] == "no_channel_available"


def test_without_an_authorizer_context_it_is_401(seeded_channels: AwsStack, identity) -> None:
    event = api_event("orders/create_order", user=None, body=new_order())
    response = call("orders", event)
    assert response["statusCode"] == 401


def test_an_ended_session_is_refused(seeded_channels: AwsStack, identity) -> None:
    """After logout the next call is refused: API Gateway runs the authorizer on every call
    (ReauthorizeEvery 0), which reads the session and denies it, so the orders function never
    runs. A context without the key version (an authorizer that did not pass it) makes the orders
    function read the session itself, and it refuses the call too."""
    from tests.identity_support import authorize, effect

    user = identity.user()
    event = api_event("orders/create_order", user=user, body=new_order())
    sign_event(event, user)
    identity.log_out(user)
    assert effect(authorize(user.access_token)) == "Deny"
    del event["requestContext"]["authorizer"]["key_version"]
    response = call("orders", event)
    assert response["statusCode"] == 401
    assert body(response)["error"]["code"] == "session_inactive"
    assert _orders(seeded_channels) == []


def test_the_key_version_in_the_context_is_the_one_the_signature_is_checked_with(
    seeded_channels: AwsStack, identity
) -> None:
    user = identity.user()
    event = api_event("orders/create_order", user=user, body=new_order())
    sign_event(event, user)
    event["requestContext"]["authorizer"]["key_version"] = "v0"  # no such version in the secret
    response = call("orders", event)
    assert response["statusCode"] == 401
    assert _orders(seeded_channels) == []


def test_order_ids_are_normalised_to_lower_case(seeded_channels: AwsStack, identity) -> None:
    order_id = str(uuid.uuid4()).upper()
    order = body(Orders(identity.user()).create(order_id=order_id))
    assert order["order_id"] == order_id.lower()

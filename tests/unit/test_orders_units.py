"""Pure pieces of orders and the sandbox: webhook signatures, retry schedule, counters, states, cursors."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from paycore.config import DEFAULT_WEBHOOK_RETRY_SCHEDULE
from paycore.errors import InvalidRequest
from paycore.orders.states import OrderStatus, can_move, status_after_refund
from paycore.providers.base import InvalidCallback
from paycore.sandbox import webhooks

pytestmark = pytest.mark.unit

SECRET = b"whsec_test"
BODY = b'{"id":"evt_1","type":"payment.succeeded"}'
NOW = 1_795_635_000


def test_sandbox_signature_is_stripes_scheme() -> None:
    header = webhooks.sign(SECRET, NOW, BODY)
    expected = hmac.new(SECRET, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    webhooks.verify(SECRET, header, BODY, NOW + 300)


def test_any_of_several_v1_values_may_match() -> None:
    good = webhooks.sign(SECRET, NOW, BODY).split(",")[1]
    webhooks.verify(SECRET, f"t={NOW},v1={'0' * 64},{good}", BODY, NOW)


@pytest.mark.parametrize(
    "header",
    [None, "", "t=1", "v1=ab", f"t={NOW},t={NOW},v1=00", "t=x,v1=00", "garbage", f"t={NOW},v1={'0' * 64}"],
)
def test_bad_sandbox_signatures(header: str | None) -> None:
    with pytest.raises(InvalidCallback):
        webhooks.verify(SECRET, header, BODY, NOW)


@pytest.mark.parametrize("now", [NOW - 301, NOW + 301])
def test_sandbox_signature_tolerance(now: int) -> None:
    with pytest.raises(InvalidCallback):
        webhooks.verify(SECRET, webhooks.sign(SECRET, NOW, BODY), BODY, now)


def test_default_retry_schedule_spans_about_three_days() -> None:
    total = sum(DEFAULT_WEBHOOK_RETRY_SCHEDULE)
    assert 2.5 * 86_400 < total <= 3 * 86_400
    assert list(DEFAULT_WEBHOOK_RETRY_SCHEDULE) == sorted(DEFAULT_WEBHOOK_RETRY_SCHEDULE)
    assert webhooks.next_delay(1, DEFAULT_WEBHOOK_RETRY_SCHEDULE) == 60
    assert webhooks.next_delay(len(DEFAULT_WEBHOOK_RETRY_SCHEDULE) + 1, DEFAULT_WEBHOOK_RETRY_SCHEDULE) is None


def test_job_messages_round_trip() -> None:
    job = webhooks.Job("pay_1", "evt_1", 3, NOW)
    assert webhooks.Job.from_message(job.to_message()) == job


def test_counters_are_per_utc_quarter_hour_channel_and_currency() -> None:
    from paycore.data.orders import counter_key

    at = datetime(2026, 11, 25, 23, 59, 59, tzinfo=UTC).timestamp()
    assert counter_key(at, "sandbox", "CNY") == ("STATS#2026-11-25", "2345#sandbox#CNY")
    assert counter_key(at + 1, "sandbox", "CNY") == ("STATS#2026-11-26", "0000#sandbox#CNY")


def test_the_state_machine() -> None:
    assert can_move("pending", "paid")
    assert can_move("paid", "partially_refunded")
    assert can_move("partially_refunded", "refunded")
    assert not can_move("paid", "pending")
    assert not can_move("expired", "paid")
    assert not can_move("refunded", "partially_refunded")
    assert status_after_refund(1000, 400) == OrderStatus.PARTIALLY_REFUNDED
    assert status_after_refund(1000, 1000) == OrderStatus.REFUNDED


def test_cursors_round_trip_and_reject_tampering() -> None:
    from paycore.orders.service import decode_cursor, encode_cursor

    key = "1795635000123#0b7f9c1e-2d4a-4f6b-8c3e-5a1d9e7f2b60"
    assert decode_cursor(encode_cursor(key, "paid"), "paid") == key
    with pytest.raises(InvalidRequest):
        decode_cursor(encode_cursor(key, "paid"), None)
    with pytest.raises(InvalidRequest):
        decode_cursor(encode_cursor("USER#someone-else", None), None)
    with pytest.raises(InvalidRequest):
        decode_cursor("%%%", None)


def test_route_path_fills_in_the_declared_route() -> None:
    from paycore.orders.auth import route_path

    event = {"resource": "/orders/{order_id}/refunds", "pathParameters": {"order_id": "abc"}, "path": "/x"}
    assert route_path(event) == "/orders/abc/refunds"


def test_order_canonical_form_is_sorted_compact_json() -> None:
    from types import SimpleNamespace

    from paycore.orders.signing import canonical_from_response, canonical_order

    item = SimpleNamespace(
        amount=1000,
        channel="sandbox",
        created_at=NOW,
        currency="CNY",
        expires_at=NOW + 900,
        order_id="0b7f9c1e-2d4a-4f6b-8c3e-5a1d9e7f2b60",
        subject="Coffee",
    )
    canonical = canonical_order(item)
    assert canonical == (
        b'{"amount":1000,"channel":"sandbox","created_at":"2026-11-25T19:30:00Z","currency":"CNY",'
        b'"expires_at":"2026-11-25T19:45:00Z","order_id":"0b7f9c1e-2d4a-4f6b-8c3e-5a1d9e7f2b60","subject":"Coffee"}'
    )
    response = {
        "amount": 1000,
        "channel": "sandbox",
        "created_at": "2026-11-25T19:30:00Z",
        "currency": "CNY",
        "expires_at": "2026-11-25T19:45:00Z",
        "order_id": "0b7f9c1e-2d4a-4f6b-8c3e-5a1d9e7f2b60",
        "subject": "Coffee",
        "status": "paid",
    }
    assert canonical_from_response(response) == canonical


@pytest.mark.parametrize(
    ("provider", "event_id"),
    [
        ("wechatpay", "4200002345202611250123456789:paid"),  # <transaction_id>:paid
        ("alipay", "2026112522001412345678901234:paid"),  # <trade_no>:paid
        ("stripe", "evt_3QdAbCdEfGhIjKlMnOpQrStU"),
        ("sandbox", "sweep:5b0f6c9e-8a51-4f6e-9a43-0c2b1d7e6f10"),  # what the sweeper applies
    ],
)
def test_a_late_payment_refund_id_is_stable_and_every_provider_can_key_on_it(provider: str, event_id: str) -> None:
    from paycore.orders.callbacks import late_refund_id
    from paycore.providers.common import merchant_ref, our_id

    refund_id = late_refund_id(provider, event_id)
    assert refund_id == late_refund_id(provider, event_id)  # a redelivery finds the same refund
    assert refund_id != late_refund_id("other", event_id)
    ref = merchant_ref(refund_id)  # Alipay's out_request_no, WeChat Pay's out_refund_no (6 to 32)
    assert 6 <= len(ref) <= 32
    assert our_id(ref) == refund_id

"""POST /callbacks/{provider}: verified, deduplicated, one conditional transaction per event."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from paycore.sandbox.webhooks import sign
from tests.conftest import AwsStack
from tests.helpers import body
from tests.orders_support import (
    Orders,
    call,
    callback_event,
    capture_domain_events,
    capture_ops_alerts,
    concurrently,
    deliver_callback,
    queued_jobs,
    sandbox_event,
    table_items,
    webhook_secret,
)

pytestmark = pytest.mark.integration


def _history(stack: AwsStack, order_id: str, kind: str | None = None) -> list[dict]:
    return [
        i
        for i in table_items(stack, "OrdersTable")
        if i["pk"]["S"] == f"ORDER#{order_id}"
        and i["sk"]["S"].startswith("HIST#")
        and (kind is None or i["kind"]["S"] == kind)
    ]


@pytest.fixture
def order(seeded_channels: AwsStack, identity) -> tuple[Orders, dict]:
    client = Orders(identity.user())
    return client, body(client.create(amount=1000, currency="CNY"))


def test_a_signed_payment_marks_the_order_paid_once_and_publishes_order_paid(
    seeded_channels: AwsStack, order: tuple[Orders, dict]
) -> None:
    client, created = order
    events = capture_domain_events(seeded_channels)
    raw = sandbox_event(created)

    response = deliver_callback(seeded_channels, raw)

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"received": True}
    paid = body(client.get(created["order_id"]))
    assert paid["status"] == "paid"
    assert paid["paid_at"] is not None
    assert len(_history(seeded_channels, created["order_id"], "paid")) == 1
    published = events.read()
    assert [e["detail-type"] for e in published] == ["order.paid"]
    assert published[0]["detail"]["order_id"] == created["order_id"]
    assert published[0]["detail"]["amount"] == 1000

    # the same event again: 200, nothing changes, nothing published
    assert deliver_callback(seeded_channels, raw)["statusCode"] == 200
    assert len(_history(seeded_channels, created["order_id"])) == 2  # created + paid
    assert events.read() == []


def test_twenty_concurrent_deliveries_of_one_event_make_one_transition(
    seeded_channels: AwsStack, order: tuple[Orders, dict]
) -> None:
    from paycore.orders.callbacks import handle_callback

    client, created = order
    raw = sandbox_event(created)
    secret = webhook_secret(seeded_channels)
    headers = {"Sandbox-Signature": sign(secret, int(time.time()), raw)}

    results = concurrently([lambda: handle_callback("sandbox", headers, raw, time.time()) for _ in range(20)])

    assert all(getattr(r, "status_code", None) == 200 for r in results), results
    assert body(client.get(created["order_id"]))["status"] == "paid"
    assert len(_history(seeded_channels, created["order_id"], "paid")) == 1
    markers = [i for i in table_items(seeded_channels, "OrdersTable") if i["pk"]["S"].startswith("EVENT#sandbox#")]
    assert len(markers) == 1
    counters = [i for i in table_items(seeded_channels, "OrdersTable") if i["pk"]["S"].startswith("STATS#")]
    assert sum(int(c.get("paid_count", {"N": "0"})["N"]) for c in counters) == 1


def _matrix(stack: AwsStack, created: dict) -> list[tuple[str, Callable[[], dict]]]:
    """Each case builds its event when sent, so the clock cases are 310 s off at the moment of sending."""
    raw = sandbox_event(created)
    secret = webhook_secret(stack)
    flipped = bytearray(raw)
    flipped[raw.index(b'"amount": ') + 10] ^= 0x01  # one changed byte: 1000 -> 0000

    def now() -> int:
        return int(time.time())

    return [
        ("wrong secret", lambda: callback_event(raw, sign(b"not-the-secret", now(), raw))),
        ("one changed body byte", lambda: callback_event(bytes(flipped), sign(secret, now(), raw))),
        ("missing header", lambda: callback_event(raw, None)),
        ("garbled header", lambda: callback_event(raw, "t=abc;v1")),
        ("no v1", lambda: callback_event(raw, f"t={now()}")),
        ("stale timestamp", lambda: callback_event(raw, sign(secret, now() - 310, raw))),
        ("future timestamp", lambda: callback_event(raw, sign(secret, now() + 310, raw))),
        ("unknown provider", lambda: callback_event(raw, sign(secret, now(), raw), provider="paypal")),
        ("bad provider name", lambda: callback_event(raw, sign(secret, now(), raw), provider="../etc")),
    ]


def test_webhook_authentication_matrix_is_4xx_and_writes_nothing(
    seeded_channels: AwsStack, order: tuple[Orders, dict]
) -> None:
    client, created = order
    for name, build in _matrix(seeded_channels, created):
        before = (table_items(seeded_channels, "OrdersTable"), table_items(seeded_channels, "SandboxTable"))
        response = call("callbacks", build())
        assert 400 <= response["statusCode"] < 500, (name, response)
        assert "error" in json.loads(response["body"]), name
        after = (table_items(seeded_channels, "OrdersTable"), table_items(seeded_channels, "SandboxTable"))
        assert after == before, name
    assert body(client.get(created["order_id"]))["status"] == "pending"
    # and the genuine event still goes through afterwards
    assert deliver_callback(seeded_channels, sandbox_event(created))["statusCode"] == 200


def test_a_verified_event_with_another_amount_never_marks_paid_and_alerts_ops(
    seeded_channels: AwsStack, order: tuple[Orders, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    client, created = order
    alerts = capture_ops_alerts(seeded_channels)
    raw = sandbox_event({**created, "amount": 1})

    response = deliver_callback(seeded_channels, raw)

    assert response["statusCode"] == 200  # verified and recorded: the provider must stop retrying
    assert body(client.get(created["order_id"]))["status"] == "pending"
    anomaly = _history(seeded_channels, created["order_id"], "anomaly")
    assert len(anomaly) == 1
    assert anomaly[0]["detail"]["S"] == "amount_mismatch"
    messages = alerts.read()
    assert len(messages) == 1
    assert "amount_mismatch" in messages[0]["Message"]
    assert json.loads(messages[0]["Message"])["order_id"] == created["order_id"]
    out = capsys.readouterr().out  # the EMF metric, by channel too
    assert '"Anomalies"' in out
    assert '"channel":"sandbox"' in out


def test_another_currency_is_an_anomaly_too(seeded_channels: AwsStack, order: tuple[Orders, dict]) -> None:
    client, created = order
    deliver_callback(seeded_channels, sandbox_event({**created, "currency": "USD"}))
    assert body(client.get(created["order_id"]))["status"] == "pending"
    assert _history(seeded_channels, created["order_id"], "anomaly")[0]["detail"]["S"] == "currency_mismatch"


def test_an_event_for_an_unknown_order_is_recorded_and_alerted(seeded_channels: AwsStack, identity) -> None:
    alerts = capture_ops_alerts(seeded_channels)
    ghost = {
        "order_id": "0b7f9c1e-2d4a-4f6b-8c3e-5a1d9e7f2b60",
        "amount": 100,
        "currency": "CNY",
        "payment": {"checkout_url": "http://x/sandbox/checkout/pay_x"},
    }
    assert deliver_callback(seeded_channels, sandbox_event(ghost))["statusCode"] == 200
    anomalies = [i for i in table_items(seeded_channels, "OrdersTable") if i["pk"]["S"] == "ANOMALY#sandbox"]
    assert len(anomalies) == 1
    assert anomalies[0]["reason"]["S"] == "unknown_order"
    assert len(alerts.read()) == 1


def test_a_failed_payment_fails_the_order_and_a_late_success_is_refunded(
    seeded_channels: AwsStack, order: tuple[Orders, dict]
) -> None:
    client, created = order
    events = capture_domain_events(seeded_channels)
    queued_jobs(seeded_channels)

    deliver_callback(seeded_channels, sandbox_event(created, "payment.failed"))
    assert body(client.get(created["order_id"]))["status"] == "failed"

    # the payer pays anyway (the sandbox lets the payment through; a real provider may too)
    _pay_at_sandbox(seeded_channels, created)
    deliver_callback(seeded_channels, sandbox_event(created))

    order_now = body(client.get(created["order_id"]))
    assert order_now["status"] == "failed"
    [refund] = order_now["refunds"]
    assert refund["automatic"] is True
    assert refund["amount"] == 1000
    assert refund["status"] == "pending"
    assert [e["detail-type"] for e in events.read()] == ["order.failed", "order.late_payment"]
    # the sandbox refunded it and queued its refund.succeeded webhook
    jobs = queued_jobs(seeded_channels)
    assert len(jobs) == 1


def test_a_late_payment_of_another_amount_is_refunded_as_a_payment_of_that_amount(
    seeded_channels: AwsStack, order: tuple[Orders, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refund call names the payment's total (WeChat Pay refuses a refund whose amount.total is
    not the payment's): for a late payment of 7.00 on an order of 10.00, that is 7.00."""
    from paycore.orders import callbacks
    from paycore.providers import get_provider
    from paycore.providers.base import ProviderError

    client, created = order
    deliver_callback(seeded_channels, sandbox_event(created, "payment.failed"))
    refund_calls: list[tuple[int, int]] = []

    class RecordingProvider:  # the sandbox adapter, but its refunds are recorded and not made
        def __getattr__(self, name: str) -> object:
            return getattr(get_provider("sandbox"), name)

        def refund(self, order_id, provider_payment_id, refund_id, amount, currency, total):
            refund_calls.append((amount, total))
            raise ProviderError("not reachable", provider="sandbox")  # the refund stays pending

    monkeypatch.setattr(callbacks, "get_provider", lambda name: RecordingProvider())

    assert deliver_callback(seeded_channels, sandbox_event(created, amount=700))["statusCode"] == 200

    [refund] = body(client.get(created["order_id"]))["refunds"]
    assert (refund["automatic"], refund["amount"], refund["status"]) == (True, 700, "pending")
    assert refund_calls == [(700, 700)]  # the late payment's total, not the order's 1000


def test_a_late_payment_reads_the_order_once_and_refunds_from_what_its_commit_wrote(
    seeded_channels: AwsStack, order: tuple[Orders, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.data import orders as store

    client, created = order
    deliver_callback(seeded_channels, sandbox_event(created, "payment.failed"))
    _pay_at_sandbox(seeded_channels, created)
    reads: list[str] = []
    real_get_order = store.get_order

    def counted_get_order(order_id: str, *args, **kwargs):
        reads.append(order_id)
        return real_get_order(order_id, *args, **kwargs)

    monkeypatch.setattr(store, "get_order", counted_get_order)

    deliver_callback(seeded_channels, sandbox_event(created))

    assert reads == [created["order_id"]]  # before the transaction; none after its commit
    [refund] = body(client.get(created["order_id"]))["refunds"]
    assert (refund["automatic"], refund["amount"]) == (True, 1000)
    assert refund["status"] == "pending"  # submitted: the sandbox confirms it by webhook


def _pay_at_sandbox(stack: AwsStack, created: dict) -> None:
    """Mark the sandbox payment paid directly (as if the provider took the money)."""
    payment_id = created["payment"]["checkout_url"].rsplit("/", 1)[-1]
    stack.client("dynamodb").update_item(
        TableName=stack.name("SandboxTable"),
        Key={"pk": {"S": f"PAY#{payment_id}"}, "sk": {"S": "PAYMENT"}},
        UpdateExpression="SET #s = :paid, refundable = :amount",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":paid": {"S": "paid"}, ":amount": {"N": str(created["amount"])}},
    )


@pytest.mark.parametrize("close", ["cancelled", "expired"])
def test_a_payment_on_a_closed_order_is_recorded_and_refunded_automatically(
    seeded_channels: AwsStack, order: tuple[Orders, dict], close: str
) -> None:
    client, created = order
    if close == "cancelled":
        assert client.cancel(created["order_id"])["statusCode"] == 200
    else:
        from paycore.data import orders as store

        item = store.get_order(created["order_id"])
        assert item is not None
        item.update(actions=[store.OrderItem.status.set("expired")])
    _pay_at_sandbox(seeded_channels, created)
    queued_jobs(seeded_channels)

    deliver_callback(seeded_channels, sandbox_event(created))

    order_now = body(client.get(created["order_id"]))
    assert order_now["status"] == close
    assert [r["automatic"] for r in order_now["refunds"]] == [True]
    assert len(_history(seeded_channels, created["order_id"], "late_payment")) == 1
    # the refund completes with the sandbox's refund.succeeded webhook
    [job] = queued_jobs(seeded_channels)
    from paycore.data import sandbox as sandbox_store

    event = sandbox_store.get_event(job["payment_id"], job["event_id"])
    assert event is not None
    assert deliver_callback(seeded_channels, event.body.encode())["statusCode"] == 200
    order_now = body(client.get(created["order_id"]))
    assert order_now["status"] == close
    assert order_now["refunds"][0]["status"] == "succeeded"
    assert order_now["refunded_amount"] == 0  # the order itself was never paid


def test_a_stale_failure_after_payment_changes_nothing(seeded_channels: AwsStack, order: tuple[Orders, dict]) -> None:
    client, created = order
    deliver_callback(seeded_channels, sandbox_event(created))
    deliver_callback(seeded_channels, sandbox_event(created, "payment.failed"))
    assert body(client.get(created["order_id"]))["status"] == "paid"

"""The sandbox provider: checkout page, behaviour knobs, and webhook delivery with retries.

Delivery posts over real HTTP to a server on 127.0.0.1 that hands each request to the callbacks
handler in-process (the local stack's job, done here in miniature), so the whole path runs:
Pay → event → SQS job → signed POST → verified callback → order paid.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import AwsStack
from tests.helpers import body, load_event
from tests.orders_support import Orders, api_event, call, queued_jobs

pytestmark = pytest.mark.integration


def _payment_id(order: dict) -> str:
    return order["payment"]["checkout_url"].rsplit("/", 1)[-1]


def _checkout(payment_id: str, action: str | None = None, accept: str = "text/html") -> dict:
    case = "checkout_pay" if action else "checkout_show"
    event = api_event(f"sandbox/{case}", user=None, path_params={"payment_id": payment_id}, headers={"Accept": accept})
    if action:
        event["body"] = f"action={action}"
    return call("sandbox", event)


class _CallbackServer:
    """HTTP on 127.0.0.1: answers each POST with the callbacks handler, or with a forced status."""

    def __init__(self) -> None:
        self.forced: list[int] = []  # statuses to answer instead, first to last
        self.received: list[tuple[str, bytes, dict[str, str]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers.items())
                outer.received.append((self.path, raw, headers))
                if outer.forced:
                    status, payload = outer.forced.pop(0), b"{}"
                else:
                    event = load_event("callbacks", "sandbox_payment_succeeded")
                    event["headers"] = headers
                    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
                    event["body"] = raw.decode()
                    answer = call("callbacks", event)
                    status, payload = answer["statusCode"], answer["body"].encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callbacks_server(seeded_channels: AwsStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[_CallbackServer]:
    server = _CallbackServer()
    monkeypatch.setenv("SANDBOX_CALLBACK_BASE_URL", server.url)
    monkeypatch.setenv("SANDBOX_WEBHOOK_RETRY_SCHEDULE", "60,300,900,3600")
    from paycore.config import reset_settings

    reset_settings()
    yield server
    server.close()


def _sqs_event(jobs: list[dict]) -> dict:
    template = load_event("sandbox_webhooks", "delivery")["Records"][0]
    records = []
    for i, job in enumerate(jobs):
        record = dict(template, messageId=f"m-{i}")
        record["body"] = json.dumps({k: job[k] for k in ("payment_id", "event_id", "attempt", "not_before")})
        records.append(record)
    return {"Records": records}


def _run_webhooks(jobs: list[dict]) -> dict:
    return call("sandbox_webhooks", _sqs_event(jobs))


@pytest.fixture
def order(seeded_channels: AwsStack, identity) -> tuple[Orders, dict]:
    client = Orders(identity.user())
    return client, body(client.create(amount=1050, currency="USD", subject="Tea <b>&</b> cups"))


def test_the_checkout_page_shows_the_payment_with_pay_and_decline(order: tuple[Orders, dict]) -> None:
    _, created = order
    page = _checkout(_payment_id(created))
    assert page["statusCode"] == 200
    html = page["body"]
    assert "10.50 USD" in html
    assert "Tea &lt;b&gt;&amp;&lt;/b&gt; cups" in html  # escaped
    assert 'id="pay"' in html
    assert 'id="decline"' in html


def test_an_unknown_payment_is_404(seeded_channels: AwsStack) -> None:
    assert _checkout("pay_" + "0" * 24)["statusCode"] == 404
    assert _checkout("pay_not-hex")["statusCode"] == 422


def test_pay_through_checkout_then_webhook_delivery_marks_the_order_paid(
    order: tuple[Orders, dict], callbacks_server: _CallbackServer, seeded_channels: AwsStack
) -> None:
    client, created = order
    answer = _checkout(_payment_id(created), "pay", accept="application/json")
    assert json.loads(answer["body"])["result"] == "paid"
    jobs = queued_jobs(seeded_channels)
    assert [(j["attempt"], j["delay"]) for j in jobs] == [(1, 0)]

    result = _run_webhooks(jobs)

    assert result == {"batchItemFailures": []}
    [(path, raw, headers)] = callbacks_server.received
    assert path == "/callbacks/sandbox"
    assert headers["Sandbox-Signature"].startswith("t=")
    assert json.loads(raw)["type"] == "payment.succeeded"
    assert body(client.get(created["order_id"]))["status"] == "paid"
    assert queued_jobs(seeded_channels) == []  # delivered: nothing more to send


def test_a_job_that_cannot_be_handled_is_reported_and_the_rest_of_the_batch_delivered(
    order: tuple[Orders, dict], callbacks_server: _CallbackServer, seeded_channels: AwsStack
) -> None:
    client, created = order
    _checkout(_payment_id(created), "pay")
    event = _sqs_event(queued_jobs(seeded_channels))
    broken = dict(event["Records"][0], messageId="m-broken", body="not a job")
    event["Records"].insert(0, broken)

    result = call("sandbox_webhooks", event)

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-broken"}]}  # SQS redelivers only it
    assert len(callbacks_server.received) == 1
    assert body(client.get(created["order_id"]))["status"] == "paid"


def test_a_non_2xx_answer_is_retried_on_the_schedule_then_given_up(
    order: tuple[Orders, dict], callbacks_server: _CallbackServer, seeded_channels: AwsStack
) -> None:
    client, created = order
    _checkout(_payment_id(created), "decline")
    jobs = queued_jobs(seeded_channels)
    callbacks_server.forced = [500] * 5

    delays = []
    for attempt in range(1, 6):
        assert [j["attempt"] for j in jobs] == [attempt]
        jobs[0]["not_before"] = 0  # the wait has passed
        assert _run_webhooks(jobs) == {"batchItemFailures": []}
        jobs = queued_jobs(seeded_channels)
        delays += [j["delay"] for j in jobs]
    assert delays == [60, 300, 900, 900]  # SQS delays at most 900 s; the rest waits as not_before
    assert jobs == []  # given up after the last retry
    assert len(callbacks_server.received) == 5
    assert body(client.get(created["order_id"]))["status"] == "pending"


def test_a_job_before_its_time_waits_without_posting(
    order: tuple[Orders, dict], callbacks_server: _CallbackServer, seeded_channels: AwsStack
) -> None:
    _, created = order
    _checkout(_payment_id(created), "pay")
    [job] = queued_jobs(seeded_channels)
    job["not_before"] = int(time.time()) + 3000

    assert _run_webhooks([job]) == {"batchItemFailures": []}

    assert callbacks_server.received == []
    [waiting] = queued_jobs(seeded_channels)
    assert waiting["attempt"] == 1
    assert 890 <= waiting["delay"] <= 900


def test_decline_fails_the_order_through_its_webhook(
    order: tuple[Orders, dict], callbacks_server: _CallbackServer, seeded_channels: AwsStack
) -> None:
    client, created = order
    page = _checkout(_payment_id(created), "decline")
    assert "declined" in page["body"]
    _run_webhooks(queued_jobs(seeded_channels))
    assert body(client.get(created["order_id"]))["status"] == "failed"
    # paying after a decline is refused by the sandbox
    assert json.loads(_checkout(_payment_id(created), "pay", accept="application/json")["body"])["result"] == (
        "already_failed"
    )


def test_behaviour_knobs_decline_rate_delay_and_duplicates(
    order: tuple[Orders, dict], callbacks_server: _CallbackServer, seeded_channels: AwsStack, identity
) -> None:
    from paycore.sandbox import service as sandbox

    client, created = order
    sandbox.set_behaviour(decline_rate_bps=10_000)
    assert json.loads(_checkout(_payment_id(created), "pay", accept="application/json")["body"])["result"] == (
        "declined"
    )
    queued_jobs(seeded_channels)

    sandbox.set_behaviour(decline_rate_bps=0, delivery_delay_seconds=30, duplicate_rate_bps=10_000)
    second = body(client.create(amount=1050, currency="USD"))
    _checkout(_payment_id(second), "pay")
    jobs = queued_jobs(seeded_channels)
    assert [j["delay"] for j in jobs] == [30, 30]
    assert jobs[0]["event_id"] == jobs[1]["event_id"]

    for job in jobs:
        job["not_before"] = 0
    assert _run_webhooks(jobs) == {"batchItemFailures": []}
    assert len(callbacks_server.received) == 2  # both copies delivered...
    order_now = body(client.get(second["order_id"]))
    assert order_now["status"] == "paid"  # ...and applied once
    from paycore.data import orders as store

    assert [h.kind for h in store.list_history(second["order_id"])] == ["created", "paid"]


def test_out_of_order_delivery_holds_an_event_back(
    order: tuple[Orders, dict], callbacks_server: _CallbackServer, seeded_channels: AwsStack
) -> None:
    from paycore.sandbox import service as sandbox

    _, created = order
    sandbox.set_behaviour(out_of_order_rate_bps=10_000, out_of_order_delay_seconds=7)
    _checkout(_payment_id(created), "pay")
    assert [j["delay"] for j in queued_jobs(seeded_channels)] == [7]


def test_late_payments_within_the_grace_reach_an_expired_order_and_are_refunded(
    order: tuple[Orders, dict], callbacks_server: _CallbackServer, seeded_channels: AwsStack
) -> None:
    from paycore.data import orders as store
    from paycore.sandbox import service as sandbox

    client, created = order
    item = store.get_order(created["order_id"])
    assert item is not None
    item.update(actions=[store.OrderItem.status.set("expired")])  # what the sweeper will do
    sandbox.set_behaviour(late_payment_grace_seconds=3600)
    payment = sandbox.payment_for_order(created["order_id"])
    assert payment is not None
    late = int(payment.expires_at) + 60
    assert sandbox.pay(payment.payment_id, late).result == "paid"

    def due(jobs: list[dict]) -> list[dict]:  # the payment was simulated 60 s past expiry: jobs are due now
        return [dict(j, not_before=0) for j in jobs]

    _run_webhooks(due(queued_jobs(seeded_channels)))  # payment.succeeded → late payment → sandbox refund
    _run_webhooks(due(queued_jobs(seeded_channels)))  # refund.succeeded

    order_now = body(client.get(created["order_id"]))
    assert order_now["status"] == "expired"
    assert [(r["automatic"], r["status"], r["amount"]) for r in order_now["refunds"]] == [(True, "succeeded", 1050)]


def test_without_grace_an_expired_payment_cannot_be_paid(order: tuple[Orders, dict]) -> None:
    from paycore.sandbox import service as sandbox

    _, created = order
    payment = sandbox.payment_for_order(created["order_id"])
    assert payment is not None
    assert sandbox.pay(payment.payment_id, int(payment.expires_at) + 1).result == "expired"


def test_bad_knobs_are_refused(seeded_channels: AwsStack) -> None:
    from paycore.errors import InvalidRequest
    from paycore.sandbox import service as sandbox

    with pytest.raises(InvalidRequest):
        sandbox.set_behaviour(decline_rate_bps=10_001)
    with pytest.raises(InvalidRequest):
        sandbox.set_behaviour(delivery_delay_seconds=-1)
    with pytest.raises(InvalidRequest):
        sandbox.set_behaviour(volume=11)


# ------------------------------------------------------------------ refunds name their payment


def _paid(client: Orders) -> tuple[str, str]:
    """A new order paid at the sandbox (its webhook not delivered): its id and its payment's id."""
    from paycore.sandbox import service as sandbox

    created = body(client.create(amount=700, currency="CNY"))
    payment_id = _payment_id(created)
    assert sandbox.pay(payment_id, int(time.time())).result == "paid"
    return created["order_id"], payment_id


def test_a_refund_takes_the_payment_it_names_and_an_unknown_or_foreign_one_is_refused(
    seeded_channels: AwsStack, identity: Any
) -> None:
    from paycore.providers import get_provider
    from paycore.providers.base import ProviderError, RefundStatus
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    (order_a, payment_a), (_, payment_b) = _paid(client), _paid(client)
    provider = get_provider("sandbox")

    # A payment the sandbox does not have, or another order's, is refused and nothing moves
    for named in ("pay_000000000000000000000000", payment_b):
        with pytest.raises(ProviderError) as refused:
            provider.refund(order_a, named, "r-1", 700, "CNY", 700)
        assert not refused.value.retryable
        assert f"no payment {named} for order {order_a}" in str(refused.value)
    assert [int(sandbox.get_payment(p).refundable) for p in (payment_a, payment_b)] == [700, 700]

    # The payment named is the one refunded
    result = provider.refund(order_a, payment_a, "r-1", 300, "CNY", 700)
    assert result.status == RefundStatus.PENDING
    assert result.provider_refund_id
    assert [int(sandbox.get_payment(p).refundable) for p in (payment_a, payment_b)] == [400, 700]


def test_a_second_payment_the_sandbox_never_took_does_not_refund_the_order_s_payment(
    seeded_channels: AwsStack, identity: Any
) -> None:
    """What the order state machine found (docs/reliability.md): a signed webhook reports a second
    payment of a paid order under a payment id the sandbox does not have. Its automatic refund is
    refused (not taken from the order's real payment), and the merchant's full refund still works."""
    from paycore.data import orders as store
    from paycore.data import sandbox as sandbox_store
    from paycore.sandbox import service as sandbox
    from tests.orders_support import deliver_callback, late_payment

    client = Orders(identity.user())
    order_id, payment_id = _paid(client)
    [job] = queued_jobs(seeded_channels)
    paid = sandbox_store.get_event(job["payment_id"], job["event_id"])
    assert paid is not None
    assert deliver_callback(seeded_channels, paid.body.encode())["statusCode"] == 200

    answer = deliver_callback(seeded_channels, late_payment(order_id, 700, "CNY", payment_id="pay_" + "f" * 24))

    assert answer["statusCode"] == 200
    [automatic] = [r for r in store.list_refunds(order_id) if r.automatic]
    assert automatic.status == "failed"  # the provider refused it: ops are alerted, nothing moved
    assert int(sandbox.get_payment(payment_id).refundable) == 700
    refunded = client.refund(order_id, "whole", 700)
    assert refunded["statusCode"] == 201, refunded
    assert int(sandbox.get_payment(payment_id).refundable) == 0

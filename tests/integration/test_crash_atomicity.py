"""Crash atomicity: a failure injected between the provider call and the database write, or between
two writes, then the same request retried. The outcome converges: one order, one payment at the
sandbox provider (its own tables), no refund paid twice, no payment lost, counters counted once.

A failure is injected by wrapping one data-access function so that its first call raises (before
or after the real write, which is what a crash or a Lambda timeout at that point leaves behind).
The late-payment tests crash after the event's commit, before its automatic refund reaches the
provider (or before the provider's refund id is kept): the provider's redelivery, or else the
sweeper's refund reconciler, submits it under the same refund id, and the sandbox refunds once.
The timeout test is the Lambda timeout itself: Powertools' idempotency record stays "in progress"
until the invocation's deadline (the remaining time it was given), refuses retries until then, and
lets the retry run the work again afterwards (docs/reliability.md).
"""

from __future__ import annotations

import datetime as real_datetime
import time
from collections.abc import Callable
from typing import Any

import pytest

from paycore.errors import DataAccessError
from tests.conftest import AwsStack, load_handler
from tests.helpers import FakeContext, body
from tests.orders_support import (
    Orders,
    call,
    deliver_callback,
    header,
    new_order,
    queued_jobs,
    table_items,
)

pytestmark = pytest.mark.integration


class Crash(DataAccessError):
    """What the injected failure raises (a DynamoDB outage or a dead container, as the caller sees it)."""


def fail_once(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, *, after: bool = False) -> list[int]:
    """Make ``target.name`` raise Crash on its first call: before doing anything, or ``after`` the real
    call did its work. Returns the list of calls seen (for the test to check the failure happened)."""
    real: Callable[..., Any] = getattr(target, name)
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            if after:
                real(*args, **kwargs)
            raise Crash(f"injected failure in {name}")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, flaky)
    return calls


def sandbox_items(stack: AwsStack, order_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The sandbox provider's own records: payments (of ``order_id``) and refunds."""
    found: dict[str, list[dict[str, Any]]] = {"payments": [], "refunds": []}
    for item in table_items(stack, "SandboxTable"):
        sk = item.get("sk", {}).get("S", "")
        if sk == "PAYMENT" and "amount" in item and (order_id is None or item["order_id"]["S"] == order_id):
            found["payments"].append(item)
        elif sk.startswith("REFUND#"):
            found["refunds"].append(item)
    return found


def history(stack: AwsStack, order_id: str) -> list[str]:
    return sorted(
        i["kind"]["S"]
        for i in table_items(stack, "OrdersTable")
        if i["pk"]["S"] == f"ORDER#{order_id}" and i["sk"]["S"].startswith("HIST#")
    )


def counters(stack: AwsStack) -> dict[str, int]:
    totals: dict[str, int] = {}
    for item in table_items(stack, "OrdersTable"):
        if item["pk"]["S"].startswith("STATS#"):
            for name, value in item.items():
                if "N" in value:
                    totals[name] = totals.get(name, 0) + int(value["N"])
    return totals


def deliver_queued(stack: AwsStack) -> list[int]:
    from paycore.data import sandbox as sandbox_store

    statuses = []
    for job in queued_jobs(stack):
        event = sandbox_store.get_event(job["payment_id"], job["event_id"])
        assert event is not None
        statuses.append(deliver_callback(stack, event.body.encode())["statusCode"])
    return statuses


def pay(stack: AwsStack, order: dict[str, Any]) -> None:
    from paycore.sandbox import service as sandbox

    payment_id = order["payment"]["checkout_url"].rsplit("/", 1)[-1]
    assert sandbox.pay(payment_id, int(time.time())).result == "paid"
    assert deliver_queued(stack) == [200]


def test_a_crash_between_the_provider_payment_and_the_order_write_converges_on_retry(
    seeded_channels: AwsStack, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.data import orders as store

    # Given the sandbox created the payment, and the order write then failed
    client = Orders(identity.user())
    fields = new_order(amount=1200)
    calls = fail_once(monkeypatch, store, "create_order")
    with pytest.raises(Crash):
        call("orders", client.create_event(fields))
    assert calls == [1]
    assert len(sandbox_items(seeded_channels, fields["order_id"])["payments"]) == 1
    assert store.get_order(fields["order_id"]) is None

    # When the client retries the same request (Powertools deleted the record of the failed call)
    retried = call("orders", client.create_event(fields))

    # Then one order exists, on the one payment the provider has for it, paid once
    assert retried["statusCode"] == 201, retried
    order = body(retried)
    [payment] = sandbox_items(seeded_channels, fields["order_id"])["payments"]
    assert order["payment"]["checkout_url"].endswith(payment["payment_id"]["S"])
    pay(seeded_channels, order)
    assert body(client.get(order["order_id"]))["status"] == "paid"
    assert history(seeded_channels, order["order_id"]) == ["created", "paid"]
    assert (counters(seeded_channels)["created_count"], counters(seeded_channels)["paid_count"]) == (1, 1)


def test_a_crash_after_the_provider_refund_before_it_is_recorded_refunds_once(
    seeded_channels: AwsStack, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.data import orders as store

    client = Orders(identity.user())
    order = body(client.create(amount=1000))
    pay(seeded_channels, order)
    # Given the sandbox accepted the refund, and recording its id failed
    calls = fail_once(monkeypatch, store, "update_refund_provider_id")
    with pytest.raises(Crash):
        client.refund(order["order_id"], "refund-1", 400)
    assert calls == [1]

    # When the client retries the same refund
    retried = client.refund(order["order_id"], "refund-1", 400)

    # Then the provider refunded 400 once, and once its webhooks are delivered the order says so
    assert retried["statusCode"] == 201, retried
    assert len(sandbox_items(seeded_channels)["refunds"]) == 1
    assert set(deliver_queued(seeded_channels)) == {200}
    now = body(client.get(order["order_id"]))
    assert (now["status"], now["refunded_amount"], now["refund_pending_amount"]) == ("partially_refunded", 400, 0)
    from paycore.sandbox import service as sandbox

    payment = sandbox.payment_for_order(order["order_id"])
    assert payment is not None
    assert int(payment.refundable) == 600
    assert counters(seeded_channels)["refunded_amount"] == 400


def test_a_crash_between_closing_at_the_provider_and_the_cancel_write_converges(
    seeded_channels: AwsStack, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.data import orders as store
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    order = body(client.create())
    calls = fail_once(monkeypatch, store, "apply_change")
    with pytest.raises(Crash):
        client.cancel(order["order_id"])
    assert calls == [1]
    closed = sandbox.payment_for_order(order["order_id"])
    assert closed is not None
    assert closed.status == "closed"  # the provider side happened; the order did not change
    assert store.get_order(order["order_id"]).status == "pending"

    retried = client.cancel(order["order_id"])

    assert retried["statusCode"] == 200, retried
    assert body(retried)["status"] == "cancelled"
    assert history(seeded_channels, order["order_id"]) == ["cancelled", "created"]
    assert counters(seeded_channels)["cancelled_count"] == 1


def test_a_crash_while_recording_a_payment_webhook_loses_nothing_on_redelivery(
    seeded_channels: AwsStack, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.data import orders as store
    from paycore.data import sandbox as sandbox_store
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    order = body(client.create(amount=700))
    payment_id = order["payment"]["checkout_url"].rsplit("/", 1)[-1]
    assert sandbox.pay(payment_id, int(time.time())).result == "paid"
    [job] = queued_jobs(seeded_channels)
    event = sandbox_store.get_event(job["payment_id"], job["event_id"])
    assert event is not None
    raw = event.body.encode()

    # Given the webhook's transaction failed (the provider sees a 5xx and delivers it again)
    calls = fail_once(monkeypatch, store, "apply_change")
    with pytest.raises(Crash):
        deliver_callback(seeded_channels, raw)
    assert calls == [1]
    assert store.get_event_marker("sandbox", job["event_id"]) is None  # nothing of the event was kept

    # When it is delivered again, twice
    assert deliver_callback(seeded_channels, raw)["statusCode"] == 200
    assert deliver_callback(seeded_channels, raw)["statusCode"] == 200

    # Then the payment is recorded once
    assert body(client.get(order["order_id"]))["status"] == "paid"
    assert history(seeded_channels, order["order_id"]) == ["created", "paid"]
    assert (counters(seeded_channels)["paid_count"], counters(seeded_channels)["paid_amount"]) == (1, 700)


class LambdaTimeout(BaseException):  # named for what it stands for
    """Lambda stopping the invocation: no ``except Exception`` runs, so Powertools keeps its record."""


class Deadline:
    """A LambdaContext with a chosen remaining time (what Powertools ties the in-progress record to)."""

    def __init__(self, remaining_ms: int):
        self.remaining_ms = remaining_ms
        self.fake = FakeContext()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def shift_powertools_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Freeze Powertools' idempotency clock ``seconds`` ahead of the real one."""
    import types

    from aws_lambda_powertools.utilities.idempotency import base
    from aws_lambda_powertools.utilities.idempotency.persistence import base as persistence_base
    from aws_lambda_powertools.utilities.idempotency.persistence import dynamodb

    class Later(real_datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return real_datetime.datetime.now(tz) + real_datetime.timedelta(seconds=seconds)

    shifted = types.SimpleNamespace(datetime=Later, timedelta=real_datetime.timedelta)
    for module in (base, persistence_base, dynamodb):
        monkeypatch.setattr(module, "dt", shifted)


def test_after_a_lambda_timeout_a_retry_is_refused_until_the_deadline_then_runs_again(
    seeded_channels: AwsStack, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.data import orders as store

    handler = load_handler("orders")
    client = Orders(identity.user())
    fields = new_order(amount=900)
    # Given an invocation with 30 s left wrote the order and then ran out of time
    real_create = store.create_order

    def write_then_time_out(*args: Any, **kwargs: Any) -> bool:
        real_create(*args, **kwargs)
        raise LambdaTimeout()

    monkeypatch.setattr(store, "create_order", write_then_time_out)
    started_ms = time.time() * 1000
    with pytest.raises(LambdaTimeout):
        handler.lambda_handler(client.create_event(fields), Deadline(30_000))
    ended_ms = time.time() * 1000
    monkeypatch.setattr(store, "create_order", real_create)
    [record] = table_items(seeded_channels, "IdempotencyTable")
    assert record["status"]["S"] == "INPROGRESS"
    deadline_ms = int(record["in_progress_expiration"]["N"])
    # the record's deadline is the remaining time counted from when it was written (bounds taken
    # around the call, not a timing assumption: a loaded machine may take seconds per call)
    assert started_ms + 30_000 - 1 <= deadline_ms <= ended_ms + 30_000 + 1

    # When the client retries before that deadline, it is told to wait
    early = handler.lambda_handler(client.create_event(fields), FakeContext())
    assert early["statusCode"] == 409
    assert body(early)["error"]["code"] == "request_in_progress"
    assert header(early, "Retry-After") == "2"

    # And after the deadline (Powertools' clock moved 31 s on) the retry runs again and converges
    shift_powertools_clock(monkeypatch, 31)
    late = handler.lambda_handler(client.create_event(fields), FakeContext())
    assert late["statusCode"] == 201, late
    assert body(late)["order_id"] == fields["order_id"]
    assert len(sandbox_items(seeded_channels, fields["order_id"])["payments"]) == 1
    assert history(seeded_channels, fields["order_id"]) == ["created"]
    assert counters(seeded_channels)["created_count"] == 1
    [record] = table_items(seeded_channels, "IdempotencyTable")
    assert record["status"]["S"] == "COMPLETED"


# ------------------------------------------------------------------ late payments: the follow-up after the commit


def late_paid(stack: AwsStack, client: Orders, monkeypatch: pytest.MonkeyPatch, amount: int) -> tuple[str, bytes]:
    """An order cancelled while its payment stayed open at the provider, and then paid there: a
    late payment. The sandbox plays Alipay's precreated trade that was never scanned (its close
    answers NOT_FOUND and closes nothing; docs/providers.md), and the payer pays before the QR
    code's expiry. Returns the order id and the provider's payment.succeeded webhook."""
    from paycore.data import sandbox as sandbox_store
    from paycore.providers.base import PaymentState, PaymentStatus
    from paycore.providers.sandbox import SandboxProvider
    from paycore.sandbox import service as sandbox

    order = body(client.create(amount=amount))
    with monkeypatch.context() as scoped:
        scoped.setattr(
            SandboxProvider,
            "close_payment",
            lambda self, order_id, payment_id: PaymentState(PaymentStatus.NOT_FOUND, None),
        )
        assert body(client.cancel(order["order_id"]))["status"] == "cancelled"
    payment_id = order["payment"]["checkout_url"].rsplit("/", 1)[-1]
    assert sandbox.pay(payment_id, int(time.time())).result == "paid"
    [job] = queued_jobs(stack)
    event = sandbox_store.get_event(job["payment_id"], job["event_id"])
    assert event is not None
    return order["order_id"], event.body.encode()


def crash_delivering(stack: AwsStack, monkeypatch: pytest.MonkeyPatch, raw: bytes, target: Any, name: str) -> None:
    """Deliver the webhook with ``target.name`` failing once (before its work): the delivery crashes."""
    calls = fail_once(monkeypatch, target, name)
    with pytest.raises(Crash):
        deliver_callback(stack, raw)
    assert calls == [1]


def automatic_refund(order_id: str) -> Any:
    from paycore.data import orders as store

    [refund] = [r for r in store.list_refunds(order_id) if r.automatic]
    return refund


def given_back(stack: AwsStack, order_id: str) -> tuple[str, int, int]:
    """The sandbox's side of a late payment: the payment's status, what is left of it, and how many
    refunds the sandbox made of it."""
    from paycore.sandbox import service as sandbox

    payment = sandbox.payment_for_order(order_id)
    assert payment is not None
    return str(payment.status), int(payment.refundable), len(sandbox_items(stack)["refunds"])


def sweep_later(seconds: float) -> Any:
    from paycore.jobs.sweeper import sweep

    return sweep(now=time.time() + seconds, remaining_ms=lambda: 100_000)


def test_a_crash_after_a_late_payment_is_recorded_still_submits_its_refund_on_redelivery(
    seeded_channels: AwsStack, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.orders import callbacks

    client = Orders(identity.user())
    # Given the provider reports a payment of a cancelled order, and the function dies right after
    # recording it, before the automatic refund is submitted
    order_id, raw = late_paid(seeded_channels, client, monkeypatch, 500)
    crash_delivering(seeded_channels, monkeypatch, raw, callbacks, "submit_refund")
    refund = automatic_refund(order_id)
    assert (refund.status, refund.provider_refund_id, refund.amount) == ("pending", None, 500)
    assert given_back(seeded_channels, order_id) == ("paid", 500, 0)  # the money is still held

    # When the provider delivers the event again (it saw a 5xx), and then once more
    assert deliver_callback(seeded_channels, raw)["statusCode"] == 200
    assert deliver_callback(seeded_channels, raw)["statusCode"] == 200

    # Then the refund reached the provider once, and its webhook settles it
    assert given_back(seeded_channels, order_id) == ("paid", 0, 1)
    assert automatic_refund(order_id).provider_refund_id is not None
    assert set(deliver_queued(seeded_channels)) == {200}
    assert automatic_refund(order_id).status == "succeeded"
    assert body(client.get(order_id))["status"] == "cancelled"
    assert history(seeded_channels, order_id) == ["cancelled", "created", "late_payment", "refund_succeeded"]
    assert counters(seeded_channels)["late_payment_count"] == 1
    # And the sweeper's reconciler finds nothing left to submit
    assert sweep_later(3600).refunds_resubmitted == 0


def test_a_late_payment_refund_the_provider_took_but_was_not_recorded_is_not_refunded_twice(
    seeded_channels: AwsStack, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.data import orders as store
    from paycore.orders import callbacks

    client = Orders(identity.user())
    order_id, raw = late_paid(seeded_channels, client, monkeypatch, 800)
    # Given the sandbox accepted the automatic refund, and recording its id failed
    crash_delivering(seeded_channels, monkeypatch, raw, store, "update_refund_provider_id")
    assert given_back(seeded_channels, order_id) == ("paid", 0, 1)
    assert automatic_refund(order_id).provider_refund_id is None

    # When the provider redelivers the event
    assert deliver_callback(seeded_channels, raw)["statusCode"] == 200

    # Then the refund was submitted again under its own id: the provider answered the refund it
    # had (no second one), and its id is now recorded
    assert given_back(seeded_channels, order_id) == ("paid", 0, 1)
    [provider_refund] = sandbox_items(seeded_channels)["refunds"]
    assert automatic_refund(order_id).provider_refund_id == provider_refund["provider_refund_id"]["S"]

    # And one more submission (a reconciler racing the redelivery) refunds nothing more either
    order = store.get_order(order_id)
    assert order is not None
    assert callbacks.resubmit_refund(order, automatic_refund(order_id), time.time())
    assert given_back(seeded_channels, order_id) == ("paid", 0, 1)
    assert set(deliver_queued(seeded_channels)) == {200}  # its refund.succeeded, once
    assert automatic_refund(order_id).status == "succeeded"
    assert sweep_later(3600).refunds_resubmitted == 0


def test_the_sweeper_submits_a_refund_left_behind_when_no_redelivery_comes(
    seeded_channels: AwsStack, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.orders import callbacks

    client = Orders(identity.user())
    order_id, raw = late_paid(seeded_channels, client, monkeypatch, 300)
    # Given the function died after recording the late payment, and the provider never redelivers
    crash_delivering(seeded_channels, monkeypatch, raw, callbacks, "submit_refund")

    # When the sweeper runs within the grace period, nothing is submitted (a submission may be in flight)
    early = sweep_later(60)
    assert (early.refunds_resubmitted, early.errors) == (0, 0)
    assert given_back(seeded_channels, order_id) == ("paid", 300, 0)

    # Then after it (SWEEPER_REFUND_GRACE_SECONDS = 300) the refund is submitted, once
    late = sweep_later(301)
    assert (late.refunds_resubmitted, late.errors) == (1, 0)
    assert given_back(seeded_channels, order_id) == ("paid", 0, 1)
    assert sweep_later(1200).refunds_resubmitted == 0  # it left the index
    assert set(deliver_queued(seeded_channels)) == {200}
    assert automatic_refund(order_id).status == "succeeded"
    assert deliver_callback(seeded_channels, raw)["statusCode"] == 200  # a late redelivery: nothing more
    assert given_back(seeded_channels, order_id) == ("paid", 0, 1)


def test_a_client_refund_the_provider_failed_is_submitted_by_the_sweeper_after_its_outage(
    seeded_channels: AwsStack, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.data import orders as store
    from paycore.providers.base import ProviderError
    from paycore.providers.sandbox import SandboxProvider
    from paycore.sandbox import service as sandbox

    client = Orders(identity.user())
    order = body(client.create(amount=1000))
    pay(seeded_channels, order)
    order_id = order["order_id"]
    real_refund = SandboxProvider.refund

    def outage(*args: Any, **kwargs: Any) -> Any:
        raise ProviderError("the sandbox is down", provider="sandbox")

    # Given the provider failed the refund call (the client got 503 and never came back)
    monkeypatch.setattr(SandboxProvider, "refund", outage)
    answer = client.refund(order_id, "refund-1", 400)
    assert answer["statusCode"] == 503, answer
    assert body(client.get(order_id))["refund_pending_amount"] == 400  # reserved, not refunded

    # When the sweeper runs past the grace period while the provider is still down
    down = sweep_later(400)
    # Then the refund waits another grace period, its attempt counted
    assert (down.refunds_resubmitted, down.errors) == (0, 1)
    refund = store.get_refund(order_id, "refund-1")
    assert refund is not None
    assert (refund.status, refund.submit_attempts, refund.provider_refund_id) == ("pending", 1, None)
    assert sweep_later(600).refunds_resubmitted == 0  # 200 s after the failed attempt: not yet

    # And once the provider is back, the next run past that submits it, and its webhook settles the order
    monkeypatch.setattr(SandboxProvider, "refund", real_refund)
    up = sweep_later(1000)
    assert (up.refunds_resubmitted, up.errors) == (1, 0)
    payment = sandbox.payment_for_order(order_id)
    assert payment is not None
    assert int(payment.refundable) == 600
    assert set(deliver_queued(seeded_channels)) == {200}
    now = body(client.get(order_id))
    assert (now["status"], now["refunded_amount"], now["refund_pending_amount"]) == ("partially_refunded", 400, 0)

"""The sweeper on moto with a frozen clock: expiry, races with payments, provider failures, budget,
overdue notifications, and what it asks DynamoDB (index Queries, never a Scan)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import AwsStack, load_handler
from tests.helpers import load_event
from tests.jobs_support import (
    T0,
    CountdownContext,
    ample_time,
    counting_dynamodb,
    create_order,
    deliver_webhooks,
    order,
    pay,
    sandbox_payment,
    totals,
)

pytestmark = pytest.mark.integration

DAY = "2026-11-24"  # T0's UTC date


@pytest.fixture
def stack(seeded_channels: AwsStack, identity: Any) -> AwsStack:
    return seeded_channels


def sweep(*, now: float, remaining_ms: Any) -> Any:
    from paycore.jobs.sweeper import sweep as run  # imported in the test: Powertools reads its env then

    return run(now=now, remaining_ms=remaining_ms)


def history_kinds(order_id: str) -> list[str]:
    from paycore.data import orders as store

    return [h.kind for h in store.list_history(order_id)]


# ------------------------------------------------------------------ expiry


def test_expired_pending_orders_expire_and_unexpired_ones_stay(stack: AwsStack) -> None:
    # Given three orders past their expiry and one that is not
    due = [create_order(T0, expires_in=900) for _ in range(3)]
    later = create_order(T0 + 600, expires_in=900)

    # When the sweeper runs at T0 + 1000 s
    result = sweep(now=T0 + 1000, remaining_ms=ample_time)

    # Then exactly the three are expired, closed at the provider, with history and counters
    assert result.expired == 3
    assert (result.errors, result.paid, result.lost_races, result.stopped_early) == (0, 0, 0, False)
    for order_id in due:
        expired = order(order_id)
        assert expired.status == "expired"
        assert expired.closed_at == int(T0 + 1000)
        assert expired.pending_shard is None  # left the index
        assert expired.pending_expires_at is None
        assert history_kinds(order_id) == ["created", "expired"]
        assert sandbox_payment(order_id).status == "closed"
    assert order(later).status == "pending"
    assert sandbox_payment(later).status == "pending"
    assert totals(DAY)["expired_count"] == 3

    # And a second run finds nothing more to do
    again = sweep(now=T0 + 1000, remaining_ms=ample_time)
    assert (again.expired, again.errors) == (0, 0)


def test_a_payer_closed_out_by_the_sweeper_cannot_pay_any_more(stack: AwsStack) -> None:
    order_id = create_order(T0, expires_in=900)
    sweep(now=T0 + 901, remaining_ms=ample_time)

    assert pay(order_id, T0 + 902) == "already_closed"
    assert deliver_webhooks(stack, T0 + 903) == []
    assert order(order_id).status == "expired"


def test_an_order_paid_at_the_provider_before_the_sweep_ends_paid_not_expired(stack: AwsStack) -> None:
    # Given an order paid at the sandbox whose webhook has not arrived yet
    order_id = create_order(T0, expires_in=900)
    assert pay(order_id, T0 + 890) == "paid"

    # When the sweeper finds it past expiry
    result = sweep(now=T0 + 1000, remaining_ms=ample_time)

    # Then it is applied as the webhook would be: paid, with the paid counters
    assert (result.paid, result.expired) == (1, 0)
    paid = order(order_id)
    assert paid.status == "paid"
    assert paid.paid_at == int(T0 + 890)
    assert history_kinds(order_id) == ["created", "paid"]
    assert totals(DAY) == {"created_count": 1, "created_amount": 1000, "paid_count": 1, "paid_amount": 1000}


def test_a_payment_that_wins_the_race_with_close_ends_paid(stack: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The payer presses Pay between the sweeper's query and its close: close answers PAID."""
    from paycore import providers
    from paycore.providers.sandbox import SandboxProvider

    order_id = create_order(T0, expires_in=900)

    class PayerFirst(SandboxProvider):
        def close_payment(self, order_id: str, provider_payment_id: str | None) -> Any:
            assert pay(order_id, T0 + 899) == "paid"  # still inside the payment window
            return super().close_payment(order_id, provider_payment_id)

    monkeypatch.setitem(providers._INSTANCES, "sandbox", PayerFirst())
    result = sweep(now=T0 + 1000, remaining_ms=ample_time)

    assert (result.paid, result.expired) == (1, 0)
    assert order(order_id).status == "paid"
    assert sandbox_payment(order_id).status == "paid"

    # And when the webhook then arrives it changes nothing: one payment, counted once
    assert deliver_webhooks(stack, T0 + 1001) == ["payment.succeeded"]
    assert order(order_id).status == "paid"
    assert history_kinds(order_id) == ["created", "paid"]
    assert totals(DAY)["paid_count"] == 1
    assert "late_payment_count" not in totals(DAY)


@pytest.mark.parametrize("first", ["webhook", "sweeper"])
def test_sweeper_and_paid_webhook_on_one_order_end_in_one_outcome(stack: AwsStack, first: str) -> None:
    # Given an order paid at the provider just before its expiry
    order_id = create_order(T0, expires_in=900)
    assert pay(order_id, T0 + 899) == "paid"

    # When the webhook and the sweeper both act on it, in either order
    if first == "webhook":
        assert deliver_webhooks(stack, T0 + 950) == ["payment.succeeded"]
        result = sweep(now=T0 + 1000, remaining_ms=ample_time)
        assert (result.expired, result.paid) == (0, 0)  # the paid order left the index
    else:
        result = sweep(now=T0 + 1000, remaining_ms=ample_time)
        assert (result.expired, result.paid) == (0, 1)
        assert deliver_webhooks(stack, T0 + 1050) == ["payment.succeeded"]

    # Then the order is paid once: one paid history entry, counters counted once, nothing refunded
    assert order(order_id).status == "paid"
    assert history_kinds(order_id) == ["created", "paid"]
    assert totals(DAY) == {"created_count": 1, "created_amount": 1000, "paid_count": 1, "paid_amount": 1000}


def test_an_amount_mismatch_at_the_provider_is_held_for_ops_not_paid(
    stack: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore import providers
    from paycore.providers.base import PaymentState
    from paycore.providers.sandbox import SandboxProvider

    order_id = create_order(T0, amount=1000, expires_in=900)
    pay(order_id, T0 + 100)

    class WrongAmount(SandboxProvider):
        def query_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
            state = super().query_payment(order_id, provider_payment_id)
            return PaymentState(state.status, state.provider_payment_id, 999, state.currency, state.paid_at)

    monkeypatch.setitem(providers._INSTANCES, "sandbox", WrongAmount())
    first = sweep(now=T0 + 1000, remaining_ms=ample_time)
    second = sweep(now=T0 + 1300, remaining_ms=ample_time)

    assert (first.held, first.paid, first.expired) == (1, 0, 0)
    assert (second.held, second.paid, second.expired) == (1, 0, 0)
    assert order(order_id).status == "pending"
    assert totals(DAY)["anomaly_count"] == 1  # recorded (and alerted) once, not per run


# ------------------------------------------------------------------ failures and budget


class Unreachable:
    """A provider that cannot be reached: every query and close fails."""

    name = "unreachable"

    def __init__(self) -> None:
        from paycore.providers.sandbox import SandboxProvider

        self._sandbox = SandboxProvider()

    def create_payment(self, request: Any) -> Any:
        return self._sandbox.create_payment(request)

    def query_payment(self, order_id: str, provider_payment_id: str | None) -> Any:
        from paycore.providers.base import ProviderError

        raise ProviderError("connection refused", provider=self.name)

    close_payment = query_payment


@pytest.fixture
def unreachable_channel(stack: AwsStack, monkeypatch: pytest.MonkeyPatch) -> str:
    from paycore import providers
    from paycore.data.channels import put_channel_item

    monkeypatch.setitem(providers._REGISTRY, "unreachable", f"{__name__}:Unreachable")
    monkeypatch.delitem(providers._INSTANCES, "unreachable", raising=False)
    put_channel_item(
        {
            "id": "unreachable",
            "name": "Unreachable",
            "provider": "unreachable",
            "currencies": ["CNY"],
            "limits": {"CNY": {"min": 1, "max": 5_000_000}},
            "methods": ["qr_code"],
            "available": True,
            "priority": 90,
            "fee_bps": 0,
        }
    )
    yield "unreachable"
    providers._INSTANCES.pop("unreachable", None)


def test_a_failing_provider_costs_its_order_not_the_run(stack: AwsStack, unreachable_channel: str) -> None:
    broken = create_order(T0, expires_in=900, channel=unreachable_channel)
    fine = [create_order(T0, expires_in=900) for _ in range(3)]

    result = sweep(now=T0 + 1000, remaining_ms=ample_time)

    assert (result.expired, result.errors) == (3, 1)
    assert all(order(o).status == "expired" for o in fine)
    assert order(broken).status == "pending"  # tried again next run
    assert order(broken).pending_expires_at == int(T0 + 900)


def test_the_handler_emits_the_metrics_and_heartbeat(
    stack: AwsStack, unreachable_channel: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    now = time.time()  # the handler reads the real clock: orders made to be due by now
    create_order(now - 2000, expires_in=900)
    create_order(now - 2000, expires_in=900, channel=unreachable_channel)
    from paycore.observability import metrics

    metrics.clear_metrics()  # drop what earlier tests' direct sweeps buffered without a handler
    capsys.readouterr()

    result = load_handler("sweeper").lambda_handler(load_event("sweeper", "scheduled"), CountdownContext(100_000))

    assert (result["expired"], result["errors"]) == (1, 1)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    # the per-service series (what alarms read): the records without a channel dimension
    values = {
        name: sum(
            sum(doc[name]) if isinstance(doc[name], list) else doc[name]
            for doc in emf
            if name in doc and "channel" not in doc
        )
        for name in names
    }
    assert values["OrdersExpired"] == 1
    assert values["SweeperErrors"] == 1
    assert values["SweeperBacklogLeft"] == 0
    assert values["OverduePaymentsApplied"] == 0
    assert values["SweeperHeartbeat"] == 1
    # the expired order by its channel too (the dashboard's series); the failed one expired nothing
    by_channel = [(doc["channel"], doc["OrdersExpired"]) for doc in emf if "channel" in doc and "OrdersExpired" in doc]
    assert by_channel == [("sandbox", [1.0])]


def test_a_run_out_of_time_leaves_the_rest_and_the_next_run_finishes(stack: AwsStack) -> None:
    orders = [create_order(T0, expires_in=900) for _ in range(12)]

    # Each budget check costs 1 s of a 30 s invocation with a 20 s reserve: about ten checks
    first = sweep(now=T0 + 1000, remaining_ms=CountdownContext(30_000, step_ms=1_000).get_remaining_time_in_millis)

    assert first.stopped_early
    assert 0 < first.expired < 12
    assert first.backlog_left == 12 - first.expired
    assert sum(order(o).status == "expired" for o in orders) == first.expired

    second = sweep(now=T0 + 1300, remaining_ms=ample_time)
    assert not second.stopped_early
    assert second.expired == first.backlog_left
    assert second.backlog_left == 0
    assert all(order(o).status == "expired" for o in orders)


# ------------------------------------------------------------------ overdue notifications


def test_overdue_payments_are_found_and_applied_before_expiry(stack: AwsStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given long-lived orders: one paid at the provider 11 minutes ago with no webhook yet,
    # one old and unpaid, and one paid a moment ago (its webhook is not overdue yet)
    overdue = create_order(T0, expires_in=3600)
    pay(overdue, T0 + 60)
    unpaid = create_order(T0 + 30, expires_in=3600)
    recent = create_order(T0 + 650, expires_in=3600)
    pay(recent, T0 + 660)

    # When the sweeper runs at T0 + 700 s (SWEEPER_OVERDUE_AFTER_SECONDS = 600)
    result = sweep(now=T0 + 700, remaining_ms=ample_time)

    # Then only the two old enough are asked about, and the paid one is applied
    assert (result.overdue_checked, result.overdue_applied, result.expired) == (2, 1, 0)
    assert order(overdue).status == "paid"
    assert order(unpaid).status == "pending"
    assert order(recent).status == "pending"

    # And the provider queries per run are capped, oldest order first
    monkeypatch.setenv("SWEEPER_OVERDUE_MAX_QUERIES", "1")
    from paycore.config import reset_settings

    reset_settings()
    capped = sweep(now=T0 + 1300, remaining_ms=ample_time)
    assert (capped.overdue_checked, capped.overdue_applied) == (1, 0)  # the oldest: the unpaid one
    assert order(recent).status == "pending"


# ------------------------------------------------------------------ what it asks DynamoDB


ALLOWED = {"Query", "GetItem", "TransactWriteItems", "UpdateItem"}


def test_a_sweep_uses_index_queries_gets_and_conditional_writes_only(
    stack: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_order(T0, expires_in=900)  # will expire
    paid = create_order(T0, expires_in=900)
    pay(paid, T0 + 100)  # paid at the provider, found at expiry
    overdue = create_order(T0, expires_in=7200)
    pay(overdue, T0 + 100)  # found by the overdue check

    with counting_dynamodb(monkeypatch) as calls:
        result = sweep(now=T0 + 1000, remaining_ms=ample_time)

    assert (result.expired, result.paid, result.overdue_applied) == (1, 1, 1)
    assert calls, "the hook saw no request"
    assert set(calls) <= ALLOWED, sorted(set(calls) - ALLOWED)
    assert "Scan" not in calls


def _store_pending(count: int, *, created_at: float, expires_at: float) -> None:
    """Pending orders written in batches straight to the table (no provider payment, no history):
    the bystanders of the request-count test. moto copies a whole table for every transaction,
    so a thousand transactional creates would only make the test slow, not truer."""
    import uuid

    from paycore.data import orders as store

    store._bind()
    with store.OrderItem.batch_write() as batch:
        for _ in range(count):
            order_id = str(uuid.uuid4())
            batch.save(
                store.OrderItem(
                    store.order_pk(order_id),
                    store.ORDER_SK,
                    order_id=order_id,
                    user_id="u-bystander",
                    status="pending",
                    amount=100,
                    currency="CNY",
                    channel="sandbox",
                    provider="sandbox",
                    subject="bystander",
                    created_at=int(created_at),
                    updated_at=int(created_at),
                    expires_at=int(expires_at),
                    request_hash="-",
                    user_pk="USER#u-bystander",
                    user_status="USER#u-bystander#pending",
                    created_sk=f"{int(created_at * 1000):013d}#{order_id}",
                    pending_shard=store.pending_shard(order_id),
                    pending_expires_at=int(expires_at),
                )
            )


def test_of_1000_pending_orders_the_50_due_are_expired_at_a_cost_independent_of_the_950(
    stack: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Phase 1: 50 due orders and nothing else pending
    alone = [create_order(T0, expires_in=900) for _ in range(50)]
    with counting_dynamodb(monkeypatch) as quiet_calls:
        quiet = sweep(now=T0 + 1000, remaining_ms=ample_time)
    assert quiet.expired == 50

    # Phase 2: 50 more due orders among 950 pending ones that are not due (made recently, so
    # the overdue check does not ask their provider either)
    later = T0 + 10_000
    crowd = [create_order(later, expires_in=900) for _ in range(50)]
    _store_pending(950, created_at=later + 850, expires_at=later + 5000)
    with counting_dynamodb(monkeypatch) as busy_calls:
        busy = sweep(now=later + 1000, remaining_ms=ample_time)

    assert busy.expired == 50
    assert all(order(o).status == "expired" for o in alone + crowd)
    assert sorted(quiet_calls) == sorted(busy_calls)  # the same requests, whatever else is pending
    assert "Scan" not in busy_calls

"""Helpers for the scheduled-job suites: orders made through the real order code at chosen times,
the sandbox payer, webhook delivery without HTTP, a DynamoDB request counter, and Lambda contexts.

Every time is explicit (a frozen clock): orders are created, paid and swept at the ``now`` the test
names, so counters land in known quarter hours. Orders are signed with the ``identity`` fixture's
test keys (tests/orders_support.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import AwsStack
from tests.orders_support import queued_jobs, webhook_secret

USER = "u-jobs"
BASE_URL = "http://127.0.0.1:3000"
# 2026-11-24 08:00:00 UTC: the suites' frozen "now" unless they need another day.
T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC).timestamp()


def create_order(
    now: float,
    *,
    amount: int = 1000,
    currency: str = "CNY",
    channel: str = "sandbox",
    expires_in: int = 900,
    user: str = USER,
) -> str:
    """POST /orders's logic at ``now``: a pending order with a sandbox payment; returns its id."""
    from paycore.orders import service
    from paycore.schemas.orders import CreateOrderIn

    order_id = str(uuid.uuid4())
    request = CreateOrderIn(
        order_id=order_id, amount=amount, currency=currency, channel=channel, subject="jobs test", expires_in=expires_in
    )
    service.create_order(user, request, base_url=BASE_URL, now=now)
    return order_id


def order(order_id: str) -> Any:
    from paycore.data import orders as store

    found = store.get_order(order_id)
    assert found is not None, order_id
    return found


def sandbox_payment(order_id: str) -> Any:
    from paycore.sandbox import service

    payment = service.payment_for_order(order_id)
    assert payment is not None, order_id
    return payment


def pay(order_id: str, now: float) -> str:
    """The payer presses Pay on the sandbox checkout page at ``now``; returns the sandbox's result."""
    from paycore.sandbox import service

    return service.pay(sandbox_payment(order_id).payment_id, int(now)).result


def decline(order_id: str, now: float) -> str:
    from paycore.sandbox import service

    return service.decline(sandbox_payment(order_id).payment_id, int(now)).result


def deliver_webhooks(stack: AwsStack, now: float) -> list[str]:
    """Deliver every queued sandbox webhook as the webhooks function would, minus the HTTP hop and
    at the frozen ``now``: the event's exact body, signed with the stack's secret, through the
    callbacks' logic. Returns the delivered event types."""
    from paycore.data import sandbox as sandbox_store
    from paycore.orders.callbacks import handle_callback
    from paycore.sandbox import webhooks

    delivered: list[str] = []
    for job in queued_jobs(stack):
        event = sandbox_store.get_event(job["payment_id"], job["event_id"])
        assert event is not None
        body = event.body.encode()
        header = webhooks.sign(webhook_secret(stack), int(now), body)
        ack = handle_callback("sandbox", {webhooks.SIGNATURE_HEADER: header}, body, now)
        assert ack.status_code == 200
        delivered.append(json.loads(body)["type"])
    return delivered


def counters_of(day: str) -> dict[str, dict[str, int]]:
    """Every counter item of a UTC date: sort key -> non-zero counters."""
    from paycore.data import orders as store

    store._bind()
    return {
        item.sk: {name: int(getattr(item, name)) for name in store.COUNTER_FIELDS if getattr(item, name)}
        for item in store.CounterItem.query(f"STATS#{day}")
    }


def totals(day: str) -> dict[str, int]:
    summed: dict[str, int] = {}
    for values in counters_of(day).values():
        for name, value in values.items():
            summed[name] = summed.get(name, 0) + value
    return summed


@contextmanager
def counting_dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record the name of every DynamoDB request made inside the block (a botocore
    ``before-call`` event hook on the sessions PynamoDB creates its clients from)."""
    import botocore.session
    import pynamodb.connection.base as pynamodb_base

    from paycore.aws import reset_clients

    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    def session_with_hook() -> Any:
        session = botocore.session.get_session()
        session.register("before-call.dynamodb", record)
        return session

    with monkeypatch.context() as patch:
        patch.setattr(pynamodb_base, "get_session", session_with_hook)
        reset_clients()  # new connections, made through the hooked sessions
        yield calls
    reset_clients()


@dataclass
class CountdownContext:
    """A Lambda context whose remaining time drops by ``step_ms`` each time it is asked: a sweep
    sees its budget run out after a known number of checks, without any real waiting."""

    remaining_ms: int
    step_ms: int = 0
    function_name: str = "sweeper"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:sweeper"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        left = self.remaining_ms
        self.remaining_ms = max(0, self.remaining_ms - self.step_ms)
        return left


def ample_time() -> int:
    return 100_000

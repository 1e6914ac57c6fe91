"""Orders, callbacks and refunds, the sweeper and the daily report, as bench operations.

The sandbox provider keeps its own state in DynamoDB (SandboxTable) and queues its webhooks on SQS;
a real provider is an HTTPS call instead. Requests to the template's ``Sandbox*`` resources are
therefore counted apart, as the provider's (bench/recorder.py ``Tally.split``), never as the service's.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from bench.operations import Call, Driver, FlowError, Operation, Staged, User, expect


def _key(user: User) -> bytes:
    raw = str(user.tokens["signing_key"])
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))


def signed(d: Driver, user: User, method: str, resource: str, path: dict[str, str], body: dict[str, Any]) -> Any:
    from paycore import request_signature

    raw = json.dumps(body).encode()
    concrete = resource
    for k, v in path.items():
        concrete = concrete.replace("{" + k + "}", v)
    header = request_signature.sign(_key(user), int(time.time()), secrets.token_urlsafe(16), method, concrete, raw)
    return d.api("OrdersFunction", method, resource, path=path, raw=raw, headers={"X-Signature": header}, user=user)


def create_order(d: Driver, user: User, **fields: Any) -> dict[str, Any]:
    body = {
        "order_id": str(uuid.uuid4()),
        "amount": 1000,
        "currency": "CNY",
        "channel": "sandbox",
        "subject": "Coffee beans, 250 g",
        **fields,
    }
    return expect(signed(d, user, "POST", "/orders", {}, body), 201, "create order")


def _webhook_secret(d: Driver) -> bytes:
    """The sandbox's webhook secret of the stage paycore points at (read as the provider would)."""
    from paycore.sandbox.webhooks import webhook_secret

    with d.stack.recorder.paused():
        return webhook_secret()


def paid_webhook(order: dict[str, Any]) -> bytes:
    """The payer pays at the sandbox provider; returns its ``payment.succeeded`` webhook for ``order``
    (an order as the API returned it), which the bench delivers itself."""
    from paycore.sandbox import service

    service.pay(order["payment"]["checkout_url"].rsplit("/", 1)[-1], int(time.time()))
    body = {
        "id": f"evt_{secrets.token_hex(12)}",
        "type": "payment.succeeded",
        "created": int(time.time()),
        "data": {
            "payment_id": order["payment"]["checkout_url"].rsplit("/", 1)[-1],
            "order_id": order["order_id"],
            "amount": order["amount"],
            "currency": order["currency"],
        },
    }
    return json.dumps(body, sort_keys=True).encode()


def deliver(d: Driver, raw: bytes, secret: bytes) -> None:
    from paycore.sandbox.webhooks import sign

    header = sign(secret, int(time.time()), raw)
    response = d.api(
        "CallbacksFunction",
        "POST",
        "/callbacks/{provider}",
        path={"provider": "sandbox"},
        raw=raw,
        headers={"Sandbox-Signature": header},
    )
    expect(response, 200, "callback")


def refund(d: Driver, user: User, order: dict[str, Any]) -> None:
    body = {"refund_id": str(uuid.uuid4()), "amount": order["amount"]}
    path = {"order_id": order["order_id"]}
    expect(signed(d, user, "POST", "/orders/{order_id}/refunds", path, body), 201, "refund")


@contextmanager
def clock(shift: float) -> Iterator[None]:
    """``time.time()`` runs ``shift`` seconds off for everything in the block (orders made in the past)."""
    real = time.time
    with mock.patch("time.time", side_effect=lambda: real() + shift):
        yield


def _shared_user(d: Driver) -> User:
    user = getattr(d, "_orders_user", None)
    if user is None:
        user = d.active_user()
        d._orders_user = user  # type: ignore[attr-defined]
    return user


def _create(d: Driver, n: int) -> list[Call]:
    user = _shared_user(d)
    return [lambda: d.pending_orders.append(create_order(d, user)) for _ in range(n)]


def _pending(d: Driver, n: int) -> list[dict[str, Any]]:
    """Pending orders: those the create operation made first, then new ones."""
    user = _shared_user(d)
    while len(d.pending_orders) < n:
        d.pending_orders.append(create_order(d, user))
    taken, d.pending_orders[:] = d.pending_orders[:n], d.pending_orders[n:]
    return taken


def _callback(d: Driver, n: int) -> list[Call]:
    secret = _webhook_secret(d)
    orders = _pending(d, n)
    bodies = [paid_webhook(o) for o in orders]

    def pay(order: dict[str, Any], raw: bytes) -> None:
        deliver(d, raw, secret)
        d.paid_orders.append(order)

    return [lambda o=o, b=b: pay(o, b) for o, b in zip(orders, bodies, strict=True)]


def _refund(d: Driver, n: int) -> list[Call]:
    user = _shared_user(d)
    if len(d.paid_orders) < n:
        secret = _webhook_secret(d)
        for order in _pending(d, n - len(d.paid_orders)):
            deliver(d, paid_webhook(order), secret)
            d.paid_orders.append(order)
    orders, d.paid_orders[:] = d.paid_orders[:n], d.paid_orders[n:]
    return [lambda o=o: refund(d, user, o) for o in orders]


def expired_orders(d: Driver, k: int) -> None:
    """``k`` orders created an hour ago with the default 15-minute expiry: due for the sweeper."""
    user = _shared_user(d)
    with clock(-3600):
        for _ in range(k):
            create_order(d, user)


def sweep(d: Driver) -> dict[str, Any]:
    result: dict[str, Any] = d.stack.invoke("SweeperFunction", {"source": "aws.scheduler", "detail": {}})
    return result


def report(d: Driver, day: str | None = None) -> dict[str, Any]:
    day = day or datetime.now(UTC).strftime("%Y-%m-%d")
    result: dict[str, Any] = d.stack.invoke("StatsFunction", {"date": day})
    return result


SWEEP_BATCH = 5


def _sweep_over(d: Driver, k: int) -> Staged:
    def run() -> None:
        result = sweep(d)
        if result.get("expired", 0) < k:
            raise FlowError(f"the sweeper expired {result.get('expired')} of {k} due orders: {result}")

    return Staged(setup=lambda: expired_orders(d, k), run=run)


def _sweep(d: Driver, n: int) -> list[Call]:
    return [_sweep_over(d, SWEEP_BATCH) for _ in range(n)]


def _report(d: Driver, n: int) -> list[Call]:
    return [lambda: report(d) for _ in range(n)]


ORDERS = [
    Operation(
        "create order",
        ("OrdersFunction",),
        _create,
        5,
        "claim the request's nonce (a conditional put: a replayed signature is refused); the idempotency record "
        "(Powertools: lock, then the stored answer) so concurrent or repeated creates call the provider once and "
        "answer the same; read the order id before calling the provider (a replay after the record expired must "
        "not create a second payment); one TransactWriteItems for the order, its history entry and the day's "
        "counters. The X-Signature key is derived from the session's key version that the authorizer read in the "
        "same request and passed in its context.",
    ),
    Operation(
        "callback",
        ("CallbacksFunction",),
        _callback,
        3,
        "read the order (its state, amount and currency to check the event against), then one TransactWriteItems: "
        "the state change conditioned on the version read, the event marker (a repeated event id cannot commit "
        "twice), the history entry and the counters; the order.paid domain event is built from the committed "
        "change; the router learns the outcome (one UpdateItem that only ADDs, paycore/data/routing.py). "
        "Kept over it: a read of the event marker before anything, the cheap answer to the duplicates "
        "providers send (deliveries are at least once, and retried for days): a duplicate then costs that one "
        "read, instead of the order's read and a 4-item transaction that the marker's condition cancels.",
        kept=1,
    ),
    Operation(
        "refund",
        ("OrdersFunction",),
        _refund,
        6,
        "claim the nonce; the idempotency lock and answer (2); read the order (refundable amount); one "
        "TransactWriteItems reserving the refund against the order before the provider is called; one write of "
        "the provider's answer on the refund. The answer is built from what was written (no read back); the "
        "refund id is read only when the transaction or the order's state refuses (a retry of the same refund).",
    ),
]

JOBS = [
    Operation(
        "sweep per expired order",
        ("SweeperFunction", "OrdersFunction"),
        _sweep,
        3,
        "per order found due: a consistent read of the order (the index is eventually consistent), one "
        "TransactWriteItems moving it pending to expired with its history and counters, conditioned on its "
        "state (the provider is asked in between), and the router's outcome (one UpdateItem that only ADDs; "
        "once per segment and epoch it is refused and rebased, which is why runs can differ). "
        "The index pages (a Query per shard, 8 shards, for the due "
        "orders and again for the overdue ones) are shared by the whole run, so the figure is (a run over "
        f"{SWEEP_BATCH} minus an empty run) divided by {SWEEP_BATCH}. The order.expired event is built from the "
        "committed change.",
        warm=False,
        per=SWEEP_BATCH,
        baseline=lambda d: _sweep_over(d, 0),
    ),
    Operation(
        "daily report",
        ("StatsFunction",),
        _report,
        6,
        "one Query of the day's counters per UTC date the local day touches (one here, REPORT_TIMEZONE=UTC; two "
        "elsewhere), one Query of the day's anomalies per registered provider (4: alipay, sandbox, stripe, "
        "wechatpay), and one conditional put of the report; the ops topic gets it in one SNS publish. "
        "Nothing grows with the number of orders.",
        warm=False,
    ),
]

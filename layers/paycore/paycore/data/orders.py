"""Orders in DynamoDB: one partition per order, every change one conditional transaction.

Item layout of the orders table (docs/orders.md, "Data model", has the same table):

============================  ==========================  =========================================
pk                            sk                          what
============================  ==========================  =========================================
``ORDER#<order_id>``          ``ORDER``                   the order (status, money, payment, version)
``ORDER#<order_id>``          ``HIST#<ms>#<suffix>``      one history entry per transition/refund/anomaly
``ORDER#<order_id>``          ``REFUND#<refund_id>``      one refund (client's or automatic)
``EVENT#<provider>#<id>``     ``EVENT``                   a provider event seen (dedupe; TTL 7 days)
``ANOMALY#<provider>``        ``<ms>#<event_id>``         an event for an order we do not have
``STATS#<yyyy-mm-dd>``        ``<hhmm>#<channel>#<cur>``  counters per UTC quarter hour, channel, currency
============================  ==========================  =========================================

Indexes: ``by_user`` (``user_pk``, ``created_sk``) and ``by_user_status`` (``user_status``,
``created_sk``) for ``GET /orders``; ``pending_by_expiry`` (``pending_shard``,
``pending_expires_at``) is sparse: the two attributes exist only while the order is pending, so
the sweeper reads exactly the orders it may have to expire. ``refunds_unsubmitted``
(``unsubmitted``, ``unsubmitted_at``, keys only) is sparse too: a refund is in it from its
creation until the provider has its id or the refund is final, so the sweeper's refund
reconciler reads exactly the refunds whose submission may have been lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import QueryError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from paycore.config import order_settings
from paycore.data.base import bind, get_or_none, is_condition_failure, transact
from paycore.errors import DataAccessError

ORDER_SK = "ORDER"
EVENT_SK = "EVENT"
PENDING_SHARDS = 8  # spreads the sparse index's writes; the sweeper queries each shard
EVENT_MARKER_DAYS = 7  # longer than any provider's retry window (Stripe: 3 days)
# The one hash key of the sparse refunds_unsubmitted index. One key value takes up to 1,000 index
# writes a second (DynamoDB's per-partition limit, docs.aws.amazon.com/amazondynamodb/latest/
# developerguide/bp-partition-key-design.html), i.e. 500 refunds a second (2 index writes each).
UNSUBMITTED = "UNSUBMITTED"


def order_pk(order_id: str) -> str:
    return f"ORDER#{order_id}"


def pending_shard(order_id: str) -> str:
    return f"PENDING#{int(hashlib.sha256(order_id.encode()).hexdigest(), 16) % PENDING_SHARDS}"


class ByUserIndex(GlobalSecondaryIndex["OrderItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_pk = UnicodeAttribute(hash_key=True)
    created_sk = UnicodeAttribute(range_key=True)


class ByUserStatusIndex(GlobalSecondaryIndex["OrderItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "by_user_status"
        projection = AllProjection()

    user_status = UnicodeAttribute(hash_key=True)
    created_sk = UnicodeAttribute(range_key=True)


class PendingByExpiryIndex(GlobalSecondaryIndex["OrderItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "pending_by_expiry"
        projection = AllProjection()

    pending_shard = UnicodeAttribute(hash_key=True)
    pending_expires_at = NumberAttribute(range_key=True)


class RefundsUnsubmittedIndex(GlobalSecondaryIndex["RefundItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "refunds_unsubmitted"
        projection = KeysOnlyProjection()

    unsubmitted = UnicodeAttribute(hash_key=True)
    unsubmitted_at = NumberAttribute(range_key=True)


class OrderItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "OrdersTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=ORDER_SK)
    order_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    status = UnicodeAttribute()
    version = NumberAttribute(default=1)
    amount = NumberAttribute()
    currency = UnicodeAttribute()
    channel = UnicodeAttribute()
    provider = UnicodeAttribute()
    subject = UnicodeAttribute()
    items_json = UnicodeAttribute(null=True)
    provider_payment_id = UnicodeAttribute(null=True)
    qr_code = UnicodeAttribute(null=True)
    checkout_url = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    expires_at = NumberAttribute()
    paid_at = NumberAttribute(null=True)
    closed_at = NumberAttribute(null=True)
    refundable_amount = NumberAttribute(default=0)  # paid - refunded - refunds in flight
    refunded_amount = NumberAttribute(default=0)  # refunds the provider confirmed
    refund_pending_amount = NumberAttribute(default=0)
    request_hash = UnicodeAttribute()
    signature = UnicodeAttribute(null=True)
    user_pk = UnicodeAttribute()
    user_status = UnicodeAttribute()
    created_sk = UnicodeAttribute()
    pending_shard = UnicodeAttribute(null=True)
    pending_expires_at = NumberAttribute(null=True)
    # Set when the router chose the channel (channel "auto"; docs/routing.md): the segment, the
    # probability of that choice and the policy's version, for off-policy evaluation.
    routing_segment = UnicodeAttribute(null=True)
    routing_propensity = NumberAttribute(null=True)
    routing_policy = UnicodeAttribute(null=True)

    by_user = ByUserIndex()
    by_user_status = ByUserStatusIndex()
    pending_by_expiry = PendingByExpiryIndex()


class HistoryItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "OrdersTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    at = NumberAttribute()
    from_status = UnicodeAttribute(null=True)
    to_status = UnicodeAttribute(null=True)
    amount = NumberAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    provider_event_id = UnicodeAttribute(null=True)
    refund_id = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)


class RefundItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "OrdersTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    refund_id = UnicodeAttribute()
    order_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    amount = NumberAttribute()
    currency = UnicodeAttribute()
    status = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    automatic = BooleanAttribute(default=False)
    provider_refund_id = UnicodeAttribute(null=True)
    # the payment to refund when it is not the order's own (a late payment under another id)
    provider_payment_id = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    # Set while the refund is pending without a provider refund id (the sparse index's keys):
    # since when, or since the last failed submission. submit_attempts counts the failures.
    unsubmitted = UnicodeAttribute(null=True)
    unsubmitted_at = NumberAttribute(null=True)
    submit_attempts = NumberAttribute(null=True)

    refunds_unsubmitted = RefundsUnsubmittedIndex()


class EventMarkerItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "OrdersTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=EVENT_SK)
    provider = UnicodeAttribute()
    event_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    order_id = UnicodeAttribute()
    outcome = UnicodeAttribute()
    received_at = NumberAttribute()
    purge_at = NumberAttribute()  # the table's TTL attribute


class AnomalyItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "OrdersTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    provider = UnicodeAttribute()
    event_id = UnicodeAttribute()
    order_id = UnicodeAttribute()
    reason = UnicodeAttribute()
    amount = NumberAttribute()
    currency = UnicodeAttribute()
    at = NumberAttribute()


class CounterItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "OrdersTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    created_count = NumberAttribute(default=0)
    created_amount = NumberAttribute(default=0)
    paid_count = NumberAttribute(default=0)
    paid_amount = NumberAttribute(default=0)
    failed_count = NumberAttribute(default=0)
    expired_count = NumberAttribute(default=0)
    cancelled_count = NumberAttribute(default=0)
    refunded_count = NumberAttribute(default=0)
    refunded_amount = NumberAttribute(default=0)
    late_payment_count = NumberAttribute(default=0)
    late_payment_amount = NumberAttribute(default=0)
    anomaly_count = NumberAttribute(default=0)


COUNTER_FIELDS = frozenset(
    name for name, attr in CounterItem.get_attributes().items() if isinstance(attr, NumberAttribute)
)


def counter_key(at: float, channel: str, currency: str) -> tuple[str, str]:
    """The counter item of a UTC quarter hour: any report timezone (all are whole quarter hours
    from UTC) sums whole buckets of one or two days' partitions."""
    moment = datetime.fromtimestamp(at, tz=UTC)
    quarter = moment.minute - moment.minute % 15
    return f"STATS#{moment:%Y-%m-%d}", f"{moment:%H}{quarter:02d}#{channel}#{currency}"


# ------------------------------------------------------------------ binding


def _bind() -> None:
    table = order_settings().table
    for model in (OrderItem, HistoryItem, RefundItem, EventMarkerItem, AnomalyItem, CounterItem):
        bind(model, table)


def history_sk(at: float, suffix: str) -> str:
    return f"HIST#{int(at * 1000):015d}#{suffix}"


# ------------------------------------------------------------------ reads


def get_order(order_id: str) -> OrderItem | None:
    _bind()
    item: OrderItem | None = get_or_none(OrderItem, order_pk(order_id), ORDER_SK, "order")
    return item


def get_refund(order_id: str, refund_id: str) -> RefundItem | None:
    _bind()
    item: RefundItem | None = get_or_none(RefundItem, order_pk(order_id), f"REFUND#{refund_id}", "refund")
    return item


def list_refunds(order_id: str) -> list[RefundItem]:
    _bind()
    return list(RefundItem.query(order_pk(order_id), RefundItem.sk.startswith("REFUND#"), consistent_read=True))


def list_history(order_id: str) -> list[HistoryItem]:
    _bind()
    return list(HistoryItem.query(order_pk(order_id), HistoryItem.sk.startswith("HIST#"), consistent_read=True))


def get_event_marker(provider: str, event_id: str) -> EventMarkerItem | None:
    _bind()
    item: EventMarkerItem | None = get_or_none(EventMarkerItem, f"EVENT#{provider}#{event_id}", EVENT_SK, "event")
    return item


@dataclass(frozen=True)
class Page:
    orders: list[OrderItem]
    last_created_sk: str | None  # set when more orders may follow


def list_user_orders(user_id: str, status: str | None, limit: int, after_created_sk: str | None) -> Page:
    """The user's orders, newest first, ``limit`` at most, starting after ``after_created_sk``.

    The start key is rebuilt here from the caller's own user id, so a cursor can only ever move
    within the caller's orders.
    """
    _bind()
    index: Any = OrderItem.by_user_status if status else OrderItem.by_user
    hash_value = f"USER#{user_id}#{status}" if status else f"USER#{user_id}"
    start: dict[str, Any] | None = None
    if after_created_sk is not None:
        order_id = after_created_sk.rsplit("#", 1)[-1]
        start = {
            "pk": {"S": order_pk(order_id)},
            "sk": {"S": ORDER_SK},
            "created_sk": {"S": after_created_sk},
            ("user_status" if status else "user_pk"): {"S": hash_value},
        }
    try:
        result = index.query(hash_value, scan_index_forward=False, limit=limit, last_evaluated_key=start)
        orders = list(result)
    except QueryError as exc:
        raise DataAccessError("could not list the orders") from exc
    more = result.last_evaluated_key is not None and len(orders) == limit
    return Page(orders=orders, last_created_sk=orders[-1].created_sk if more and orders else None)


@dataclass(frozen=True)
class PendingPage:
    orders: list[OrderItem]
    next_key: dict[str, Any] | None  # where the shard's next page starts; None when it is done


def pending_page(
    shard: int,
    *,
    due_by: int | None = None,
    not_due_at: int | None = None,
    limit: int,
    start_key: dict[str, Any] | None = None,
) -> PendingPage:
    """One page (``limit`` items at most) of a shard of the sparse pending index, soonest expiry
    first: orders due by ``due_by`` (``pending_expires_at <= due_by``), or orders not due yet at
    ``not_due_at`` (``pending_expires_at > not_due_at``). One index Query, never a Scan."""
    _bind()
    if (due_by is None) == (not_due_at is None):
        raise ValueError("give exactly one of due_by and not_due_at")
    attr = OrderItem.pending_expires_at
    condition = attr <= due_by if due_by is not None else attr > not_due_at
    try:
        result = OrderItem.pending_by_expiry.query(
            f"PENDING#{shard}", condition, limit=limit, page_size=limit, last_evaluated_key=start_key
        )
        orders = list(result)
    except QueryError as exc:
        raise DataAccessError("could not read the pending orders index") from exc
    return PendingPage(orders=orders, next_key=result.last_evaluated_key)


def pending_orders_due(shard: int, now: int, limit: int = 100) -> Iterator[OrderItem]:
    """Pending orders of one shard whose expiry has passed: the first page of :func:`pending_page`."""
    yield from pending_page(shard, due_by=now, limit=limit).orders


def count_pending_due(due_by: int, cap: int) -> int:
    """How many pending orders are due by ``due_by`` over every shard, counting at most ``cap``
    (index Queries that return keys only; they read at most ``cap`` items)."""
    _bind()
    counted = 0
    for shard in range(PENDING_SHARDS):
        if counted >= cap:
            break
        try:
            result = OrderItem.pending_by_expiry.query(
                f"PENDING#{shard}",
                OrderItem.pending_expires_at <= due_by,
                limit=cap - counted,
                page_size=min(cap - counted, 1000),
                attributes_to_get=["pk", "sk", "pending_shard", "pending_expires_at"],
            )
            counted += sum(1 for _ in result)
        except QueryError as exc:
            raise DataAccessError("could not count the pending orders") from exc
    return counted


def unsubmitted_refunds(before: int, limit: int) -> list[tuple[str, str]]:
    """``(order_id, refund_id)`` of at most ``limit`` refunds pending without a provider refund id
    since ``before`` or earlier, the longest waiting first: one Query of the sparse
    ``refunds_unsubmitted`` index (keys only, eventually consistent: re-read each refund)."""
    _bind()
    try:
        result = RefundItem.refunds_unsubmitted.query(
            UNSUBMITTED, RefundItem.unsubmitted_at <= before, limit=limit, page_size=limit
        )
        keys = [(item.pk, item.sk) for item in result]
    except QueryError as exc:
        raise DataAccessError("could not read the unsubmitted refunds index") from exc
    return [(pk.removeprefix("ORDER#"), sk.removeprefix("REFUND#")) for pk, sk in keys]


# ------------------------------------------------------------------ writes


def create_order(order: OrderItem, history: HistoryItem, counters: Mapping[str, int]) -> bool:
    """Put a new order with its first history entry and counters; False if the order id exists."""
    _bind()
    pk, sk = counter_key(float(order.created_at), order.channel, order.currency)

    def build(tx: TransactWrite) -> None:
        tx.save(order, condition=OrderItem.pk.does_not_exist())
        tx.save(history, condition=HistoryItem.pk.does_not_exist())
        tx.update(CounterItem(pk, sk), actions=_counter_actions(counters))

    return transact("create the order", build)


@dataclass
class RefundChange:
    """A refund item written with the order: created (``create``) or moved between statuses."""

    item: RefundItem
    create: bool = False
    from_status: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class OrderChange:
    """Everything one event or request changes, applied as one TransactWriteItems.

    The order update is conditional on its version (and status, when ``from_statuses`` is set),
    so two writers racing on one order end with exactly one of them applied.
    """

    order: OrderItem
    history: HistoryItem
    from_statuses: tuple[str, ...] = ()
    to_status: str | None = None
    set_fields: dict[str, Any] = field(default_factory=dict)
    add_fields: dict[str, int] = field(default_factory=dict)
    min_refundable: int | None = None  # condition: refundable_amount >= this
    leave_pending_index: bool = False
    refund: RefundChange | None = None
    marker: EventMarkerItem | None = None
    anomaly: AnomalyItem | None = None
    counters: dict[str, int] = field(default_factory=dict)
    at: float = 0.0


def _counter_actions(counters: Mapping[str, int]) -> list[Any]:
    unknown = set(counters) - COUNTER_FIELDS
    if unknown:
        raise ValueError(f"unknown counters {sorted(unknown)}")
    return [getattr(CounterItem, name).add(value) for name, value in sorted(counters.items())]


def apply_change(change: OrderChange) -> bool:
    """Commit ``change``; False when a condition failed (another writer won, or a marker exists)."""
    _bind()
    order = change.order
    condition: Condition = OrderItem.version == order.version
    if change.from_statuses:
        condition &= OrderItem.status.is_in(*change.from_statuses)
    if change.min_refundable is not None:
        condition &= OrderItem.refundable_amount >= change.min_refundable

    actions: list[Any] = [OrderItem.version.add(1), OrderItem.updated_at.set(int(change.at))]
    if change.to_status is not None:
        actions += [
            OrderItem.status.set(change.to_status),
            OrderItem.user_status.set(f"USER#{order.user_id}#{change.to_status}"),
        ]
    for name, value in change.set_fields.items():
        actions.append(getattr(OrderItem, name).set(value))
    for name, value in change.add_fields.items():
        actions.append(getattr(OrderItem, name).add(value))
    if change.leave_pending_index:
        actions += [OrderItem.pending_shard.remove(), OrderItem.pending_expires_at.remove()]

    def build(tx: TransactWrite) -> None:
        tx.update(OrderItem(order.pk, ORDER_SK), actions=actions, condition=condition)
        tx.save(change.history, condition=HistoryItem.pk.does_not_exist())
        if change.marker is not None:
            tx.save(change.marker, condition=EventMarkerItem.pk.does_not_exist())
        if change.anomaly is not None:
            tx.save(change.anomaly)
        if change.refund is not None:
            _add_refund(tx, change.refund)
        if change.counters:
            pk, sk = counter_key(change.at, order.channel, order.currency)
            tx.update(CounterItem(pk, sk), actions=_counter_actions(change.counters))

    return transact("apply the order change", build)


def applied(change: OrderChange) -> OrderItem:
    """The order as :func:`apply_change` leaves it once ``change`` has committed, without reading it.

    The commit was conditioned on the order's ``version``, and every write of an order goes
    through :func:`apply_change` and increments it, so the stored order is exactly the one read
    plus the update :func:`apply_change` made: the same actions, applied here to a copy.
    """
    order = change.order
    after = OrderItem.from_raw_data(order.to_dynamodb_dict())
    after.version = int(order.version) + 1
    after.updated_at = int(change.at)
    if change.to_status is not None:
        after.status = change.to_status
        after.user_status = f"USER#{order.user_id}#{change.to_status}"
    for name, value in change.set_fields.items():
        setattr(after, name, value)
    for name, value in change.add_fields.items():
        setattr(after, name, int(getattr(after, name) or 0) + value)
    if change.leave_pending_index:
        after.pending_shard = None
        after.pending_expires_at = None
    return after


def _add_refund(tx: TransactWrite, refund: RefundChange) -> None:
    if refund.create:
        item = refund.item
        if item.status == "pending" and not item.provider_refund_id:  # into the reconciler's index
            item.unsubmitted, item.unsubmitted_at = UNSUBMITTED, int(item.created_at)
        tx.save(item, condition=RefundItem.pk.does_not_exist())
        return
    actions: list[Any] = [getattr(RefundItem, name).set(value) for name, value in refund.fields.items()]
    if refund.fields.get("status", "pending") != "pending":  # final: out of the reconciler's index
        actions += _UNSUBMITTED_REMOVED
    condition: Condition = RefundItem.pk.exists()
    if refund.from_status is not None:
        condition &= RefundItem.status == refund.from_status
    tx.update(RefundItem(refund.item.pk, refund.item.sk), actions=actions, condition=condition)


def record_event_only(
    marker: EventMarkerItem, history: HistoryItem | None = None, anomaly: AnomalyItem | None = None
) -> bool:
    """Record an event that changes no order state (a duplicate payment, a stale event, an
    anomaly on an unknown order); False when the event was already recorded."""
    _bind()

    def build(tx: TransactWrite) -> None:
        tx.save(marker, condition=EventMarkerItem.pk.does_not_exist())
        if history is not None:
            tx.save(history, condition=HistoryItem.pk.does_not_exist())
        if anomaly is not None:
            tx.save(anomaly)

    return transact("record the provider event", build)


_UNSUBMITTED_REMOVED: list[Any] = [RefundItem.unsubmitted.remove(), RefundItem.unsubmitted_at.remove()]


def update_refund_provider_id(order_id: str, refund_id: str, provider_refund_id: str) -> None:
    """Remember the provider's id of a refund: the provider has it, so the refund leaves the
    reconciler's index (no state change: the webhook or the synchronous answer settles it)."""
    _bind()
    item = RefundItem(order_pk(order_id), f"REFUND#{refund_id}")
    try:
        item.update(
            actions=[RefundItem.provider_refund_id.set(provider_refund_id), *_UNSUBMITTED_REMOVED],
            condition=RefundItem.pk.exists(),
        )
    except UpdateError as exc:
        if not is_condition_failure(exc):
            raise DataAccessError("could not update the refund") from exc


def defer_refund_submission(order_id: str, refund_id: str, now: int) -> None:
    """A submission failed: the refund goes to the back of the reconciler's index (``unsubmitted_at``
    = now) and its attempts are counted. Only while it is still pending without a provider id."""
    _bind()
    item = RefundItem(order_pk(order_id), f"REFUND#{refund_id}")
    condition = (
        (RefundItem.status == "pending")
        & RefundItem.provider_refund_id.does_not_exist()
        & RefundItem.unsubmitted.exists()
    )
    try:
        item.update(
            actions=[RefundItem.unsubmitted_at.set(now), RefundItem.submit_attempts.add(1)],
            condition=condition,
        )
    except UpdateError as exc:
        if not is_condition_failure(exc):
            raise DataAccessError("could not update the refund") from exc

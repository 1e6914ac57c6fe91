"""The order API's operations: create (idempotent), get, list, cancel, refund.

Handlers verify the caller and the request signature, then call one function here. Every write
goes through ``paycore.data.orders`` as one conditional transaction; provider calls go through
the channel's adapter (``paycore.providers``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from paycore import money
from paycore.config import order_settings
from paycore.data import orders as store
from paycore.errors import Conflict, InvalidRequest, NotFound, ProviderUnavailable
from paycore.idempotency import run_once
from paycore.observability import Metric, count, log_keys, logger
from paycore.orders import callbacks, notify
from paycore.orders.signing import sign_order
from paycore.orders.states import REFUNDABLE, OrderStatus
from paycore.providers import get_provider
from paycore.providers.base import PaymentRequest, PaymentStatus, ProviderError

if TYPE_CHECKING:  # the API's models (pydantic) load where answers are built: the sweeper builds none
    from paycore.channels import Channel
    from paycore.routing.service import Routed
    from paycore.schemas.orders import CreateOrderIn, OrderList, OrderOut, RefundIn

MAX_RETRIES = 8


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(float(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(float(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ views


def refund_out(item: store.RefundItem) -> dict[str, Any]:
    return {
        "refund_id": item.refund_id,
        "order_id": item.order_id,
        "amount": int(item.amount),
        "currency": item.currency,
        "status": item.status,
        "reason": item.reason,
        "automatic": bool(item.automatic),
        "created_at": _iso(item.created_at),
        "updated_at": _iso(item.updated_at),
    }


def order_out(order: store.OrderItem, refunds: list[store.RefundItem] | None = None) -> OrderOut:
    from paycore.schemas.orders import OrderLine, OrderOut, PaymentOut

    items = [OrderLine(**line) for line in json.loads(order.items_json)] if order.items_json else None
    return OrderOut(
        order_id=order.order_id,
        status=order.status,  # type: ignore[arg-type]
        amount=int(order.amount),
        currency=order.currency,
        channel=order.channel,
        subject=order.subject,
        items=items,
        payment=PaymentOut(qr_code=order.qr_code, checkout_url=order.checkout_url, expires_at=_iso(order.expires_at)),
        expires_at=_iso(order.expires_at),
        created_at=_iso(order.created_at),
        updated_at=_iso(order.updated_at),
        paid_at=iso(order.paid_at),
        refunded_amount=int(order.refunded_amount),
        refund_pending_amount=int(order.refund_pending_amount),
        refunds=None if refunds is None else [refund_out(r) for r in refunds],  # type: ignore[misc]
        signature=order.signature,
    )


# ------------------------------------------------------------------ create


def _request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _choose_channel(request: CreateOrderIn, order_id: str) -> tuple[Channel, Routed | None]:
    """The requested channel, or for ``"auto"`` the router's choice (with its logged decision)."""
    from paycore import channels

    if not money.is_currency(request.currency):
        raise InvalidRequest(f"currency {request.currency!r} is not an ISO 4217 currency code", code="invalid_currency")
    if request.channel == "auto":
        routed = channels.route_auto(request.amount, request.currency, decision_id=order_id)
        return channels.get_channel(routed.channel_id), routed
    found = [c for c in channels.load_channels() if c.id == request.channel]
    if not found:
        raise InvalidRequest(f"unknown channel {request.channel!r}", code="unknown_channel")
    channel = found[0]
    if not channel.available:
        raise InvalidRequest(f"channel {channel.id!r} is not taking payments now", code="channel_unavailable")
    if not channel.accepts(request.amount, request.currency):
        low, high = channel.limits.get(request.currency, (1, money.MAX_MINOR_UNITS))
        if request.currency not in channel.currencies:
            raise InvalidRequest(
                f"channel {channel.id!r} does not take {request.currency}", code="unsupported_currency"
            )
        raise InvalidRequest(
            f"amount must be between {low} and {high} {request.currency} minor units on channel {channel.id!r}",
            code="amount_out_of_range",
        )
    return channel, None


def _replay_existing(existing: store.OrderItem, user_id: str, request_hash: str) -> dict[str, Any]:
    """The order id is taken: the caller's own identical order (a retry after a timeout) is
    answered as created; anything else is refused."""
    if existing.user_id != user_id:
        raise Conflict("This order_id is already in use.", code="order_exists")
    if existing.request_hash != request_hash:
        raise InvalidRequest(
            "This order_id was already used with a different request body.", code="idempotency_mismatch"
        )
    return order_out(existing).model_dump(mode="json")


def create_order(
    user_id: str, request: CreateOrderIn, *, base_url: str, lambda_context: Any = None, now: float | None = None
) -> dict[str, Any]:
    """POST /orders: idempotent on (caller, order_id); returns the order as JSON-ready data."""
    order_id = request.order_id.lower()
    payload = request.model_dump(mode="json", exclude={"order_id"})
    with log_keys(order_id=order_id):
        return run_once(
            "orders.create",
            key={"user_id": user_id, "order_id": order_id},
            payload=payload,
            work=lambda: _create(user_id, order_id, request, payload, base_url, time.time() if now is None else now),
            lambda_context=lambda_context,
        )


def _create(
    user_id: str, order_id: str, request: CreateOrderIn, payload: dict[str, Any], base_url: str, now: float
) -> dict[str, Any]:
    request_hash = _request_hash(payload)
    existing = store.get_order(order_id)
    if existing is not None:
        return _replay_existing(existing, user_id, request_hash)
    channel, routed = _choose_channel(request, order_id)
    expires_in = request.expires_in or order_settings().default_expires_in
    expires_at = int(now) + expires_in
    provider = get_provider(channel.provider)
    try:
        created = provider.create_payment(
            PaymentRequest(
                order_id=order_id,
                amount=request.amount,
                currency=request.currency,
                subject=request.subject,
                expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
                notify_url=f"{base_url.rstrip('/')}/callbacks/{channel.provider}",
                channel={"id": channel.id, "provider": channel.provider, "methods": list(channel.methods)},
            )
        )
    except ProviderError as exc:
        logger.warning(
            "provider could not create the payment", extra={"provider": exc.provider, "retryable": exc.retryable}
        )
        if exc.retryable:
            raise ProviderUnavailable() from exc
        raise Conflict("The payment provider refused this payment.", code="provider_refused") from exc

    created_ms = int(now * 1000)
    order = store.OrderItem(
        store.order_pk(order_id),
        store.ORDER_SK,
        order_id=order_id,
        user_id=user_id,
        status=OrderStatus.PENDING.value,
        version=1,
        amount=request.amount,
        currency=request.currency,
        channel=channel.id,
        provider=channel.provider,
        subject=request.subject,
        items_json=json.dumps([i.model_dump() for i in request.items]) if request.items else None,
        provider_payment_id=created.provider_payment_id,
        qr_code=created.qr_code,
        checkout_url=created.checkout_url,
        created_at=int(now),
        updated_at=int(now),
        expires_at=expires_at,
        request_hash=request_hash,
        user_pk=f"USER#{user_id}",
        user_status=f"USER#{user_id}#{OrderStatus.PENDING.value}",
        created_sk=f"{created_ms:013d}#{order_id}",
        pending_shard=store.pending_shard(order_id),
        pending_expires_at=expires_at,
        routing_segment=routed.segment if routed else None,
        routing_propensity=routed.propensity if routed else None,
        routing_policy=routed.policy if routed else None,
    )
    order.signature = sign_order(order)
    history = store.HistoryItem(
        order.pk,
        store.history_sk(now, "created"),
        kind="created",
        at=int(now),
        to_status=OrderStatus.PENDING.value,
        amount=request.amount,
        currency=request.currency,
    )
    if not store.create_order(order, history, {"created_count": 1, "created_amount": request.amount}):
        existing = store.get_order(order_id)
        if existing is None:  # pragma: no cover - a cancelled transaction always leaves the winner
            raise Conflict("The order could not be created; retry.", code="request_in_progress")
        return _replay_existing(existing, user_id, request_hash)
    logger.info("order created", extra={"order_id": order_id, "channel": channel.id})
    count(Metric.ORDERS_CREATED, channel=channel.id)
    return order_out(order).model_dump(mode="json")


# ------------------------------------------------------------------ reads


def own_order(user_id: str, order_id: str) -> store.OrderItem:
    order = store.get_order(order_id.lower())
    if order is None or order.user_id != user_id:
        raise NotFound("No such order.", code="order_not_found")
    return order


def get_order(user_id: str, order_id: str) -> OrderOut:
    order = own_order(user_id, order_id)
    return order_out(order, store.list_refunds(order.order_id))


_CURSOR_KEY = re.compile(r"^\d{13}#[0-9a-f-]{36}$")


def encode_cursor(created_sk: str, status: str | None) -> str:
    raw = json.dumps({"k": created_sk, "s": status}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, status: str | None) -> str:
    """The position a cursor encodes, checked against its shape and the current filter."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        key = data["k"]
        same_filter = data["s"] == status
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidRequest("The cursor is not valid.", code="invalid_cursor") from exc
    if not isinstance(key, str) or not _CURSOR_KEY.match(key) or not same_filter:
        raise InvalidRequest("The cursor is not valid for this query.", code="invalid_cursor")
    return key


def list_orders(user_id: str, status: str | None, limit: int, cursor: str | None) -> OrderList:
    after = decode_cursor(cursor, status) if cursor else None
    page = store.list_user_orders(user_id, status, limit, after)
    from paycore.schemas.orders import OrderList

    return OrderList(
        orders=[order_out(o) for o in page.orders],
        next_cursor=encode_cursor(page.last_created_sk, status) if page.last_created_sk else None,
    )


# ------------------------------------------------------------------ cancel and expire


def close_order(order: store.OrderItem, target: OrderStatus, at: float) -> store.OrderItem:
    """Move a pending order to ``cancelled`` or ``expired``, closing its payment at the provider
    first. Returns the order as it is afterwards: ``target``, or whatever another writer made it
    (``paid`` when the provider says the payer won the race; the payment is then recorded).

    Raises ProviderUnavailable when the provider cannot be reached (nothing changed).
    """
    if order.status != OrderStatus.PENDING:
        return order
    provider = get_provider(order.provider)
    try:
        state = provider.close_payment(order.order_id, order.provider_payment_id)
    except ProviderError as exc:
        raise ProviderUnavailable() from exc  # nothing changed; closing again is safe
    if state.status == PaymentStatus.PAID:
        callbacks.apply_provider_state(order, state, f"close:{order.order_id}", now=at)
        return _reload(order.order_id)
    for _ in range(MAX_RETRIES):
        if order.status != OrderStatus.PENDING:
            return order
        change = store.OrderChange(
            order=order,
            history=store.HistoryItem(
                order.pk,
                store.history_sk(at, target.value),
                kind=target.value,
                at=int(at),
                from_status=OrderStatus.PENDING.value,
                to_status=target.value,
            ),
            from_statuses=(OrderStatus.PENDING.value,),
            to_status=target.value,
            set_fields={"closed_at": int(at)},
            leave_pending_index=True,
            counters={f"{target.value}_count": 1},
            at=at,
        )
        if store.apply_change(change):
            closed = store.applied(change)  # what the commit wrote; no need to read it back
            notify.publish(f"order.{target.value}", callbacks.event_detail(closed, at))
            return closed
        order = _reload(order.order_id)
    raise Conflict("The order is changing; retry.", code="request_in_progress", headers={"Retry-After": "1"})


def _reload(order_id: str) -> store.OrderItem:
    order = store.get_order(order_id)
    if order is None:  # pragma: no cover - orders are never deleted
        raise NotFound("No such order.", code="order_not_found")
    return order


def cancel_order(user_id: str, order_id: str, now: float | None = None) -> OrderOut:
    """POST /orders/{order_id}/cancel: cancelled (again: the same answer), else 409 invalid_state."""
    order = own_order(user_id, order_id)
    if order.status == OrderStatus.CANCELLED:
        return order_out(order)
    if order.status != OrderStatus.PENDING:
        raise Conflict(f"An order that is {order.status} cannot be cancelled.", code="invalid_state")
    closed = close_order(order, OrderStatus.CANCELLED, time.time() if now is None else now)
    if closed.status != OrderStatus.CANCELLED:
        raise Conflict(f"The order is {closed.status} and can no longer be cancelled.", code="invalid_state")
    return order_out(closed)


def expire_order(order_id: str, now: float | None = None, *, current: store.OrderItem | None = None) -> str:
    """For the sweeper: expire a pending order whose time has passed; returns its status afterwards
    (``expired``, or ``paid`` when the payment landed first, or whatever it already was).

    ``current`` is the order as the caller has just read it consistently (the sweeper does), so it
    is not read again; the close's transaction is conditioned on its version either way.
    """
    at = time.time() if now is None else now
    order = current if current is not None else store.get_order(order_id)
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    if order.status != OrderStatus.PENDING or int(order.expires_at) > at:
        return str(order.status)
    return str(close_order(order, OrderStatus.EXPIRED, at).status)


# ------------------------------------------------------------------ refunds


def request_refund(
    user_id: str, order_id: str, request: RefundIn, *, lambda_context: Any = None, now: float | None = None
) -> dict[str, Any]:
    """POST /orders/{order_id}/refunds: idempotent on (caller, order, refund_id)."""
    order_id = order_id.lower()
    return run_once(
        "orders.refund",
        key={"user_id": user_id, "order_id": order_id, "refund_id": request.refund_id},
        payload=request.model_dump(mode="json", exclude={"refund_id"}),
        work=lambda: _refund(user_id, order_id, request, time.time() if now is None else now),
        lambda_context=lambda_context,
    )


def _same_refund(existing: store.RefundItem, request: RefundIn) -> store.RefundItem:
    """An earlier refund under this refund id: the same request is answered with it."""
    if int(existing.amount) != request.amount or existing.reason != request.reason:
        raise InvalidRequest("This refund_id was already used with a different request.", code="idempotency_mismatch")
    return existing


def _reserve_refund(
    order: store.OrderItem, request: RefundIn, now: float
) -> tuple[store.RefundItem, store.OrderItem | None]:
    """Record the refund and take its amount off what is refundable, in one conditional
    transaction, so concurrent refunds can never sum past the paid amount.

    Returns the refund and the order as the commit left it, or an earlier refund under the same
    id (its put is conditioned on the id being new, so it is read only when the transaction or
    the order's state refuses) and None: the order is then to be read again.
    """
    for _ in range(MAX_RETRIES):
        if order.status not in REFUNDABLE or int(order.refundable_amount) < request.amount:
            existing = store.get_refund(order.order_id, request.refund_id)
            if existing is not None:  # a retry of a refund that took the amount already
                return _same_refund(existing, request), None
            if order.status not in REFUNDABLE:
                raise Conflict(f"An order that is {order.status} cannot be refunded.", code="invalid_state")
            raise Conflict(
                f"Only {int(order.refundable_amount)} {order.currency} minor units are left to refund.",
                code="refund_exceeds_paid",
            )
        refund = store.RefundItem(
            order.pk,
            f"REFUND#{request.refund_id}",
            refund_id=request.refund_id,
            order_id=order.order_id,
            user_id=order.user_id,
            amount=request.amount,
            currency=order.currency,
            status="pending",
            reason=request.reason,
            automatic=False,
            created_at=int(now),
            updated_at=int(now),
        )
        change = store.OrderChange(
            order=order,
            history=store.HistoryItem(
                order.pk,
                store.history_sk(now, f"refund_requested#{request.refund_id}"),
                kind="refund_requested",
                at=int(now),
                amount=request.amount,
                currency=order.currency,
                refund_id=request.refund_id,
            ),
            from_statuses=tuple(s.value for s in REFUNDABLE),
            min_refundable=request.amount,
            add_fields={"refundable_amount": -request.amount, "refund_pending_amount": request.amount},
            refund=store.RefundChange(item=refund, create=True),
            at=now,
        )
        if store.apply_change(change):
            return refund, store.applied(change)
        existing = store.get_refund(order.order_id, request.refund_id)
        if existing is not None:  # the same refund id, earlier or in a race with itself
            return _same_refund(existing, request), None
        reloaded = store.get_order(order.order_id)
        if reloaded is None:  # pragma: no cover - orders are never deleted
            raise NotFound("No such order.", code="order_not_found")
        order = reloaded
    raise Conflict("The order is changing; retry.", code="request_in_progress", headers={"Retry-After": "1"})


def _refund(user_id: str, order_id: str, request: RefundIn, now: float) -> dict[str, Any]:
    """Reserve, submit, answer. On the common path (a new refund id, the provider's answer still
    to come by webhook) the answer is built from what was written, without reading it back."""
    order = own_order(user_id, order_id)
    refund, after = _reserve_refund(order, request, now)
    changed = False
    if refund.status == "pending" and refund.provider_refund_id is None:
        changed = callbacks.submit_refund(after or order, refund, now)
    if after is None or changed:  # an earlier refund, or a synchronous answer applied: read both
        reread = store.get_refund(order.order_id, request.refund_id)
        if reread is None:  # pragma: no cover - written above
            raise NotFound("No such refund.", code="refund_not_found")
        refund, after = reread, own_order(user_id, order_id)
    from paycore.schemas.orders import RefundCreated

    return RefundCreated(**refund_out(refund), order=order_out(after)).model_dump(mode="json")

"""The sandbox provider's knobs and own record, and the service's own record of an order, read and
set through paycore in this process (see ``backend.py`` for why not over the API).

Records are plain dicts (JSON-ready), the checker's input.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from bench.simulator.scenario import ChannelBehaviour

BPS = 10_000
LOCK = threading.Lock()  # paycore's settings and clients are process-wide: one caller at a time


def channel_knobs(behaviour: ChannelBehaviour, t: float) -> dict[str, int]:
    """A channel's behaviour at simulated time ``t`` as the sandbox's per-channel knobs."""
    p = behaviour.success_at(t)
    return {
        "decline_rate_bps": round((1.0 - p) * BPS),
        "payment_error_rate_bps": BPS if behaviour.is_down(t) else 0,
        "latency_ms": behaviour.latency_ms,
    }


class Sandbox:
    """The sandbox provider's behaviour knobs (global and per channel)."""

    def __init__(self) -> None:
        self._before: dict[str | None, dict[str, int]] = {}

    def set(self, knobs: Mapping[str, int], channel: str | None = None) -> dict[str, int]:
        from paycore.sandbox import service

        with LOCK:
            if channel not in self._before:
                self._before[channel] = service.behaviour_overrides(channel)
            return dict(service.set_behaviour(channel=channel, **knobs).__dict__)

    def restore(self) -> None:
        """Put back the overrides that were there before the run (none, on a fresh stack)."""
        from paycore.sandbox import service

        with LOCK:
            for channel, overrides in self._before.items():
                service.replace_behaviour(overrides, channel=channel)
            self._before.clear()


def provider_record(order_id: str) -> dict[str, Any] | None:
    """The sandbox's payment of an order, its refunds and its webhook events, as the provider keeps them."""
    from paycore.data import sandbox as store

    with LOCK:
        payment_id = store.payment_id_for_order(order_id)
        if payment_id is None:
            return None
        payment = store.get_payment(payment_id)
        if payment is None:
            return None
        refunds, events = store.payment_items(payment_id)
    return {
        "payment_id": payment.payment_id,
        "status": payment.status,
        "amount": int(payment.amount),
        "currency": payment.currency,
        "refundable": int(payment.refundable or 0),
        "channel": getattr(payment, "channel", None),
        "refunds": sorted(
            ({"refund_id": r.refund_id, "amount": int(r.amount), "status": r.status} for r in refunds),
            key=lambda r: r["refund_id"],
        ),
        "events": sorted(
            (
                {
                    "event_id": e.event_id,
                    "type": _event_type(e.body),
                    "attempts": int(e.attempts or 0),
                    "delivered": e.delivered_at is not None,
                }
                for e in events
            ),
            key=lambda e: e["event_id"],
        ),
    }


def _event_type(body: str) -> str:
    import json

    try:
        return str(json.loads(body).get("type"))
    except ValueError:
        return "unreadable"


def service_record(order_id: str) -> dict[str, Any] | None:
    """The order as the service stores it: the API's shape (``order_out``) plus its history kinds."""
    from paycore.data import orders as store
    from paycore.orders.service import order_out

    with LOCK:
        order = store.get_order(order_id)
        if order is None:
            return None
        refunds = store.list_refunds(order_id)
        history = store.list_history(order_id)
    shown = order_out(order, refunds).model_dump(mode="json")
    shown["history"] = [{"kind": h.kind, "to_status": h.to_status, "event": h.provider_event_id} for h in history]
    return shown

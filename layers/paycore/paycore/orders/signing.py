"""The server's signature over an order, returned as the order's ``signature``.

The signed bytes are the order's canonical form: a JSON object with exactly the fields below,
keys sorted, no whitespace, UTF-8 (docs/orders.md has a worked example)::

    {"amount":1000,"channel":"sandbox","created_at":"...Z","currency":"CNY",
     "expires_at":"...Z","order_id":"...","subject":"..."}

The signature is a detached compact JWS (``paycore.identity.keys.sign_detached``): a client
verifies it with the key named by its ``kid`` at ``/.well-known/jwks.json``. Only fields that
never change are signed, so the signature stays valid for the order's whole life.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

SIGNED_FIELDS = ("amount", "channel", "created_at", "currency", "expires_at", "order_id", "subject")


def _iso(seconds: Any) -> str:
    return datetime.fromtimestamp(float(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_order(order: Any) -> bytes:
    """The canonical bytes of an order item (or of the same fields of an order response)."""
    fields = {
        "amount": int(order.amount),
        "channel": order.channel,
        "created_at": _iso(order.created_at),
        "currency": order.currency,
        "expires_at": _iso(order.expires_at),
        "order_id": order.order_id,
        "subject": order.subject,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_from_response(order: dict[str, Any]) -> bytes:
    """The same bytes rebuilt from an order as the API returns it (what a client verifies)."""
    fields = {name: order[name] for name in SIGNED_FIELDS}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_order(order: Any) -> str:
    from paycore.identity.keys import sign_detached  # crypto is imported only where orders are signed

    return sign_detached(canonical_order(order))

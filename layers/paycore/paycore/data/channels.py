"""Channel configuration in DynamoDB: one partition (``pk = "CHANNEL"``), one item per channel.

Listing is a single Query on that partition, never a Scan; the set of channels is small and
bounded, and the logic layer caches it per container for ``CHANNELS_CACHE_SECONDS``.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.models import Model

from paycore.config import channel_settings
from paycore.data.base import bind

PARTITION = "CHANNEL"


class ChannelItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "ChannelsTable"  # the logical id in template.yaml (held by a test)

    pk = UnicodeAttribute(hash_key=True, default=PARTITION)
    channel_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    provider = UnicodeAttribute()
    currencies = ListAttribute(of=UnicodeAttribute)  # type: ignore[var-annotated]
    # {"CNY": {"min": 1, "max": 5000000}, ...}: per-currency limits in minor units
    limits = MapAttribute(default=dict)  # type: ignore[var-annotated,no-untyped-call]
    methods = ListAttribute(of=UnicodeAttribute, default=list)  # type: ignore[var-annotated]
    available = BooleanAttribute(default=True)
    priority = NumberAttribute(default=100)
    fee_bps = NumberAttribute(default=0)
    description = UnicodeAttribute(null=True)
    # Real providers (docs/providers.md): the Secrets Manager secret holding the account's keys, the
    # provider API's base URL (None: the provider's production endpoint) and provider options.
    credentials_secret = UnicodeAttribute(null=True)
    api_base = UnicodeAttribute(null=True)
    options = MapAttribute(default=dict)  # type: ignore[var-annotated,no-untyped-call]


def _model() -> type[ChannelItem]:
    return bind(ChannelItem, channel_settings().table)


def list_channel_items() -> list[dict[str, Any]]:
    """Every configured channel as a plain dict, read by one Query on the channel partition."""
    return [_to_dict(item) for item in _model().query(PARTITION)]


def put_channel_item(data: dict[str, Any]) -> None:
    """Write one channel's configuration (seeding and ops tooling; not on a request path)."""
    model = _model()
    item = model(
        channel_id=data["id"],
        name=data["name"],
        provider=data["provider"],
        currencies=list(data["currencies"]),
        limits={cur: {"min": int(v["min"]), "max": int(v["max"])} for cur, v in data.get("limits", {}).items()},
        methods=list(data.get("methods", [])),
        available=bool(data.get("available", True)),
        priority=int(data.get("priority", 100)),
        fee_bps=int(data.get("fee_bps", 0)),
        description=data.get("description"),
        credentials_secret=data.get("credentials_secret"),
        api_base=data.get("api_base"),
        options=dict(data.get("options") or {}),
    )
    item.save()


def _to_dict(item: ChannelItem) -> dict[str, Any]:
    raw: Any = item.limits
    limits_raw: dict[str, Any] = raw.as_dict() if hasattr(raw, "as_dict") else dict(raw or {})
    return {
        "id": item.channel_id,
        "name": item.name,
        "provider": item.provider,
        "currencies": list(item.currencies or []),
        "limits": {cur: {"min": int(v["min"]), "max": int(v["max"])} for cur, v in limits_raw.items()},
        "methods": list(item.methods or []),
        "available": bool(item.available),
        "priority": int(item.priority),
        "fee_bps": int(item.fee_bps),
        "description": item.description,
        "credentials_secret": item.credentials_secret,
        "api_base": item.api_base,
        "options": _plain(item.options),
    }


def _plain(value: Any) -> dict[str, Any]:
    return dict(value.as_dict() if hasattr(value, "as_dict") else (value or {}))

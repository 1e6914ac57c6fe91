"""Payment channels: which configured channels can take a given amount and currency.

The configuration is data in the channels table (see docs/channels.md for why DynamoDB rather
than SSM or AppConfig). A container keeps what it read for ``CHANNELS_CACHE_SECONDS``, so a
channel switched off by ops stops being offered within that time without a deployment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from paycore import money
from paycore.config import channel_settings
from paycore.data import channels as channel_store
from paycore.errors import InvalidRequest, NotFound
from paycore.schemas.channels import AmountLimits, ChannelList, ChannelOut


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    provider: str
    currencies: tuple[str, ...]
    limits: dict[str, tuple[int, int]]
    methods: tuple[str, ...]
    available: bool
    priority: int
    fee_bps: int
    description: str | None = None
    # Real providers only (docs/providers.md); never part of the API's channel list.
    credentials_secret: str | None = None
    api_base: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Channel:
        return cls(
            id=data["id"],
            name=data["name"],
            provider=data["provider"],
            currencies=tuple(data["currencies"]),
            limits={cur: (int(v["min"]), int(v["max"])) for cur, v in data.get("limits", {}).items()},
            methods=tuple(data.get("methods", ())),
            available=bool(data.get("available", True)),
            priority=int(data.get("priority", 100)),
            fee_bps=int(data.get("fee_bps", 0)),
            description=data.get("description"),
            credentials_secret=data.get("credentials_secret"),
            api_base=data.get("api_base"),
            options=dict(data.get("options") or {}),
        )

    def accepts(self, amount: int | None, currency: str | None) -> bool:
        """True when the channel takes ``currency`` (and ``amount`` within its limits for it)."""
        if currency is None:
            return True
        if currency not in self.currencies:
            return False
        if amount is None:
            return True
        low, high = self.limits.get(currency, (1, money.MAX_MINOR_UNITS))
        return low <= amount <= high

    def to_out(self) -> ChannelOut:
        return ChannelOut(
            id=self.id,
            name=self.name,
            provider=self.provider,
            currencies=list(self.currencies),
            available=self.available,
            methods=list(self.methods),
            limits={cur: AmountLimits(min=low, max=high) for cur, (low, high) in self.limits.items()},
            description=self.description,
        )


@dataclass
class _Cache:
    loaded_at: float = float("-inf")
    table: str | None = None
    channels: tuple[Channel, ...] = field(default_factory=tuple)


_cache = _Cache()


def load_channels(*, now: float | None = None) -> tuple[Channel, ...]:
    """Every configured channel, ordered by priority then id; cached per container."""
    settings = channel_settings()
    now = time.monotonic() if now is None else now
    if _cache.table != settings.table or now - _cache.loaded_at >= settings.cache_seconds:
        items = channel_store.list_channel_items()
        _cache.channels = tuple(sorted((Channel.from_dict(i) for i in items), key=lambda c: (c.priority, c.id)))
        _cache.table = settings.table
        _cache.loaded_at = now
    return _cache.channels


def reset_cache() -> None:
    _cache.loaded_at = float("-inf")
    _cache.table = None
    _cache.channels = ()


def validate_money_query(amount: int | None, currency: str | None) -> None:
    if currency is not None and not money.is_currency(currency):
        raise InvalidRequest(f"currency {currency!r} is not an ISO 4217 currency code", code="invalid_currency")
    if amount is not None and currency is None:
        raise InvalidRequest("amount needs a currency: its minor unit depends on it", code="validation_error")


def eligible_channels(amount: int | None, currency: str | None) -> list[Channel]:
    """The channels that accept this amount and currency, available or not, in priority order."""
    validate_money_query(amount, currency)
    return [c for c in load_channels() if c.accepts(amount, currency)]


def list_channels(amount: int | None = None, currency: str | None = None) -> ChannelList:
    channels = eligible_channels(amount, currency)
    recommended = next((c.id for c in channels if c.available), None)
    return ChannelList(channels=[c.to_out() for c in channels], recommended=recommended)


def get_channel(channel_id: str) -> Channel:
    for channel in load_channels():
        if channel.id == channel_id:
            return channel
    raise NotFound(f"no channel {channel_id!r}", code="unknown_channel")

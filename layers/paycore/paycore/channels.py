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
from paycore.routing import service as routing
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

    def to_out(self, score: float | None = None, success_rate: float | None = None) -> ChannelOut:
        return ChannelOut(
            id=self.id,
            name=self.name,
            provider=self.provider,
            currencies=list(self.currencies),
            available=self.available,
            methods=list(self.methods),
            limits={cur: AmountLimits(min=low, max=high) for cur, (low, high) in self.limits.items()},
            description=self.description,
            score=score,
            success_rate=success_rate,
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
    """The eligible channels. With an amount and a currency the router ranks the available ones
    (its probability of choosing each) and recommends the top one; without, priority order."""
    channels = eligible_channels(amount, currency)
    available = [c for c in channels if c.available]
    if amount is None or currency is None or not available:
        recommended = available[0].id if available else None
        return ChannelList(channels=[c.to_out() for c in channels], recommended=recommended)
    scores = {arm.channel_id: arm for arm in routing.rank(available, amount, currency).view.arms}
    ranked = sorted(available, key=lambda c: -scores[c.id].probability)  # stable: priority breaks ties
    out = [c.to_out(score=round(scores[c.id].probability, 4), success_rate=round(scores[c.id].mean, 4)) for c in ranked]
    out += [c.to_out() for c in channels if not c.available]
    return ChannelList(channels=out, recommended=ranked[0].id)


def route_auto(amount: int, currency: str, *, decision_id: str) -> routing.Routed:
    """The channel for a ``channel: "auto"`` order: the router's draw among the available eligible
    channels (its decision and propensity are logged); 422 ``no_channel_available`` when none."""
    available = [c for c in eligible_channels(amount, currency) if c.available]
    if not available:
        raise InvalidRequest("No channel accepts this amount and currency now.", code="no_channel_available")
    return routing.route(available, amount, currency, decision_id=decision_id)


def get_channel(channel_id: str) -> Channel:
    for channel in load_channels():
        if channel.id == channel_id:
            return channel
    raise NotFound(f"no channel {channel_id!r}", code="unknown_channel")

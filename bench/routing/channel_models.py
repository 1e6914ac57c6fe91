"""How payment channels behave over time: success rates per channel x segment x time.

Standard library only (no ``paycore``), so the transaction simulator can drive the sandbox
provider's decline rate per channel from the same scenarios that the offline routing evaluation
uses (``Scenario.success_probability(channel, segment, t)`` is all it needs).

A scenario is a set of channels (with the currency, limits and fee a channel item carries), a
traffic mix over segments (currency and an amount range), a success-rate function of time for
every (channel, segment) that can serve it, Poisson arrivals at a fixed rate and delays before an
outcome is known (a payment succeeds within seconds to minutes of the QR code being shown; a decline
comes back quickly; an abandoned payment is only known when the order expires).

The four scenarios of the evaluation (:data:`SCENARIOS`) are described in docs/routing.md.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

RateFn = Callable[[float], float]
HOUR = 3600.0


def _clip(p: float) -> float:
    return min(0.999, max(0.001, p))


def constant(p: float) -> RateFn:
    return lambda t: p


def wave(mean: float, amplitude: float, period: float, phase: float = 0.0) -> RateFn:
    """``mean + amplitude * sin(2 pi t / period + phase)``: a daily-cycle-like drift."""
    return lambda t: _clip(mean + amplitude * math.sin(2.0 * math.pi * t / period + phase))


def ramp(start: float, end: float, t_start: float, t_end: float) -> RateFn:
    """Linear drift from ``start`` (until ``t_start``) to ``end`` (from ``t_end``)."""

    def rate(t: float) -> float:
        if t <= t_start:
            return start
        if t >= t_end:
            return end
        return start + (end - start) * (t - t_start) / (t_end - t_start)

    return rate


def plus(*parts: RateFn) -> RateFn:
    """The sum of rate functions (a level plus drifts), clipped to a probability."""
    return lambda t: _clip(sum(part(t) for part in parts))


def outage(base: RateFn, start: float, end: float = math.inf, during: float = 0.02) -> RateFn:
    """``base`` except between ``start`` and ``end``, when almost every payment fails."""
    return lambda t: during if start <= t < end else base(t)


@dataclass(frozen=True)
class ChannelSpec:
    id: str
    fee_bps: int
    currencies: tuple[str, ...]
    limits: Mapping[str, tuple[int, int]]  # minor units, per currency

    def accepts(self, amount: int, currency: str) -> bool:
        if currency not in self.currencies:
            return False
        low, high = self.limits.get(currency, (1, 10**15))
        return low <= amount <= high

    def as_seed(self) -> dict[str, object]:
        """The channel in the shape of infra/seed/channels.json (for a simulator that seeds a stack)."""
        return {
            "id": self.id,
            "name": self.id.replace("_", " ").title(),
            "provider": "sandbox",
            "currencies": list(self.currencies),
            "limits": {cur: {"min": lo, "max": hi} for cur, (lo, hi) in self.limits.items()},
            "methods": ["qr_code", "checkout"],
            "available": True,
            "priority": 10,
            "fee_bps": self.fee_bps,
        }


@dataclass(frozen=True)
class SegmentSpec:
    name: str
    currency: str
    min_amount: int  # minor units; amounts are drawn log-uniformly in [min_amount, max_amount]
    max_amount: int
    weight: float  # share of the traffic


@dataclass(frozen=True)
class Delays:
    """Seconds from the routing decision until its outcome is known."""

    paid: tuple[float, float] = (10.0, 180.0)  # payer scans and pays
    declined: tuple[float, float] = (5.0, 60.0)  # the provider refuses
    expiry: float = 900.0  # abandoned: known when the order expires (the API's default 15 minutes)
    abandoned_share: float = 0.5  # of the failures in normal operation
    outage: tuple[float, float] = (1.0, 10.0)  # a channel that is down fails fast


@dataclass(frozen=True)
class Payment:
    index: int
    t: float
    segment: str
    currency: str
    amount: int


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    channels: tuple[ChannelSpec, ...]
    segments: tuple[SegmentSpec, ...]
    rates: Mapping[tuple[str, str], RateFn]  # (channel id, segment name) -> p(t)
    duration: float = 12 * HOUR
    arrival_rate: float = 0.5  # payments per second, all segments together
    delays: Delays = field(default_factory=Delays)
    failed_channel: str | None = None  # the channel that goes down, for the outage metrics
    failure_start: float | None = None
    failure_end: float | None = None

    def success_probability(self, channel_id: str, segment: str, t: float) -> float:
        return self.rates[(channel_id, segment)](t)

    def is_down(self, channel_id: str, t: float) -> bool:
        if channel_id != self.failed_channel or self.failure_start is None:
            return False
        end = math.inf if self.failure_end is None else self.failure_end
        return self.failure_start <= t < end

    def payments(self, rng: random.Random) -> list[Payment]:
        """Poisson arrivals over the scenario's duration, each with a segment and an amount."""
        weights = [s.weight for s in self.segments]
        out: list[Payment] = []
        t = 0.0
        while True:
            t += rng.expovariate(self.arrival_rate)
            if t >= self.duration:
                return out
            segment = rng.choices(self.segments, weights)[0]
            low, high = math.log(segment.min_amount), math.log(segment.max_amount)
            amount = min(segment.max_amount, max(segment.min_amount, round(math.exp(rng.uniform(low, high)))))
            out.append(Payment(len(out), t, segment.name, segment.currency, amount))

    def outcome_delay(self, rng: random.Random, channel_id: str, success: bool, t: float) -> float:
        d = self.delays
        if success:
            return rng.uniform(*d.paid)
        if self.is_down(channel_id, t):
            return rng.uniform(*d.outage)
        return d.expiry if rng.random() < d.abandoned_share else rng.uniform(*d.declined)


# ---------------------------------------------------------------------- the evaluation's world

CHANNELS = (
    ChannelSpec("alpha", 60, ("CNY", "USD"), {"CNY": (1, 5_000_000), "USD": (50, 1_000_000)}),
    ChannelSpec("beta", 55, ("CNY", "USD"), {"CNY": (100, 2_000_000), "USD": (100, 500_000)}),
    ChannelSpec("gamma", 38, ("CNY",), {"CNY": (100, 500_000)}),  # up to 5,000 yuan
)
SEGMENTS = (
    SegmentSpec("cny_small", "CNY", 1_000, 9_999, 0.40),  # 10 to 99.99 yuan
    SegmentSpec("cny_large", "CNY", 100_000, 999_999, 0.15),  # 1,000 to 9,999.99 yuan (gamma: up to 5,000)
    SegmentSpec("usd_small", "USD", 100, 999, 0.30),  # 1 to 9.99 dollars
    SegmentSpec("usd_large", "USD", 10_000, 99_999, 0.15),  # 100 to 999.99 dollars
)

# Levels per segment (alpha, beta, gamma): a few points apart, the best differs by segment.
_LEVELS: dict[str, tuple[float, ...]] = {
    "cny_small": (0.93, 0.91, 0.90),
    "cny_large": (0.86, 0.89, 0.84),
    "usd_small": (0.90, 0.92),
    "usd_large": (0.85, 0.81),
}
_NAMES = ("alpha", "beta", "gamma")


def _stationary_rates(levels: Mapping[str, tuple[float, ...]]) -> dict[tuple[str, str], RateFn]:
    return {(_NAMES[i], segment): constant(p) for segment, values in levels.items() for i, p in enumerate(values)}


def stationary() -> Scenario:
    return Scenario(
        name="stationary",
        description="Fixed success rates, 2 to 4 points apart; the best channel differs by segment.",
        channels=CHANNELS,
        segments=SEGMENTS,
        rates=_stationary_rates(_LEVELS),
    )


def drifting(scale: float = 1.0) -> Scenario:
    """Rates move by several points over hours, in different directions, so the best channel changes.

    ``scale`` multiplies every drift (wave amplitudes and ramp spans) around the same mid levels:
    the sensitivity analysis in docs/routing.md runs 0.5x to 1.5x.
    """
    h = HOUR

    def swing(mid: float, amplitude: float, period: float, phase: float = 0.0) -> RateFn:
        return wave(mid, amplitude * scale, period, phase)

    def slide(start: float, end: float, t_start: float, t_end: float) -> RateFn:
        mid, half = (start + end) / 2, (end - start) / 2
        return ramp(mid - half * scale, mid + half * scale, t_start, t_end)

    rates: dict[tuple[str, str], RateFn] = {
        ("alpha", "cny_small"): swing(0.915, 0.045, 8 * h),
        ("beta", "cny_small"): swing(0.905, 0.045, 8 * h, math.pi),
        ("gamma", "cny_small"): slide(0.87, 0.94, 2 * h, 10 * h),
        ("alpha", "cny_large"): slide(0.90, 0.83, 0, 12 * h),
        ("beta", "cny_large"): swing(0.865, 0.04, 6 * h, math.pi / 2),
        ("gamma", "cny_large"): slide(0.82, 0.89, 3 * h, 9 * h),
        ("alpha", "usd_small"): swing(0.905, 0.04, 10 * h, math.pi),
        ("beta", "usd_small"): swing(0.905, 0.04, 10 * h),
        ("alpha", "usd_large"): plus(slide(0.87, 0.80, 4 * h, 8 * h), swing(0.0, 0.02, 3 * h)),
        ("beta", "usd_large"): slide(0.81, 0.86, 4 * h, 8 * h),
    }
    return Scenario(
        name="drifting" if scale == 1.0 else f"drifting_x{scale:g}",
        description=(
            "Rates drift by 4 to 9 points (peak to peak) over 6-10 hour waves and ramps; the best channel changes."
        ),
        channels=CHANNELS,
        segments=SEGMENTS,
        rates=rates,
    )


# For the outage scenarios alpha is the best channel everywhere, so it carries most traffic when it fails.
_OUTAGE_LEVELS: dict[str, tuple[float, ...]] = {
    "cny_small": (0.94, 0.91, 0.90),
    "cny_large": (0.90, 0.87, 0.84),
    "usd_small": (0.93, 0.90),
    "usd_large": (0.87, 0.83),
}


def _with_outage(start: float, end: float) -> dict[tuple[str, str], RateFn]:
    rates = _stationary_rates(_OUTAGE_LEVELS)
    for (channel, segment), rate in list(rates.items()):
        if channel == "alpha":
            rates[(channel, segment)] = outage(rate, start, end)
    return rates


def outage_scenario(start: float = 4 * HOUR) -> Scenario:
    return Scenario(
        name="outage",
        description="alpha, the best channel in every segment, fails at 4 h (98% of payments fail) and stays down.",
        channels=CHANNELS,
        segments=SEGMENTS,
        rates=_with_outage(start, math.inf),
        failed_channel="alpha",
        failure_start=start,
    )


def recovery_scenario(start: float = 4 * HOUR, end: float = 5 * HOUR) -> Scenario:
    return Scenario(
        name="recovery",
        description="alpha fails at 4 h and recovers at 5 h to its former rates (the best everywhere again).",
        channels=CHANNELS,
        segments=SEGMENTS,
        rates=_with_outage(start, end),
        failed_channel="alpha",
        failure_start=start,
        failure_end=end,
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "stationary": stationary,
    "drifting": drifting,
    "outage": outage_scenario,
    "recovery": recovery_scenario,
}

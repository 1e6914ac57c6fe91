"""The traffic plan: every virtual user's orders and what happens to each, drawn from one seed.

The same scenario, seed and user count give the same plan, byte for byte (:meth:`Plan.digest`
prints it): the same currencies, amounts, channel draws, payer actions, refunds, client faults and
start times. What a run cannot repeat is timing: HTTP requests interleave differently, webhooks
race the sweeper differently, and the sandbox draws its declines and duplicate deliveries at run
time. Identities (usernames, order ids) are not part of the plan: they are made fresh per run,
so the same plan can run twice against one stack.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import asdict, dataclass

from bench.simulator.scenario import CLIENT_FAULTS, Scenario


@dataclass(frozen=True)
class PlannedOrder:
    key: str  # u<user>-o<order>, stable across runs of the same plan
    start: float  # wall seconds after the traffic starts
    currency: str
    amount: int  # minor units
    channel_draw: float  # picks the channel among the eligible ones (or "auto") by the scenario's weights
    payer: str  # pay | decline | abandon | cancel
    think: float  # seconds between showing the QR code and the payer's action
    refunds: tuple[int, ...]  # amounts to refund once paid (minor units, in this order)
    faults: tuple[str, ...]  # client faults injected on this order


@dataclass(frozen=True)
class PlannedUser:
    index: int
    orders: tuple[PlannedOrder, ...]


@dataclass(frozen=True)
class Plan:
    scenario: str
    seed: int
    users: tuple[PlannedUser, ...]

    @property
    def orders(self) -> list[PlannedOrder]:
        return [order for user in self.users for order in user.orders]

    def digest(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for order in self.orders:
            out[order.payer] = out.get(order.payer, 0) + 1
        return out


def _pick(rng: random.Random, weights: dict[str, float] | object) -> str:
    items = sorted(weights.items())  # type: ignore[attr-defined]
    return rng.choices([k for k, _ in items], [w for _, w in items])[0]


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    if low == high:
        return low
    return min(high, max(low, round(math.exp(rng.uniform(math.log(low), math.log(high))))))


def refund_amounts(rng: random.Random, kind: str, amount: int) -> tuple[int, ...]:
    """``partial``: one or two refunds that leave part of the payment; ``full``: the whole amount,
    in one refund or as a part and then the rest."""
    if kind == "none" or (kind == "partial" and amount < 2):
        return ()
    if kind == "full":
        if amount >= 2 and rng.random() < 0.5:
            first = max(1, int(amount * rng.uniform(0.2, 0.6)))
            return (first, amount - first)
        return (amount,)
    first = max(1, min(amount - 1, int(amount * rng.uniform(0.1, 0.5))))
    left = amount - first
    if left >= 3 and rng.random() < 0.5:
        second = max(1, min(left - 1, int(left * rng.uniform(0.1, 0.5))))
        return (first, second)
    return (first,)


def build(scenario: Scenario, seed: int, users: int | None = None) -> Plan:
    rng = random.Random(f"{scenario.name}:{seed}")
    t = scenario.traffic
    planned = []
    # Order starts are spread over the first 90 % of the traffic window, leaving the payers of the
    # last orders time to act inside it.
    span = scenario.wall_seconds * 0.9
    for u in range(users or t.users):
        count = rng.randint(*t.orders_per_user)
        starts = sorted(rng.uniform(0.0, span) for _ in range(count))
        orders = []
        for o, start in enumerate(starts):
            currency = _pick(rng, t.currencies)
            amount = _log_uniform(rng, *t.amounts[currency])
            payer = _pick(rng, t.payer)
            refund_kind = _pick(rng, t.refunds) if payer == "pay" else "none"
            refunds = refund_amounts(rng, refund_kind, amount)
            faults = tuple(f for f in CLIENT_FAULTS if rng.random() < scenario.faults.get(f, 0.0))
            orders.append(
                PlannedOrder(
                    key=f"u{u}-o{o}",
                    start=round(start, 3),
                    currency=currency,
                    amount=amount,
                    channel_draw=round(rng.random(), 6),
                    payer=payer,
                    think=round(rng.uniform(*t.think_seconds), 3),
                    refunds=refunds,
                    faults=faults,
                )
            )
        planned.append(PlannedUser(index=u, orders=tuple(orders)))
    return Plan(scenario=scenario.name, seed=seed, users=tuple(planned))


def choose_channel(draw: float, weights: dict[str, float], eligible: list[str]) -> str:
    """The planned draw mapped onto the channels the API offers for this amount and currency
    (``auto`` is always there): the same draw over the same offer gives the same channel."""
    offered = sorted((name, w) for name, w in weights.items() if w > 0 and (name == "auto" or name in eligible))
    if not offered:
        return "auto"
    total = sum(w for _, w in offered)
    cumulative = 0.0
    for name, weight in offered:
        cumulative += weight / total
        if draw < cumulative:
            return name
    return offered[-1][0]

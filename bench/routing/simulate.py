"""Replay a scenario against a routing policy and measure what it achieved.

Every policy sees the same payments and the same random outcomes for one seed (common random
numbers: payment ``k`` succeeds on channel ``c`` iff ``u_k < p_c(t_k)``), so differences between
policies are not noise in the world. Outcomes reach a learning policy only after the scenario's
delays (a decline in seconds, an abandoned payment when its order expires).

Policies:
- ``static``: the best fixed ranking of channels per segment *in hindsight* (the channel with the
  largest expected successes over the run's own payments; the next one where it is not eligible).
- ``round_robin``: the eligible channels in turn, per segment.
- ``router``: ``paycore.routing.policy`` over ``paycore.routing.state.MemoryStateStore``, the
  production policy code with the production arithmetic of the store.
- ``oracle``: the channel with the highest true success rate at that moment.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.routing.channel_models import ChannelSpec, Payment, Scenario
from paycore.routing.policy import Arm, ArmState, RouterConfig, evaluate
from paycore.routing.segments import Segment
from paycore.routing.state import MemoryStateStore


class Policy(Protocol):
    name: str

    def decide(self, payment: Payment, eligible: Sequence[ChannelSpec]) -> tuple[str, dict[str, float]]:
        """The chosen channel and the policy's probability of each eligible channel."""
        ...

    def observe(self, payment: Payment, channel_id: str, success: bool, at: float) -> None: ...


class StaticPolicy:
    name = "static"

    def __init__(self, ranking: dict[str, list[str]]):
        self.ranking = ranking

    def decide(self, payment: Payment, eligible: Sequence[ChannelSpec]) -> tuple[str, dict[str, float]]:
        ids = {c.id for c in eligible}
        pick = next(c for c in self.ranking[payment.segment] if c in ids)
        return pick, {pick: 1.0}

    def observe(self, payment: Payment, channel_id: str, success: bool, at: float) -> None:
        return None


class RoundRobinPolicy:
    name = "round_robin"

    def __init__(self) -> None:
        self.turn: dict[str, int] = defaultdict(int)

    def decide(self, payment: Payment, eligible: Sequence[ChannelSpec]) -> tuple[str, dict[str, float]]:
        k = self.turn[payment.segment]
        self.turn[payment.segment] = k + 1
        pick = eligible[k % len(eligible)].id
        return pick, {c.id: 1.0 / len(eligible) for c in eligible}

    def observe(self, payment: Payment, channel_id: str, success: bool, at: float) -> None:
        return None


class OraclePolicy:
    name = "oracle"

    def __init__(self, scenario: Scenario):
        self.scenario = scenario

    def decide(self, payment: Payment, eligible: Sequence[ChannelSpec]) -> tuple[str, dict[str, float]]:
        pick = max(eligible, key=lambda c: self.scenario.success_probability(c.id, payment.segment, payment.t)).id
        return pick, {pick: 1.0}

    def observe(self, payment: Payment, channel_id: str, success: bool, at: float) -> None:
        return None


class RouterPolicy:
    name = "router"

    def __init__(self, config: RouterConfig, rng: random.Random):
        self.config = config
        self.rng = rng
        self.store = MemoryStateStore(*config.half_lives)

    def decide(self, payment: Payment, eligible: Sequence[ChannelSpec]) -> tuple[str, dict[str, float]]:
        segment = Segment.of(payment.amount, payment.currency).key
        states = self.store.read(segment, [c.id for c in eligible], payment.t)
        arms = [Arm(c.id, c.fee_bps, states.get(c.id) or _NO_DATA) for c in eligible]
        view = evaluate(arms, self.config)
        chosen = view.choose(self.rng.random())
        return chosen.channel_id, {a.channel_id: a.probability for a in view.arms}

    def observe(self, payment: Payment, channel_id: str, success: bool, at: float) -> None:
        segment = Segment.of(payment.amount, payment.currency).key
        self.store.record(segment, channel_id, success, at, created_at=payment.t)


_NO_DATA = ArmState()  # no outcome seen yet


def hindsight_ranking(scenario: Scenario, payments: Sequence[Payment]) -> dict[str, list[str]]:
    """Per segment, channels by their expected successes over these payments (best first)."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for p in payments:
        for c in scenario.channels:
            if (c.id, p.segment) in scenario.rates:
                totals[p.segment][c.id] += scenario.success_probability(c.id, p.segment, p.t)
    return {seg: sorted(by_channel, key=lambda c: -by_channel[c]) for seg, by_channel in totals.items()}


@dataclass
class RunResult:
    scenario: str
    policy: str
    seed: int
    n: int
    successes: int
    expected: float  # sum of the chosen channels' true success probabilities
    oracle_expected: float  # sum of the best true success probabilities
    warm_n: int = 0  # the same three figures after the warm-up (cold start excluded)
    warm_expected: float = 0.0
    warm_oracle_expected: float = 0.0
    regret_curve: list[tuple[float, float]] = field(default_factory=list)  # (t in hours, cumulative regret)
    after_failure: list[float] = field(default_factory=list)  # P(failed channel) per decision after the failure
    after_recovery: list[float] = field(default_factory=list)  # and after it recovers
    moved_off_after: int | None = None  # transactions after the failure until >= 80% moved, for good
    won_back_after: int | None = None  # transactions after recovery until >= 80% of its share is back
    pre_failure_share: float | None = None

    @property
    def success_rate(self) -> float:
        return self.successes / self.n

    @property
    def expected_rate(self) -> float:
        return self.expected / self.n

    @property
    def oracle_rate(self) -> float:
        return self.oracle_expected / self.n

    @property
    def warm_gap(self) -> float:
        """Expected success rate minus the oracle's, after the warm-up."""
        return (self.warm_expected - self.warm_oracle_expected) / self.warm_n

    def summary(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "seed": self.seed,
            "n": self.n,
            "success_rate": self.success_rate,
            "expected_rate": self.expected_rate,
            "oracle_rate": self.oracle_rate,
            "warm_gap": self.warm_gap,
            "moved_off_after": self.moved_off_after,
            "won_back_after": self.won_back_after,
            "pre_failure_share": self.pre_failure_share,
        }


MOVE_WINDOW = 100  # decisions averaged for the win-back measure
MOVE_WINDOW_OFF = 50  # decisions averaged for the move-off measure (a share of traffic, not one decision)
WARMUP_SECONDS = 2 * 3600.0  # the cold start: every posterior begins at the prior
CURVE_LIMIT = 4000  # decisions kept per curve after a failure or a recovery (for the plot)


def run(scenario: Scenario, policy_name: str, seed: int, config: RouterConfig | None = None) -> RunResult:
    world = random.Random(seed)
    payments = scenario.payments(world)
    uniforms = [world.random() for _ in payments]
    delay_rng = random.Random(seed * 7919 + 1)
    policy: Policy
    if policy_name == "static":
        policy = StaticPolicy(hindsight_ranking(scenario, payments))
    elif policy_name == "round_robin":
        policy = RoundRobinPolicy()
    elif policy_name == "oracle":
        policy = OraclePolicy(scenario)
    elif policy_name == "router":
        policy = RouterPolicy(config or RouterConfig(), random.Random(seed * 104729 + 7))
    else:
        raise ValueError(f"unknown policy {policy_name!r}")

    result = RunResult(scenario.name, policy_name, seed, len(payments), 0, 0.0, 0.0)
    pending: list[tuple[float, int, str, bool]] = []
    checkpoint = max(1, len(payments) // 200)
    cumulative_regret = 0.0
    failed = scenario.failed_channel
    pre_shares: list[float] = []
    after_probs = result.after_failure  # P(failed channel) per decision, where it is eligible
    recovery_probs = result.after_recovery
    for k, pay in enumerate(payments):
        while pending and pending[0][0] <= pay.t:
            at, index, channel_id, success = heapq.heappop(pending)
            policy.observe(payments[index], channel_id, success, at)
        eligible = [c for c in scenario.channels if c.accepts(pay.amount, pay.currency)]
        chosen, probs = policy.decide(pay, eligible)
        p_chosen = scenario.success_probability(chosen, pay.segment, pay.t)
        p_best = max(scenario.success_probability(c.id, pay.segment, pay.t) for c in eligible)
        success = uniforms[k] < p_chosen
        result.successes += success
        result.expected += p_chosen
        result.oracle_expected += p_best
        cumulative_regret += p_best - p_chosen
        if pay.t >= WARMUP_SECONDS:
            result.warm_n += 1
            result.warm_expected += p_chosen
            result.warm_oracle_expected += p_best
        if k % checkpoint == 0 or k == len(payments) - 1:
            result.regret_curve.append((pay.t / 3600.0, cumulative_regret))
        heapq.heappush(pending, (pay.t + scenario.outcome_delay(delay_rng, chosen, success, pay.t), k, chosen, success))

        if failed is not None and scenario.failure_start is not None and any(c.id == failed for c in eligible):
            share = probs.get(failed, 0.0)
            if scenario.failure_start - 3600.0 <= pay.t < scenario.failure_start:
                pre_shares.append(share)
            elif pay.t >= scenario.failure_start and (scenario.failure_end is None or pay.t < scenario.failure_end):
                after_probs.append(share)
            elif scenario.failure_end is not None and pay.t >= scenario.failure_end:
                recovery_probs.append(share)

    if pre_shares:
        pre = sum(pre_shares) / len(pre_shares)
        result.pre_failure_share = pre
        result.moved_off_after = _moved_off(after_probs, 0.2 * pre)
        if recovery_probs:
            result.won_back_after = _won_back(recovery_probs, 0.8 * pre)
    del result.after_failure[CURVE_LIMIT:], result.after_recovery[CURVE_LIMIT:]
    return result


def _moved_off(probs: Sequence[float], threshold: float) -> int | None:
    """Decisions after the failure until the failed channel's share, averaged over the last
    MOVE_WINDOW_OFF decisions, is at or below ``threshold`` and stays there (None: never)."""
    window = MOVE_WINDOW_OFF
    averages: list[float] = []
    total = 0.0
    for i, p in enumerate(probs):
        total += p - (probs[i - window] if i >= window else 0.0)
        averages.append(total / min(i + 1, window))
    last_above = max((i for i, a in enumerate(averages) if a > threshold), default=-1)
    return None if last_above == len(averages) - 1 else last_above + 1


def _won_back(probs: Sequence[float], threshold: float) -> int | None:
    """Decisions after recovery until the channel's average probability over a window reaches threshold."""
    window = min(MOVE_WINDOW, len(probs))
    total = sum(probs[:window])
    for i in range(window, len(probs) + 1):
        if total / window >= threshold:
            return i
        if i < len(probs):
            total += probs[i] - probs[i - window]
    return None


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd

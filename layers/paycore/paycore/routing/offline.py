"""Off-policy evaluation of routing policies from decision logs (IPS and self-normalised IPS).

Every routing decision is logged with the state the router saw, the eligible channels, the chosen
one and its propensity (the probability the logging policy gave it); every outcome is logged with
the decision id (``paycore.routing.service``). From those records the value of *another* policy
``pi`` can be estimated without deploying it:

- IPS (inverse propensity scoring, D. G. Horvitz and D. J. Thompson, JASA 1952; for bandits
  L. Li et al., "Unbiased offline evaluation of contextual-bandit-based news article
  recommendation algorithms", WSDM 2011): ``V = mean(w_k * r_k)`` with
  ``w_k = pi(a_k | x_k) / p_k``. Unbiased whenever the logging policy gave every action ``pi``
  can take a positive probability, which the router's exploration floor guarantees.
- SNIPS (A. Swaminathan and T. Joachims, "The self-normalized estimator for counterfactual
  learning", NeurIPS 2015): ``sum(w_k * r_k) / sum(w_k)``: slightly biased, much lower variance.

The context ``x_k`` is the logged record itself (segment, amount, eligible channels, fees and the
decayed counts of every memory), so a variant of the router (another epsilon, sharpness, objective,
collapse test or memory threshold ``memory_z``) is evaluated by recomputing its probabilities from
the logged state (:func:`router_target`). The half-lives are already applied to the logged counts,
so they cannot be varied this way (a target with fewer memories uses the shorter ones logged).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from paycore.routing.policy import Arm, ArmState, RouterConfig, evaluate

DECISION_KEY = "routing_decision"
OUTCOME_KEY = "routing_outcome"
Reward = Literal["success", "net_value"]


@dataclass(frozen=True)
class LoggedDecision:
    decision_id: str
    segment: str
    amount: int
    currency: str
    eligible: tuple[str, ...]
    fees: Mapping[str, int]
    state: Mapping[str, ArmState]
    chosen: str
    propensity: float
    policy: str

    def arms(self) -> list[Arm]:
        return [Arm(c, int(self.fees.get(c, 0)), self.state.get(c, ArmState())) for c in self.eligible]

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> LoggedDecision:
        return cls(
            decision_id=str(raw["decision_id"]),
            segment=str(raw["segment"]),
            amount=int(raw["amount"]),
            currency=str(raw["currency"]),
            eligible=tuple(raw["eligible"]),
            fees={k: int(v) for k, v in (raw.get("fees") or {}).items()},
            state={k: ArmState.from_list(v) for k, v in (raw.get("state") or {}).items()},
            chosen=str(raw["chosen"]),
            propensity=float(raw["propensity"]),
            policy=str(raw["policy"]),
        )


@dataclass(frozen=True)
class Sample:
    decision: LoggedDecision
    success: bool

    def reward(self, kind: Reward) -> float:
        """1/0 for success; for net value, the share of the amount kept after the chosen channel's fee."""
        if not self.success:
            return 0.0
        if kind == "net_value":
            return 1.0 - self.decision.fees.get(self.decision.chosen, 0) / 10_000
        return 1.0


def _records(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    for line in lines:
        start = line.find("{")  # CloudWatch exports may put a timestamp before the JSON
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def read_log(lines: Iterable[str]) -> tuple[list[Sample], int]:
    """Join decision and outcome records on the decision id.

    Returns the samples with an outcome and the number of decisions still without one (pending
    orders, or outcomes outside the log window); those are left out, not counted as failures.
    The first outcome of a decision counts (an order has one final outcome).
    """
    decisions: dict[str, LoggedDecision] = {}
    outcomes: dict[str, bool] = {}
    for record in _records(lines):
        if DECISION_KEY in record:
            decision = LoggedDecision.from_record(record[DECISION_KEY])
            decisions.setdefault(decision.decision_id, decision)
        elif OUTCOME_KEY in record:
            raw = record[OUTCOME_KEY]
            outcomes.setdefault(str(raw["decision_id"]), raw["outcome"] == "paid")
    samples = [Sample(d, outcomes[i]) for i, d in decisions.items() if i in outcomes]
    return samples, len(decisions) - len(samples)


TargetPolicy = Callable[[LoggedDecision], Mapping[str, float]]


def router_target(config: RouterConfig) -> TargetPolicy:
    """The router with ``config``, recomputed from each decision's logged state."""

    def probabilities(decision: LoggedDecision) -> Mapping[str, float]:
        view = evaluate(decision.arms(), config)
        return {arm.channel_id: arm.probability for arm in view.arms}

    return probabilities


def static_target(channel_id: str) -> TargetPolicy:
    """Always ``channel_id`` when it is eligible, else the first eligible channel (priority order)."""

    def probabilities(decision: LoggedDecision) -> Mapping[str, float]:
        pick = channel_id if channel_id in decision.eligible else decision.eligible[0]
        return {pick: 1.0}

    return probabilities


def uniform_target(decision: LoggedDecision) -> Mapping[str, float]:
    return dict.fromkeys(decision.eligible, 1.0 / len(decision.eligible))


@dataclass(frozen=True)
class Estimate:
    n: int
    logged_value: float  # the logging policy's own average reward
    ips: float
    ips_se: float
    snips: float
    snips_se: float
    effective_sample_size: float  # (sum w)^2 / sum w^2: how many samples the estimate is worth

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in self.__dict__.items()}


def estimate(samples: Iterable[Sample], target: TargetPolicy, reward: Reward = "success") -> Estimate:
    """IPS and SNIPS estimates of ``target``'s average reward, with standard errors.

    The IPS standard error is the sample standard deviation of ``w * r`` over ``sqrt(n)``; the
    SNIPS one is the delta-method ``sqrt(sum w^2 (r - V)^2) / sum w``.
    """
    weights: list[float] = []
    rewards: list[float] = []
    for sample in samples:
        if sample.decision.propensity <= 0.0:
            raise ValueError(f"decision {sample.decision.decision_id} was logged with propensity 0")
        pi = target(sample.decision).get(sample.decision.chosen, 0.0)
        weights.append(pi / sample.decision.propensity)
        rewards.append(sample.reward(reward))
    n = len(weights)
    if n == 0:
        raise ValueError("no decision with an outcome to evaluate")
    terms = [w * r for w, r in zip(weights, rewards, strict=True)]
    ips = sum(terms) / n
    ips_var = sum((t - ips) ** 2 for t in terms) / (n - 1) if n > 1 else 0.0
    total_w = sum(weights)
    snips = sum(terms) / total_w if total_w > 0 else 0.0
    snips_se = (
        math.sqrt(sum(w * w * (r - snips) ** 2 for w, r in zip(weights, rewards, strict=True))) / total_w
        if total_w > 0
        else 0.0
    )
    squares = sum(w * w for w in weights)
    return Estimate(
        n=n,
        logged_value=sum(rewards) / n,
        ips=ips,
        ips_se=math.sqrt(ips_var / n),
        snips=snips,
        snips_se=snips_se,
        effective_sample_size=total_w * total_w / squares if squares > 0 else 0.0,
    )

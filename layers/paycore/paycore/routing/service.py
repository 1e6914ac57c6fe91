"""The router on the request path: rank channels, choose one for an order, learn from outcomes.

- :func:`rank`: the policy's probabilities for the eligible channels of a payment (GET /channels).
- :func:`route`: choose a channel for a ``channel: "auto"`` order, and log the decision with its
  propensity (one structured log line, key ``routing_decision``; docs/routing.md, "Decision logs").
- :func:`observe`: add an order's outcome to the router's state, after the order's transition
  committed, best effort: a failure is logged and counted (metric ``RouterUpdateFailed``) and never
  raised, so it cannot undo or fail the transition that reported it.

Callers pass the eligible channels (``paycore.channels`` applies currency, limits and availability
first); this module reads the state of exactly those channels: one BatchGetItem per decision.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from paycore.config import router_settings
from paycore.data import routing as store
from paycore.errors import ConfigurationError, DataAccessError
from paycore.observability import Metric, count, logger
from paycore.routing.offline import DECISION_KEY, OUTCOME_KEY
from paycore.routing.policy import Arm, ArmState, PolicyView, RouterConfig, evaluate
from paycore.routing.segments import Segment
from paycore.routing.state import Outcome

if TYPE_CHECKING:
    from paycore.channels import Channel

# The draw needs no secrecy; SystemRandom avoids every container sharing one seeded sequence.
_uniform = random.SystemRandom()


def policy_config() -> RouterConfig:
    settings = router_settings()
    return RouterConfig(
        half_life_seconds=float(settings.half_life_seconds),
        epsilon=settings.epsilon,
        objective=settings.objective,  # type: ignore[arg-type]  # checked by RouterSettings
    )


@dataclass(frozen=True)
class Ranking:
    segment: str
    states: dict[str, ArmState]
    view: PolicyView


@dataclass(frozen=True)
class Routed:
    channel_id: str
    segment: str
    propensity: float
    policy: str


def rank(channels: Sequence[Channel], amount: int, currency: str, *, now: float | None = None) -> Ranking:
    """The policy over ``channels`` (already eligible) for this payment: one read of their state."""
    at = time.time() if now is None else now
    segment = Segment.of(amount, currency).key
    states = store.read_states(segment, [c.id for c in channels], at)
    arms = [Arm(c.id, c.fee_bps, states.get(c.id, ArmState())) for c in channels]
    return Ranking(segment=segment, states=states, view=evaluate(arms, policy_config()))


def route(
    channels: Sequence[Channel], amount: int, currency: str, *, decision_id: str, now: float | None = None
) -> Routed:
    """Draw a channel from the policy and log the decision; ``channels`` must not be empty."""
    at = time.time() if now is None else now
    ranking = rank(channels, amount, currency, now=at)
    chosen = ranking.view.choose(_uniform.random())
    decision: dict[str, Any] = {
        "decision_id": decision_id,
        "at": round(at, 3),
        "segment": ranking.segment,
        "amount": amount,
        "currency": currency,
        "eligible": [c.id for c in channels],
        "fees": {c.id: c.fee_bps for c in channels},
        "state": {c.id: ranking.states.get(c.id, ArmState()).as_list() for c in channels},
        "probabilities": {a.channel_id: round(a.probability, 6) for a in ranking.view.arms},
        "means": {a.channel_id: round(a.mean, 6) for a in ranking.view.arms},
        "eliminated": [a.channel_id for a in ranking.view.arms if a.eliminated],
        "memory": ranking.view.half_life,
        "chosen": chosen.channel_id,
        "propensity": chosen.probability,
        "policy": ranking.view.version,
    }
    logger.info("routing decision", extra={DECISION_KEY: decision})
    return Routed(
        channel_id=chosen.channel_id,
        segment=ranking.segment,
        propensity=chosen.probability,
        policy=ranking.view.version,
    )


def observe(
    *,
    order_id: str,
    channel_id: str,
    amount: int,
    currency: str,
    outcome: str,
    at: float,
    created_at: float | None = None,
) -> bool:
    """Learn from an order's final outcome; True when recorded. Cancelled orders teach nothing.

    ``created_at`` (the order's creation time) orders the failure run by when payments were made
    (:mod:`paycore.routing.state`); without it the outcome's time stands in.
    """
    try:
        kind = Outcome(outcome)
    except ValueError:
        return False
    segment = Segment.of(amount, currency).key
    try:
        store.record_outcome(segment, channel_id, kind.value, at, policy_config().half_lives, created_at=created_at)
    except (DataAccessError, ConfigurationError):
        logger.exception("router outcome not recorded", extra={"order_id": order_id, "channel": channel_id})
        count(Metric.ROUTER_UPDATE_FAILED, channel=channel_id)
        return False
    logger.info(
        "routing outcome",
        extra={
            OUTCOME_KEY: {
                "decision_id": order_id,
                "channel": channel_id,
                "segment": segment,
                "outcome": kind.value,
                "at": round(at, 3),
            }
        },
    )
    return True

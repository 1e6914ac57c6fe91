"""A small version of the offline evaluation (bench/routing): the properties that must hold.

Counts, not timings: with the same payments and outcomes for every policy (one seed), the router
serves more successful payments than round robin when rates drift, and it moves traffic off a
channel that fails within the issue's bound of 200 transactions.
"""

from __future__ import annotations

import dataclasses

import pytest

from bench.routing.channel_models import HOUR, drifting, outage_scenario, recovery_scenario
from bench.routing.simulate import run

pytestmark = pytest.mark.unit

SEED = 2024  # neither a tuning seed (1-3) nor a report seed (101-105)


def test_router_beats_round_robin_when_rates_drift() -> None:
    scenario = dataclasses.replace(drifting(), duration=4 * HOUR)
    router = run(scenario, "router", SEED)
    round_robin = run(scenario, "round_robin", SEED)
    oracle = run(scenario, "oracle", SEED)
    assert router.n == round_robin.n > 6000
    assert router.successes > round_robin.successes + 0.005 * router.n
    assert oracle.expected >= router.expected


def test_router_moves_off_a_failed_channel_within_200_transactions() -> None:
    scenario = dataclasses.replace(outage_scenario(start=1.5 * HOUR), duration=2.5 * HOUR)
    router = run(scenario, "router", SEED)
    assert router.pre_failure_share is not None
    assert router.pre_failure_share > 0.5
    assert router.moved_off_after is not None
    assert router.moved_off_after < 200
    # round robin never moves: a third of the CNY traffic and half of the USD traffic stay on it
    assert run(scenario, "round_robin", SEED).moved_off_after is None


def test_router_returns_to_a_recovered_channel() -> None:
    scenario = dataclasses.replace(recovery_scenario(start=1.5 * HOUR, end=2 * HOUR), duration=4 * HOUR)
    router = run(scenario, "router", SEED)
    assert router.moved_off_after is not None
    assert router.moved_off_after < 200
    assert router.won_back_after is not None  # >= 80% of its former share is back before the end

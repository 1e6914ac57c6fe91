"""The routing policy: exact win probabilities, the exploration floor, collapse and recovery, cost."""

from __future__ import annotations

import math
import random

import pytest

from paycore.routing.policy import (
    Arm,
    ArmState,
    RouterConfig,
    consistent_memory,
    evaluate,
    failure_run_limit,
    segment_memory,
    win_probabilities,
)

pytestmark = pytest.mark.unit

CONFIG = RouterConfig(epsilon=0.03)


def _monte_carlo(params: list[tuple[float, float, float]], draws: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    wins = [0] * len(params)
    for _ in range(draws):
        samples = [v * rng.betavariate(a, b) for a, b, v in params]
        wins[samples.index(max(samples))] += 1
    return [w / draws for w in wins]


@pytest.mark.parametrize(
    "params",
    [
        [(1, 1, 1), (1, 1, 1), (1, 1, 1)],
        [(90, 10, 1), (85, 15, 1), (1, 1, 1)],
        [(900, 100, 1), (880, 120, 1), (850, 150, 1)],
        [(9000, 1000, 1), (8950, 1050, 1), (2, 2, 1)],
        [(90, 10, 1.0), (91, 10, 0.994), (30, 5, 1.0)],  # the cost term: values differ
        [(1.5, 300, 1), (2, 250, 1)],  # rates near 0
        [(1000, 1.5, 1), (1200, 2, 1), (3, 1, 1)],  # rates near 1
    ],
)
def test_win_probabilities_agree_with_monte_carlo(params: list[tuple[float, float, float]]) -> None:
    # Given independent Beta posteriors, When the probability that each is the largest is computed
    # by quadrature, Then it matches 40,000 posterior draws within 0.01 (four times the Monte-Carlo
    # standard error, <= 0.0025) and sums to 1
    exact = win_probabilities(params)
    sampled = _monte_carlo(params, 40_000, seed=7)
    assert sum(exact) == pytest.approx(1.0)
    for e, s in zip(exact, sampled, strict=True):
        assert abs(e - s) < 0.01


def test_every_eligible_channel_keeps_the_exploration_floor() -> None:
    arms = [
        Arm("a", state=ArmState(successes=5000, failures=100)),
        Arm("b", state=ArmState(successes=100, failures=5000)),
        Arm("c", state=ArmState(successes=10, failures=500)),
    ]
    view = evaluate(arms, CONFIG)
    assert sum(a.probability for a in view.arms) == pytest.approx(1.0)
    for arm in view.arms:
        assert arm.probability >= CONFIG.epsilon / 3 - 1e-12
    assert view.ranked()[0].channel_id == "a"
    assert view.probability("a") == pytest.approx(1 - 2 * CONFIG.epsilon / 3, abs=1e-6)


def test_without_data_the_policy_is_uniform() -> None:
    view = evaluate([Arm("a"), Arm("b")], CONFIG)
    assert [a.probability for a in view.arms] == pytest.approx([0.5, 0.5], abs=1e-9)


def test_one_eligible_channel_is_chosen_with_certainty() -> None:
    view = evaluate([Arm("only", state=ArmState(0, 50, 50))], CONFIG)
    assert view.probability("only") == 1.0
    assert view.choose(0.999).channel_id == "only"


def test_choose_inverts_the_cumulative_distribution() -> None:
    view = evaluate([Arm("a", state=ArmState(900, 100)), Arm("b", state=ArmState(100, 900))], CONFIG)
    p_a = view.probability("a")
    assert view.choose(0.0).channel_id == "a"
    assert view.choose(p_a - 1e-9).channel_id == "a"
    assert view.choose(p_a + 1e-9).channel_id == "b"
    with pytest.raises(ValueError, match="no eligible channel"):
        evaluate([], CONFIG).choose(0.5)


def test_a_run_of_failures_eliminates_a_channel_down_to_its_probe_rate() -> None:
    # Given a channel that succeeds 95% of the time, When it fails n times in a row, where
    # 0.05 ** n < alpha (n = 3 for alpha = 1e-3), Then it gets only the floor epsilon / K
    healthy = ArmState(successes=950, failures=50)
    assert failure_run_limit(healthy, CONFIG) == 3
    before = ArmState(successes=950, failures=52, failure_run=2)
    after = ArmState(successes=950, failures=53, failure_run=3)
    other = Arm("b", state=ArmState(successes=850, failures=150))
    assert not evaluate([Arm("a", state=before), other], CONFIG).arms[0].eliminated
    view = evaluate([Arm("a", state=after), other], CONFIG)
    assert view.arms[0].eliminated
    assert view.probability("a") == pytest.approx(CONFIG.epsilon / 2)
    assert view.probability("b") == pytest.approx(1 - CONFIG.epsilon / 2)


def test_the_failure_run_needed_grows_as_the_channel_is_usually_worse() -> None:
    # a channel that fails 40% of the time produces runs of 3 often: it needs a longer run
    usual = ArmState(successes=600, failures=400)
    assert failure_run_limit(usual, CONFIG) == 8  # 0.4 ** 8 = 6.6e-4 < 1e-3 < 0.4 ** 7
    # the run itself does not count as the channel's usual failure rate
    assert failure_run_limit(ArmState(600, 420, failure_run=20), CONFIG) == 8
    # bounded both ways
    assert failure_run_limit(ArmState(10**6, 0), CONFIG) == CONFIG.min_failure_run
    assert failure_run_limit(ArmState(0, 10**6), CONFIG) == CONFIG.max_failure_run


def test_one_success_readmits_an_eliminated_channel() -> None:
    other = Arm("b", state=ArmState(successes=50, failures=50))
    recovered = ArmState(successes=901, failures=110, failure_run=0)  # the probe succeeded
    view = evaluate([Arm("a", state=recovered), other], CONFIG)
    assert not view.arms[0].eliminated
    assert view.probability("a") > 0.5


def test_when_every_channel_collapsed_the_least_implausible_run_stays_active() -> None:
    # Given a channel 15 failures into an outage whose posterior still remembers its good hours,
    # and a healthy channel that had 3 failures in a row by chance (both eliminated), Then the
    # traffic goes to the healthy one: its run is far less unlikely for a channel that works
    # (the case that sent traffic back to a failed channel in the outage evaluation)
    arms = [Arm("down", state=ArmState(406, 39.5, 15)), Arm("healthy", state=ArmState(856, 92.6, 3))]
    view = evaluate(arms, CONFIG)
    assert all(a.eliminated for a in view.arms)
    assert view.probability("down") == pytest.approx(CONFIG.epsilon / 2)
    assert view.probability("healthy") == pytest.approx(1 - CONFIG.epsilon / 2)
    # equally implausible runs: Thompson sampling over both, as with no elimination
    same = [Arm("a", state=ArmState(10, 40, 30)), Arm("b", state=ArmState(10, 40, 30))]
    assert evaluate(same, CONFIG).probability("a") == pytest.approx(0.5, abs=1e-6)


def test_net_value_prefers_the_cheaper_of_two_equal_channels() -> None:
    same = ArmState(successes=9000, failures=1000)
    arms = [Arm("dear", fee_bps=200, state=same), Arm("cheap", fee_bps=0, state=same)]
    by_success = evaluate(arms, RouterConfig(objective="success_rate", epsilon=0.0))
    by_value = evaluate(arms, RouterConfig(objective="net_value", epsilon=0.0))
    assert by_success.probability("dear") == pytest.approx(0.5, abs=1e-6)
    assert by_value.probability("cheap") > 0.95  # a 2% fee outweighs posterior noise of ~0.3%
    assert by_value.arms[0].value == pytest.approx(0.98)


def test_sharpness_weighs_counts_more() -> None:
    arms = [Arm("a", state=ArmState(90, 10)), Arm("b", state=ArmState(85, 15))]
    plain = evaluate(arms, RouterConfig(epsilon=0.0)).probability("a")
    sharp = evaluate(arms, RouterConfig(epsilon=0.0, sharpness=4.0)).probability("a")
    assert 0.5 < plain < sharp < 1.0


def test_the_version_names_every_parameter() -> None:
    version = RouterConfig(half_life_seconds=1800, epsilon=0.05, objective="net_value").version
    assert version.startswith("dts3:h=1800,7200,28800:z=2.5:eps=0.05")
    assert "obj=net_value" in version
    assert RouterConfig(half_life_seconds=600, memories=2, memory_ratio=3, memory_z=2).version.startswith(
        "dts3:h=600,1800:z=2:"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"half_life_seconds": 0},
        {"memories": 0},
        {"memories": 5},
        {"memory_ratio": 1.0},
        {"memory_z": 0.0},
        {"epsilon": 1.0},
        {"prior_successes": 0.5},
        {"sharpness": 0.5},
        {"objective": "profit"},
        {"collapse_alpha": 0.0},
        {"min_failure_run": 5, "max_failure_run": 4},
        {"quadrature_points": 4},
    ],
)
def test_invalid_configurations_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        RouterConfig(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ memories (dts3)

MEMORIES = RouterConfig()  # 30 min, 2 h, 8 h; memory_z 2.5


def _steady(rate: float, per_second: float, config: RouterConfig = MEMORIES) -> ArmState:
    """The decayed counts of a channel that has succeeded at ``rate`` for a long time: ``n = r H / ln 2``."""
    decayed = [per_second * h / math.log(2) for h in config.half_lives]
    counts = [(rate * n, (1 - rate) * n) for n in decayed]
    (s, f), *longer = counts
    return ArmState(s, f, 0, tuple(longer))


def test_a_steady_channel_is_read_from_its_longest_memory() -> None:
    assert MEMORIES.half_lives == (1800.0, 7200.0, 28800.0)
    assert consistent_memory(_steady(0.9, 0.1), MEMORIES) == 2


def test_a_rate_that_moved_is_read_from_a_shorter_memory() -> None:
    # Given a channel at 90% for hours, then at 80% for the last ~40 minutes: the 30-minute memory
    # sees ~80%, the longer ones much less of the change. Then the 30-minute memory is chosen;
    # a change of 1 point is within the noise and the longest memory stays
    def shifted(before: float, after: float, per_second: float = 0.1, since: float = 2400.0) -> ArmState:
        counts = []
        for h in MEMORIES.half_lives:
            lam = math.log(2) / h
            recent = per_second * (1 - math.exp(-lam * since)) / lam
            old = per_second * math.exp(-lam * since) / lam
            counts.append((after * recent + before * old, (1 - after) * recent + (1 - before) * old))
        (s, f), *longer = counts
        return ArmState(s, f, 0, tuple(longer))

    assert consistent_memory(shifted(0.9, 0.8), MEMORIES) == 0
    assert consistent_memory(shifted(0.9, 0.89), MEMORIES) == 2


def test_the_segment_takes_the_shortest_memory_of_its_channels() -> None:
    # one channel moved (only its short memory holds the change), another is steady, a third has
    # no outcome at all: the segment reads every channel from the short memory
    moved = ArmState(50, 50, 0, ((700, 100), (2800, 400)))
    steady = _steady(0.85, 0.05)
    empty = ArmState()
    assert consistent_memory(moved, MEMORIES) == 0
    assert segment_memory([moved, steady, empty], MEMORIES) == 0
    assert segment_memory([steady, empty], MEMORIES) == 2
    assert segment_memory([empty], MEMORIES) == 2
    # a state logged with one memory (dts2) has only that one
    assert segment_memory([ArmState(90, 10)], MEMORIES) == 0


def test_the_posteriors_come_from_the_chosen_memory() -> None:
    # "a" was the better channel for hours but has just fallen (short memory 50%); "b" is steady
    # at 85%. From the short memory "b" is the better one; from the long one "a" would be.
    a = ArmState(50, 50, 0, ((700, 100), (2800, 400)))
    b = ArmState(26, 5, 0, ((105, 18), (420, 74)))
    view = evaluate([Arm("a", state=a), Arm("b", state=b)], MEMORIES)
    assert view.half_life == 1800.0
    assert view.probability("b") > 0.9
    only_long = evaluate([Arm("a", state=a.in_memory(2)), Arm("b", state=b.in_memory(2))], MEMORIES)
    assert only_long.probability("a") > 0.9


def test_the_logged_state_keeps_every_memory() -> None:
    state = ArmState(1.5, 0.25, 2, ((6.0, 1.0), (24.0, 4.0)))
    assert state.as_list() == [1.5, 0.25, 2, 6.0, 1.0, 24.0, 4.0]
    assert ArmState.from_list(state.as_list()) == state
    assert ArmState.from_list([1.5, 0.25, 2]) == ArmState(1.5, 0.25, 2)  # a dts2 log line
    assert state.counts(1) == (6.0, 1.0)
    assert state.counts(5) == (24.0, 4.0)  # the longest held
    assert ArmState(3, 1).counts(2) == (3, 1)

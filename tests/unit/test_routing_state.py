"""Segments, decayed counts kept as scaled sums, and the in-memory store that mirrors DynamoDB's."""

from __future__ import annotations

import math

import pytest

from paycore.routing.decay import EPOCH_HALF_LIVES, Memories, ScaledCounts, empty, empty_memories, epoch_for, weight
from paycore.routing.segments import BANDS, Segment, amount_band
from paycore.routing.state import FailureRun, MemoryStateStore, Outcome, run_update

pytestmark = pytest.mark.unit

HOUR = 3600.0


@pytest.mark.parametrize(
    ("amount", "currency", "band"),
    [
        (1, "CNY", "lt1"),  # 0.01 yuan
        (99, "USD", "lt1"),
        (100, "USD", "1e0"),  # 1.00 dollar
        (999, "USD", "1e0"),
        (1000, "USD", "1e1"),
        (5000, "JPY", "1e3"),  # JPY has no minor unit
        (1500, "KWD", "1e0"),  # 1.500 dinar: three decimals
        (999_999, "CNY", "1e3"),
        (1_000_000, "CNY", "1e4"),  # 10,000.00 yuan
        (10**15, "JPY", "ge1e5"),
    ],
)
def test_amount_bands_are_decades_of_major_units(amount: int, currency: str, band: str) -> None:
    assert amount_band(amount, currency) == band
    assert band in BANDS


def test_the_top_band_starts_at_100000_major_units() -> None:
    assert amount_band(9_999_999, "CNY") == "1e4"  # 99,999.99 yuan
    assert amount_band(10_000_000, "CNY") == "ge1e5"  # 100,000.00 yuan


def test_segment_key_and_invalid_amounts() -> None:
    assert Segment.of(12_345, "CNY").key == "CNY#1e2"
    with pytest.raises(ValueError, match="positive"):
        amount_band(0, "CNY")
    with pytest.raises(KeyError):
        amount_band(100, "XXX")


def _naive(events: list[tuple[float, bool]], now: float, half_life: float) -> tuple[float, float]:
    s = sum(2 ** (-(now - t) / half_life) for t, ok in events if ok)
    f = sum(2 ** (-(now - t) / half_life) for t, ok in events if not ok)
    return s, f


def test_scaled_sums_equal_the_decayed_counts() -> None:
    # Given outcomes at various times, When each adds its scaled weight, Then the decayed counts at
    # any later time equal the direct sum of 2 ** -(age / half-life)
    half_life = HOUR
    events = [(1_000.0 + 37.0 * i, i % 3 != 0) for i in range(200)]
    counts = empty(events[0][0], half_life)
    for t, ok in events:
        counts = counts.add(t, ok)
    for now in (events[-1][0], events[-1][0] + 90.0, events[-1][0] + 5 * HOUR):
        assert counts.at(now) == pytest.approx(_naive(events, now, half_life), rel=1e-12)


def test_one_half_life_halves_the_counts() -> None:
    counts = ScaledCounts(0, HOUR).add(10.0, True).add(10.0, False)
    s0, f0 = counts.at(10.0)
    s1, f1 = counts.at(10.0 + HOUR)
    assert (s0, f0) == pytest.approx((1.0, 1.0))
    assert (s1, f1) == pytest.approx((0.5, 0.5))


def test_epochs_keep_weights_bounded_and_a_rebase_is_exact() -> None:
    half_life = 1800.0
    t = 1_750_000_123.0
    epoch = epoch_for(t, half_life)
    assert epoch <= t < epoch + EPOCH_HALF_LIVES * half_life
    assert 1.0 <= weight(t, epoch, half_life) < 2.0**EPOCH_HALF_LIVES
    counts = ScaledCounts(epoch, half_life).add(t, True).add(t + 60, False)
    later = t + 40 * half_life
    rebased = counts.rebased(epoch_for(later, half_life), half_life, later)
    assert rebased.epoch > counts.epoch
    assert rebased.at(later) == pytest.approx(counts.at(later), rel=1e-12)


def test_a_new_half_life_starts_from_the_counts_of_the_moment() -> None:
    counts = ScaledCounts(0, HOUR).add(0.0, True)
    switched = counts.rebased(0, 2 * HOUR, HOUR)  # at 1 h the count is 0.5
    assert switched.at(HOUR)[0] == pytest.approx(0.5)
    assert switched.at(3 * HOUR)[0] == pytest.approx(0.25)  # then it halves every 2 h


def test_memory_store_decays_counts_and_tracks_the_failure_run() -> None:
    store = MemoryStateStore(HOUR)
    assert store.read("CNY#1e1", ["a"], 0.0) == {}
    for i in range(4):
        store.record("CNY#1e1", "a", True, 100.0 + i)
    for i in range(3):
        store.record("CNY#1e1", "a", False, 200.0 + i)
    state = store.read("CNY#1e1", ["a", "b"], 200.0 + HOUR)["a"]
    assert state.failure_run == 3
    now = 200.0 + HOUR
    assert state.successes == pytest.approx(sum(2 ** (-(now - 100.0 - i) / HOUR) for i in range(4)), rel=1e-9)
    assert state.failures == pytest.approx(sum(2 ** (-(now - 200.0 - i) / HOUR) for i in range(3)), rel=1e-9)
    store.record("CNY#1e1", "a", True, 300.0)
    assert store.read("CNY#1e1", ["a"], 300.0)["a"].failure_run == 0


def test_the_failure_run_counts_in_the_order_payments_were_created() -> None:
    # Given a channel whose last success was a payment created at 90, When outcomes arrive out of
    # order, Then only failures created after the last success extend the run, and only a success
    # created after the run's first failure ends it
    store = MemoryStateStore(HOUR)

    def run() -> int:
        return store.read("s", ["a"], 1000.0)["a"].failure_run

    store.record("s", "a", True, 100.0, created_at=90.0)
    store.record("s", "a", False, 205.0, created_at=200.0)  # the channel fails
    assert run() == 1
    store.record("s", "a", True, 260.0, created_at=150.0)  # paid before the failure, reported late
    assert run() == 1
    store.record("s", "a", False, 980.0, created_at=80.0)  # abandoned long before: says nothing now
    assert run() == 1
    store.record("s", "a", False, 215.0, created_at=210.0)
    assert run() == 2
    store.record("s", "a", True, 300.0, created_at=220.0)  # a payment made after the failure succeeded
    assert run() == 0
    store.record("s", "a", False, 990.0, created_at=219.0)  # created before that success: no new run
    assert run() == 0


def test_run_update_without_creation_times_counts_in_arrival_order() -> None:
    # an outcome's own time stands in for the creation time: consecutive failures as they arrive
    current = FailureRun()
    for t in (1.0, 2.0, 3.0):
        current = run_update(current, False, t)
    assert current == FailureRun(3, 1.0, None)
    assert run_update(current, True, 4.0) == FailureRun(0, None, 4.0)


def test_memory_store_rebases_across_epochs() -> None:
    half_life = 60.0
    store = MemoryStateStore(half_life)
    store.record("s", "a", True, 10.0)
    far = 10.0 + EPOCH_HALF_LIVES * half_life * 1.5  # the next epoch
    store.record("s", "a", True, far)
    state = store.read("s", ["a"], far)["a"]
    assert state.successes == pytest.approx(1.0 + 2 ** (-(far - 10.0) / half_life), rel=1e-9)
    assert math.isfinite(state.successes)


def test_several_memories_share_one_epoch_and_rebase_together() -> None:
    # Given outcomes kept at 30 min, 2 h and 8 h against one epoch (a multiple of 32 of the
    # shortest half-life), Then each memory equals its direct decayed sum, every weight stays
    # below 2**32, and a rebase into the next epoch changes no count
    lives = (1800.0, 7200.0, 28800.0)
    start = epoch_for(1_750_000_000.0, 1800.0) + 1.0
    events = [(start + 97.0 * i, i % 4 != 0) for i in range(500)]  # 13.5 of the epoch's 16 hours
    counts = empty_memories(events[0][0], lives)
    assert counts.epoch == epoch_for(events[0][0], 1800.0)
    for t, ok in events:
        counts = counts.add(t, ok)
        assert all(weight(t, counts.epoch, h) < 2.0**EPOCH_HALF_LIVES for h in lives)
    now = events[-1][0] + 600.0
    for (successes, failures), h in zip(counts.at(now), lives, strict=True):
        assert (successes, failures) == pytest.approx(_naive(events, now, h), rel=1e-12)
    later = counts.epoch + EPOCH_HALF_LIVES * 1800.0 + 5.0  # in the next epoch
    rebased = counts.rebased(lives, later)
    assert rebased.epoch == epoch_for(later, 1800.0) > counts.epoch
    assert rebased.half_lives == lives
    for new, old in zip(rebased.at(later), counts.at(later), strict=True):
        assert new == pytest.approx(old, rel=1e-12)


def test_one_memory_becomes_several_from_the_counts_of_the_moment() -> None:
    # a state kept with one half-life (dts2) seeds every memory with its counts at that moment
    single = Memories((ScaledCounts(0, 2 * HOUR).add(0.0, True),))
    several = single.rebased((1800.0, 7200.0), 2 * HOUR)  # the count is 0.5 then
    assert [s for s, _ in several.at(2 * HOUR)] == pytest.approx([0.5, 0.5])
    assert [s for s, _ in several.at(2 * HOUR + 1800.0)] == pytest.approx([0.25, 0.5 * 2**-0.25])


def test_memory_store_keeps_every_memory() -> None:
    store = MemoryStateStore(1800.0, 7200.0, 28800.0)
    store.record("s", "a", True, 100.0)
    store.record("s", "a", False, 200.0)
    state = store.read("s", ["a"], 200.0 + 7200.0)["a"]
    assert state.levels == 3
    assert state.counts(0) == pytest.approx((2 ** (-7300 / 1800), 2**-4), rel=1e-9)
    assert state.counts(1) == pytest.approx((2 ** (-7300 / 7200), 0.5), rel=1e-9)
    assert state.counts(2) == pytest.approx((2 ** (-7300 / 28800), 2**-0.25), rel=1e-9)
    with pytest.raises(ValueError, match="half-life"):
        MemoryStateStore()


def test_outcomes() -> None:
    assert Outcome("paid").success
    assert not Outcome("failed").success
    assert not Outcome("expired").success
    with pytest.raises(ValueError, match="cancelled"):
        Outcome("cancelled")

"""Exponentially decayed success and failure counts that can be kept with atomic ``ADD``.

Discounted Thompson sampling (V. Raj and S. Kalyani, "Taming non-stationary bandits: a Bayesian
approach", arXiv:1707.09727, 2017) multiplies every arm's success and failure counts by a discount
``gamma < 1`` at each round, so old outcomes fade and the posterior follows a drifting success
rate; Garivier and Moulines ("On upper-confidence bound policies for switching bandit problems",
ALT 2011) analyse the same discounting (and a sliding window) for UCB. Payments do not arrive in
rounds, so the discount here is by time: an outcome observed at ``t`` weighs ``2 ** -((T - t) / H)``
at time ``T``, with ``H`` the half-life in seconds.

Kept naively, the decayed sum needs a read, a multiplication and a conditional write per outcome
(DynamoDB update expressions can add but not multiply). Instead we keep, per counter, the sum of
``2 ** ((t_k - epoch) / H)`` over the outcomes ``t_k``, for a fixed ``epoch``: adding an outcome is an
``ADD`` of its weight (commutative, so concurrent writers need no read and never retry), and the
decayed sum at ``T`` is the stored sum times ``2 ** -((T - epoch) / H)``. The epoch moves forward
every :data:`EPOCH_HALF_LIVES` half-lives (a *rebase*, once per item per epoch), which keeps every
weight below ``2 ** EPOCH_HALF_LIVES``: far inside DynamoDB's number range (up to 1e125, 38 digits).

**Several memories.** The router keeps the same counts at a few half-lives (:class:`Memories`, e.g.
30 minutes, 2 hours, 8 hours) on one item, against ONE epoch: a multiple of ``EPOCH_HALF_LIVES``
times the *shortest* half-life. A longer half-life's weights then grow more slowly (below
``2 ** (EPOCH_HALF_LIVES * shortest / longer)``), so every sum stays in range, every outcome is
still one ``ADD`` per sum in the same update, and every sum is rebased together, once per epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Weights stay below 2**32 (~4.3e9); an outcome from one epoch ago weighs 2**-32 of a new one,
# which is nothing, so a rebase loses no information that matters.
EPOCH_HALF_LIVES = 32


def epoch_for(t: float, half_life: float) -> int:
    """The epoch (unix seconds) that ``t`` belongs to: a multiple of ``EPOCH_HALF_LIVES * half_life``."""
    span = EPOCH_HALF_LIVES * half_life
    return int(math.floor(t / span) * span)


def weight(t: float, epoch: int, half_life: float) -> float:
    """The stored weight of an outcome observed at ``t``."""
    return float(2.0 ** ((t - epoch) / half_life))


def decay_factor(now: float, epoch: int, half_life: float) -> float:
    """What turns a stored sum into the decayed count at ``now``."""
    return float(2.0 ** (-(now - epoch) / half_life))


@dataclass(frozen=True)
class ScaledCounts:
    """The stored form of one (segment, channel): scaled sums relative to ``epoch``."""

    epoch: int
    half_life: float
    successes: float = 0.0
    failures: float = 0.0

    def at(self, now: float) -> tuple[float, float]:
        """Decayed (successes, failures) at ``now``."""
        factor = decay_factor(now, self.epoch, self.half_life)
        return self.successes * factor, self.failures * factor

    def add(self, t: float, success: bool) -> ScaledCounts:
        """These counts with one outcome at ``t`` added (the in-memory form of the store's ``ADD``)."""
        w = weight(t, self.epoch, self.half_life)
        if success:
            return ScaledCounts(self.epoch, self.half_life, self.successes + w, self.failures)
        return ScaledCounts(self.epoch, self.half_life, self.successes, self.failures + w)

    def rebased(self, epoch: int, half_life: float, now: float) -> ScaledCounts:
        """The same decayed counts re-expressed against ``epoch`` (and ``half_life``).

        With an unchanged half-life this is exact. A new half-life cannot be applied to the past
        (the individual outcome times are gone), so the counts decayed to ``now`` under the old
        half-life become the new starting point and decay under the new one from then on.
        """
        successes, failures = self.at(now)
        scale = weight(now, epoch, half_life)
        return ScaledCounts(epoch, half_life, successes * scale, failures * scale)


def empty(t: float, half_life: float) -> ScaledCounts:
    return ScaledCounts(epoch_for(t, half_life), half_life)


@dataclass(frozen=True)
class Memories:
    """The counts of one (segment, channel) at several half-lives (shortest first), one epoch for all."""

    counts: tuple[ScaledCounts, ...]

    @property
    def epoch(self) -> int:
        return self.counts[0].epoch

    @property
    def half_lives(self) -> tuple[float, ...]:
        return tuple(c.half_life for c in self.counts)

    def at(self, now: float) -> tuple[tuple[float, float], ...]:
        """Decayed (successes, failures) at ``now`` of every memory, shortest first."""
        return tuple(c.at(now) for c in self.counts)

    def add(self, t: float, success: bool) -> Memories:
        return Memories(tuple(c.add(t, success) for c in self.counts))

    def rebased(self, half_lives: tuple[float, ...], now: float) -> Memories:
        """Every memory re-expressed against the epoch of ``now`` for ``half_lives``.

        With unchanged half-lives this is exact. New half-lives (a deployment; or an item written by
        a policy with one memory) start from the old counts decayed to ``now``: memory ``j`` from the
        old memory ``j``, or the old longest where there are fewer.
        """
        epoch = max(self.epoch, epoch_for(now, half_lives[0]))
        last = len(self.counts) - 1
        return Memories(tuple(self.counts[min(j, last)].rebased(epoch, h, now) for j, h in enumerate(half_lives)))


def empty_memories(t: float, half_lives: tuple[float, ...]) -> Memories:
    epoch = epoch_for(t, half_lives[0])
    return Memories(tuple(ScaledCounts(epoch, h) for h in half_lives))

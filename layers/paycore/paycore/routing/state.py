"""Where the router's knowledge lives: the store interface and an in-memory store.

A store keeps, per (segment, channel), the decayed success and failure counts at each of the
policy's half-lives (:class:`paycore.routing.decay.Memories`) and the current failure run.

**The failure run counts in the order payments were created, not the order outcomes arrive.** A
payer pays 10 s to 3 minutes after the QR code is shown and an abandoned payment is known only when
its order expires, so outcomes arrive out of order. Counted on arrival, a late success of a payment
created *before* a channel failed would reset the run that shows the failure, and an abandoned
payment from 15 minutes ago would extend the run of a healthy channel. The store therefore keeps,
with the run, ``ok_at`` (the creation time of the success that last reset it) and ``run_from`` (the
creation time of the first failure counted in it), and :func:`run_update` applies one outcome:

- a failure of a payment created after ``ok_at`` adds 1 to the run (and sets ``run_from`` if unset);
  one created before (a later payment already succeeded) leaves the run alone;
- a success ends the run (``run = 0``, ``ok_at`` = its creation time) unless a run is going on
  and its payment was created before the run's first failure (then it leaves the run alone).

Equal creation times (orders keep whole seconds) count as later: arrival order decides, as before.

Each rule is one conditional update in DynamoDB (:mod:`paycore.data.routing`), no read; an outcome
whose condition fails costs a second update that only adds to the counts. A success does not test
``ok_at``: with no run going on, a success ends nothing, so letting it through keeps successes (most
outcomes) at one update even when they arrive out of order; the price is that ``ok_at`` can step
back by a few minutes, which lets a failure created in between count (a slightly longer run). The DynamoDB store is
:mod:`paycore.data.routing`; :class:`MemoryStateStore` has the same semantics (the same scaled sums
and epochs) for the offline evaluation and the unit tests.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from paycore.routing.decay import Memories, empty_memories, epoch_for
from paycore.routing.policy import ArmState


class Outcome(enum.StrEnum):
    """The order outcomes the router learns from (a cancelled order says nothing about the channel)."""

    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def success(self) -> bool:
        return self is Outcome.PAID


class StateStore(Protocol):
    half_lives: tuple[float, ...]

    def read(self, segment: str, channel_ids: Sequence[str], now: float) -> dict[str, ArmState]:
        """The state of each channel in ``segment`` decayed to ``now`` (absent channels: no data)."""
        ...

    def record(self, segment: str, channel_id: str, success: bool, at: float, created_at: float | None = None) -> None:
        """Add one outcome observed at ``at`` of a payment created at ``created_at`` (default ``at``)."""
        ...


@dataclass(frozen=True)
class FailureRun:
    """The failure run and the two creation times that order it (module docstring)."""

    run: int = 0
    run_from: float | None = None
    ok_at: float | None = None


def run_update(current: FailureRun, success: bool, created: float) -> FailureRun:
    """The failure run after one outcome of a payment created at ``created``."""
    if success:
        if current.run_from is None or current.run_from <= created:
            return FailureRun(0, None, created)
        return current
    if current.ok_at is None or current.ok_at <= created:
        run_from = created if current.run_from is None else current.run_from
        return FailureRun(current.run + 1, run_from, current.ok_at)
    return current


class MemoryStateStore:
    """The store in a dict: the same arithmetic as the DynamoDB store, for simulations and tests."""

    def __init__(self, *half_lives: float):
        """``half_lives``: the memories' half-lives in seconds, shortest first (``RouterConfig.half_lives``)."""
        if not half_lives:
            raise ValueError("need at least one half-life")
        self.half_lives = tuple(half_lives)
        self._counts: dict[tuple[str, str], Memories] = {}
        self._runs: dict[tuple[str, str], FailureRun] = {}

    def read(self, segment: str, channel_ids: Sequence[str], now: float) -> dict[str, ArmState]:
        states: dict[str, ArmState] = {}
        for channel_id in channel_ids:
            counts = self._counts.get((segment, channel_id))
            if counts is None:
                continue
            (successes, failures), *longer = counts.at(now)
            run = self._runs.get((segment, channel_id), _NO_RUN).run
            states[channel_id] = ArmState(successes, failures, run, tuple(longer))
        return states

    def record(self, segment: str, channel_id: str, success: bool, at: float, created_at: float | None = None) -> None:
        key = (segment, channel_id)
        counts = self._counts.get(key) or empty_memories(at, self.half_lives)
        if epoch_for(at, self.half_lives[0]) > counts.epoch or counts.half_lives != self.half_lives:
            counts = counts.rebased(self.half_lives, at)
        self._counts[key] = counts.add(at, success)
        created = at if created_at is None else created_at
        self._runs[key] = run_update(self._runs.get(key, _NO_RUN), success, round(created, 3))


_NO_RUN = FailureRun()

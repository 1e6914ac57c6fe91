"""Where the router's knowledge lives: the store interface and an in-memory store.

A store keeps, per (segment, channel), the decayed success and failure counts
(:class:`paycore.routing.decay.ScaledCounts`) and the current failure run. The DynamoDB store is
:mod:`paycore.data.routing`; :class:`MemoryStateStore` has the same semantics (the same scaled sums
and epochs) for the offline evaluation and the unit tests.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

from paycore.routing.decay import ScaledCounts, empty, epoch_for
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
    half_life: float

    def read(self, segment: str, channel_ids: Sequence[str], now: float) -> dict[str, ArmState]:
        """The state of each channel in ``segment`` decayed to ``now`` (absent channels: no data)."""
        ...

    def record(self, segment: str, channel_id: str, success: bool, at: float) -> None:
        """Add one outcome observed at ``at``."""
        ...


class MemoryStateStore:
    """The store in a dict: the same arithmetic as the DynamoDB store, for simulations and tests."""

    def __init__(self, half_life: float):
        self.half_life = half_life
        self._counts: dict[tuple[str, str], ScaledCounts] = {}
        self._runs: dict[tuple[str, str], int] = {}

    def read(self, segment: str, channel_ids: Sequence[str], now: float) -> dict[str, ArmState]:
        states: dict[str, ArmState] = {}
        for channel_id in channel_ids:
            counts = self._counts.get((segment, channel_id))
            if counts is None:
                continue
            successes, failures = counts.at(now)
            states[channel_id] = ArmState(successes, failures, self._runs.get((segment, channel_id), 0))
        return states

    def record(self, segment: str, channel_id: str, success: bool, at: float) -> None:
        key = (segment, channel_id)
        counts = self._counts.get(key) or empty(at, self.half_life)
        epoch = epoch_for(at, self.half_life)
        if epoch > counts.epoch:
            counts = counts.rebased(epoch, self.half_life, at)
        self._counts[key] = counts.add(at, success)
        self._runs[key] = 0 if success else self._runs.get(key, 0) + 1

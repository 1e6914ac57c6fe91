"""The router's state in DynamoDB: one item per (segment, channel) in the router-state table.

=================  ==============  ===========================================================
pk                 sk              what
=================  ==============  ===========================================================
``<cur>#<band>``   ``<channel>``   scaled decayed counts (``s``, ``f``) against ``epoch`` and
                                   ``half_life``, the failure run (``run``, ``run_from``,
                                   ``ok_at``), raw totals, ``expire_at`` (TTL)
=================  ==============  ===========================================================

Why this shape (docs/routing.md, "Storage", has the comparison with hourly buckets):

- **A decision reads one item per eligible channel**: one ``BatchGetItem`` with exactly the
  eligible keys (eventually consistent: 0.5 RCU per item under 4 KB). No Query over buckets, no Scan.
- **An outcome is one ``UpdateItem`` that only ADDs** (the decayed sums are kept scaled, see
  :mod:`paycore.routing.decay`): commutative, so concurrent callbacks on a hot segment never
  conflict or retry. The failure run follows the order in which payments were *created*
  (:mod:`paycore.routing.state`): its part of the update is conditional on the item's ``ok_at``
  (a failure) or ``run_from`` (a success); when that condition fails (an outcome that arrived out
  of order), a second ``UpdateItem`` adds the counts alone. The condition
  ``epoch = :e AND half_life = :h`` guards the scale; once per
  ``EPOCH_HALF_LIVES`` half-lives an item is *rebased* (one consistent read and one write
  conditional on the ``version`` that every update ADDs to), then the ADD is retried.
- A separate table from the channel configuration: the functions that record outcomes get write
  access to router state without write access to channel configuration (least privilege), the
  hot write traffic of outcomes stays off the configuration partition, and a TTL drops the state
  of segments that saw no payment for 30 days (all of it decayed to nothing by then).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import GetError, PynamoDBException, UpdateError
from pynamodb.models import Model

from paycore.config import router_settings
from paycore.data.base import bind
from paycore.errors import DataAccessError
from paycore.routing.decay import ScaledCounts, epoch_for, weight
from paycore.routing.policy import ArmState

STATE_TTL_SECONDS = 30 * 24 * 3600
MAX_ATTEMPTS = 6  # updates: an out-of-order outcome costs one more, a rebase or a late epoch two more
_PLACES = 6  # decimals sent for a weight: keeps every stored sum well inside DynamoDB's 38 digits


class RouterStateItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "RouterStateTable"

    pk = UnicodeAttribute(hash_key=True)  # the segment key, e.g. "CNY#1e2"
    sk = UnicodeAttribute(range_key=True)  # the channel id
    epoch = NumberAttribute()
    half_life = NumberAttribute()
    s = NumberAttribute(default=0)  # sum over successes of 2 ** ((t - epoch) / half_life)
    f = NumberAttribute(default=0)  # the same over failures
    run = NumberAttribute(default=0)  # consecutive failures, in the order the payments were created
    run_from = NumberAttribute(null=True)  # creation time of the first payment counted in ``run``
    ok_at = NumberAttribute(null=True)  # creation time of the successful payment that last reset ``run``
    version = NumberAttribute(default=0)  # +1 on every write; a rebase is conditional on it
    paid = NumberAttribute(default=0)  # raw totals, for operators
    failed = NumberAttribute(default=0)
    expired = NumberAttribute(default=0)
    last_at = NumberAttribute(null=True)
    expire_at = NumberAttribute(null=True)  # the table's TTL attribute


def _model() -> type[RouterStateItem]:
    return bind(RouterStateItem, router_settings().table)


def _is_condition_failure(exc: UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def read_states(segment: str, channel_ids: Sequence[str], now: float) -> dict[str, ArmState]:
    """Each channel's state in ``segment`` decayed to ``now``: one BatchGetItem of ``len(channel_ids)`` keys."""
    if not channel_ids:
        return {}
    model = _model()
    states: dict[str, ArmState] = {}
    try:
        for item in model.batch_get([(segment, c) for c in channel_ids]):
            successes, failures = _counts(item).at(now)
            states[item.sk] = ArmState(successes, failures, int(item.run or 0))
    except PynamoDBException as exc:
        raise DataAccessError("could not read the router state") from exc
    return states


def _counts(item: RouterStateItem) -> ScaledCounts:
    return ScaledCounts(int(item.epoch), float(item.half_life), float(item.s or 0), float(item.f or 0))


def _run_actions(success: bool, created: float) -> tuple[list[Any], Any]:
    """The failure-run part of an update and its condition (:func:`paycore.routing.state.run_update`)."""
    actions: list[Any]
    if success:
        after_run = RouterStateItem.run_from.does_not_exist() | (RouterStateItem.run_from <= created)
        actions = [RouterStateItem.run.set(0), RouterStateItem.ok_at.set(created), RouterStateItem.run_from.remove()]
        return actions, after_run
    after_ok = RouterStateItem.ok_at.does_not_exist() | (RouterStateItem.ok_at <= created)
    actions = [RouterStateItem.run.add(1), RouterStateItem.run_from.set(RouterStateItem.run_from | created)]
    return actions, after_ok


def record_outcome(
    segment: str, channel_id: str, outcome: str, at: float, half_life: float, created_at: float | None = None
) -> int:
    """Add one outcome (``paid``, ``failed`` or ``expired``) observed at ``at``; returns the requests made.

    ``created_at`` is when the payment was created (default ``at``): the failure run counts in that
    order. Normally one UpdateItem. When its condition fails, a second UpdateItem without the
    failure-run part tells an out-of-order outcome (it then only adds to the counts) from an item
    whose epoch or half-life differs from this writer's: an older epoch (or another half-life) is
    rebased first, a newer epoch (this outcome is late) is written against the item's own epoch.
    """
    model = _model()
    success = outcome == "paid"
    created = round(at if created_at is None else created_at, 3)
    epoch = epoch_for(at, half_life)
    requests = 0
    track_run = True
    for _ in range(MAX_ATTEMPTS):
        w = round(weight(at, epoch, half_life), _PLACES)
        actions: list[Any] = [
            RouterStateItem.epoch.set(RouterStateItem.epoch | epoch),
            RouterStateItem.half_life.set(RouterStateItem.half_life | half_life),
            RouterStateItem.version.add(1),
            RouterStateItem.last_at.set(int(at)),
            RouterStateItem.expire_at.set(int(at) + STATE_TTL_SECONDS),
            getattr(RouterStateItem, outcome).add(1),
            RouterStateItem.s.add(w) if success else RouterStateItem.f.add(w),
        ]
        condition = RouterStateItem.epoch.does_not_exist() | (
            (RouterStateItem.epoch == epoch) & (RouterStateItem.half_life == half_life)
        )
        if track_run:
            run_actions, run_condition = _run_actions(success, created)
            actions += run_actions
            condition = condition & run_condition
        requests += 1
        try:
            model(segment, channel_id).update(actions=actions, condition=condition)
            return requests
        except UpdateError as exc:
            if not _is_condition_failure(exc):
                raise DataAccessError("could not record the routing outcome") from exc
        if track_run:
            track_run = False  # out of order, or another epoch: the next attempt tells which
            continue
        requests += 1
        current = _get(segment, channel_id)
        if current is None:  # pragma: no cover - the condition failed on an existing item
            continue
        track_run = True
        if int(current.epoch) > epoch and float(current.half_life) == half_life:
            epoch = int(current.epoch)  # a late outcome: weigh it against the newer epoch
            continue
        requests += _rebase(current, epoch, half_life, at)
    raise DataAccessError("the router state kept changing; outcome not recorded")


def _get(segment: str, channel_id: str) -> RouterStateItem | None:
    try:
        return _model().get(segment, channel_id, consistent_read=True)
    except RouterStateItem.DoesNotExist:
        return None
    except GetError as exc:
        raise DataAccessError("could not read the router state") from exc


def _rebase(item: RouterStateItem, epoch: int, half_life: float, now: float) -> int:
    """Re-express the item's sums against ``epoch`` and ``half_life``, unless another write got there first."""
    rebased = _counts(item).rebased(max(epoch, int(item.epoch)), half_life, now)
    try:
        item.update(
            actions=[
                RouterStateItem.epoch.set(rebased.epoch),
                RouterStateItem.half_life.set(half_life),
                RouterStateItem.s.set(round(rebased.successes, _PLACES)),
                RouterStateItem.f.set(round(rebased.failures, _PLACES)),
                RouterStateItem.version.add(1),
            ],
            condition=RouterStateItem.version == item.version,
        )
    except UpdateError as exc:
        if not _is_condition_failure(exc):
            raise DataAccessError("could not rebase the router state") from exc
    return 1

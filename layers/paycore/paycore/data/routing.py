"""The router's state in DynamoDB: one item per (segment, channel) in the router-state table.

=================  ==============  ===========================================================
pk                 sk              what
=================  ==============  ===========================================================
``<cur>#<band>``   ``<channel>``   scaled decayed counts at each half-life of ``half_lives``
                                   (``s``, ``f`` the shortest, ``s1``, ``f1``, ... the longer
                                   ones) against one ``epoch``, the failure run (``run``,
                                   ``run_from``, ``ok_at``), raw totals, ``expire_at`` (TTL)
=================  ==============  ===========================================================

Why this shape (docs/routing.md, "Storage", has the comparison with hourly buckets):

- **A decision reads one item per eligible channel**: one ``BatchGetItem`` with exactly the
  eligible keys (eventually consistent: 0.5 RCU per item under 4 KB). No Query over buckets, no Scan.
- **An outcome is one ``UpdateItem`` that only ADDs** (the decayed sums are kept scaled, see
  :mod:`paycore.routing.decay`): commutative, so concurrent callbacks on a hot segment never
  conflict or retry. The failure run follows the order in which payments were *created*
  (:mod:`paycore.routing.state`): its part of the update is conditional on the item's ``ok_at``
  (a failure) or ``run_from`` (a success); when that condition fails (an outcome that arrived out
  of order), a second ``UpdateItem`` adds the counts alone. Every memory's sums are ADDed in that
  same update. The condition ``epoch = :e AND half_lives = :h`` guards the scale; once per
  ``EPOCH_HALF_LIVES`` shortest half-lives an item is *rebased*, every memory together (one
  consistent read and one write conditional on the ``version`` that every update ADDs to), then
  the ADD is retried. An item written by a policy with other half-lives (``dts2`` kept one, with
  ``half_life`` alone) is converted the same way at its first outcome.
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
from paycore.routing.decay import Memories, ScaledCounts, epoch_for, weight
from paycore.routing.policy import MAX_MEMORIES, ArmState

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
    half_life = NumberAttribute()  # the shortest memory's half-life (seconds)
    half_lives = UnicodeAttribute(null=True)  # every memory's, shortest first: "1800,7200,28800"
    s = NumberAttribute(default=0)  # sum over successes of 2 ** ((t - epoch) / half_life)
    f = NumberAttribute(default=0)  # the same over failures
    s1 = NumberAttribute(null=True)  # the same sums for the longer memories, in order
    f1 = NumberAttribute(null=True)
    s2 = NumberAttribute(null=True)
    f2 = NumberAttribute(null=True)
    s3 = NumberAttribute(null=True)
    f3 = NumberAttribute(null=True)
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
            (successes, failures), *longer = _counts(item).at(now)
            states[item.sk] = ArmState(successes, failures, int(item.run or 0), tuple(longer))
    except PynamoDBException as exc:
        raise DataAccessError("could not read the router state") from exc
    return states


def _key(half_lives: Sequence[float]) -> str:
    return ",".join(f"{h:g}" for h in half_lives)


def _sums(j: int) -> tuple[str, str]:
    """The attribute names of memory ``j``'s success and failure sums."""
    return ("s", "f") if j == 0 else (f"s{j}", f"f{j}")


def _counts(item: RouterStateItem) -> Memories:
    epoch = int(item.epoch)
    if not item.half_lives:  # written with one half-life (dts2)
        return Memories((ScaledCounts(epoch, float(item.half_life), float(item.s or 0), float(item.f or 0)),))
    counts = []
    for j, h in enumerate(float(v) for v in item.half_lives.split(",")):
        s_name, f_name = _sums(j)
        counts.append(ScaledCounts(epoch, h, float(getattr(item, s_name) or 0), float(getattr(item, f_name) or 0)))
    return Memories(tuple(counts))


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
    segment: str,
    channel_id: str,
    outcome: str,
    at: float,
    half_lives: float | Sequence[float],
    created_at: float | None = None,
) -> int:
    """Add one outcome (``paid``, ``failed`` or ``expired``) observed at ``at``; returns the requests made.

    ``half_lives``: the memories' half-lives, shortest first (``RouterConfig.half_lives``), or one.

    ``created_at`` is when the payment was created (default ``at``): the failure run counts in that
    order. Normally one UpdateItem. When its condition fails, a second UpdateItem without the
    failure-run part tells an out-of-order outcome (it then only adds to the counts) from an item
    whose epoch or half-lives differ from this writer's: an older epoch (or other half-lives) is
    rebased first, a newer epoch (this outcome is late) is written against the item's own epoch.
    """
    lives = (float(half_lives),) if isinstance(half_lives, int | float) else tuple(float(h) for h in half_lives)
    if not 1 <= len(lives) <= MAX_MEMORIES:
        raise ValueError(f"need 1 to {MAX_MEMORIES} half-lives")
    key = _key(lives)
    model = _model()
    success = outcome == "paid"
    created = round(at if created_at is None else created_at, 3)
    epoch = epoch_for(at, lives[0])
    requests = 0
    track_run = True
    for _ in range(MAX_ATTEMPTS):
        actions: list[Any] = [
            RouterStateItem.epoch.set(RouterStateItem.epoch | epoch),
            RouterStateItem.half_life.set(RouterStateItem.half_life | lives[0]),
            RouterStateItem.half_lives.set(RouterStateItem.half_lives | key),
            RouterStateItem.version.add(1),
            RouterStateItem.last_at.set(int(at)),
            RouterStateItem.expire_at.set(int(at) + STATE_TTL_SECONDS),
            getattr(RouterStateItem, outcome).add(1),
        ]
        for j, h in enumerate(lives):  # every memory's sum in the same update
            name = _sums(j)[0 if success else 1]
            actions.append(getattr(RouterStateItem, name).add(round(weight(at, epoch, h), _PLACES)))
        condition = RouterStateItem.epoch.does_not_exist() | (
            (RouterStateItem.epoch == epoch) & (RouterStateItem.half_lives == key)
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
        if int(current.epoch) > epoch and current.half_lives == key:
            epoch = int(current.epoch)  # a late outcome: weigh it against the newer epoch
            continue
        requests += _rebase(current, lives, at)
    raise DataAccessError("the router state kept changing; outcome not recorded")


def _get(segment: str, channel_id: str) -> RouterStateItem | None:
    try:
        return _model().get(segment, channel_id, consistent_read=True)
    except RouterStateItem.DoesNotExist:
        return None
    except GetError as exc:
        raise DataAccessError("could not read the router state") from exc


def _rebase(item: RouterStateItem, half_lives: tuple[float, ...], now: float) -> int:
    """Re-express every memory's sums against the epoch of ``now`` and ``half_lives`` (one write,
    conditional on the item's version), unless another write got there first."""
    rebased = _counts(item).rebased(half_lives, now)
    actions: list[Any] = [
        RouterStateItem.epoch.set(rebased.epoch),
        RouterStateItem.half_life.set(half_lives[0]),
        RouterStateItem.half_lives.set(_key(half_lives)),
        RouterStateItem.version.add(1),
    ]
    for j, counts in enumerate(rebased.counts):
        s_name, f_name = _sums(j)
        actions.append(getattr(RouterStateItem, s_name).set(round(counts.successes, _PLACES)))
        actions.append(getattr(RouterStateItem, f_name).set(round(counts.failures, _PLACES)))
    try:
        item.update(actions=actions, condition=RouterStateItem.version == item.version)
    except UpdateError as exc:
        if not _is_condition_failure(exc):
            raise DataAccessError("could not rebase the router state") from exc
    return 1

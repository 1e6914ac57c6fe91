"""The expiry sweeper: closes unpaid orders past their expiry, and applies overdue payments.

Each run (docs/scheduled-jobs.md, "Sweeper"):

1. **Expiry.** Every shard of the sparse ``pending_by_expiry`` index is queried for orders with
   ``pending_expires_at <= now``, a page at a time, the shards taken in turn so that a backlog in
   one shard cannot starve the others. For each order the provider is asked first: a payment it
   reports as paid (or failed) is applied exactly as its webhook would be
   (:func:`paycore.orders.callbacks.apply_provider_state`: amounts checked, history, counters,
   domain event). Otherwise :func:`paycore.orders.service.expire_order` closes the payment at the
   provider (whose answer is the state after closing: PAID when the payer won that race, and the
   payment is then recorded) and moves the order ``pending → expired`` with a conditional
   transaction; a writer that got there first (a paid webhook) wins, and that is not an error.
2. **Overdue notifications.** Pending orders that are not due yet but were created at least
   ``SWEEPER_OVERDUE_AFTER_SECONDS`` ago are read from the same index (``pending_expires_at > now``,
   one capped page per shard) and, oldest first, at most ``SWEEPER_OVERDUE_MAX_QUERIES`` of them
   are queried at their provider; a payment reported as paid is applied like its webhook.
3. **Refunds whose submission was lost.** Refunds pending without a provider refund id for more
   than ``SWEEPER_REFUND_GRACE_SECONDS`` (the function that recorded one died before the
   provider's answer was kept, or the provider failed) are read from the sparse
   ``refunds_unsubmitted`` index (one Query, at most ``SWEEPER_REFUND_MAX_PER_RUN``, the longest
   waiting first) and submitted again under their own refund id, which every adapter sends as the
   provider's idempotency key: a submission that did arrive is not repeated.

The run stops taking new orders when less than ``SWEEPER_RESERVE_MS`` of the invocation is left,
counts what is still due (``SweeperBacklogLeft``), and leaves it to the next run. A provider that
fails (:class:`ProviderError`) costs one order, never the run: it is counted in ``SweeperErrors``
and the order is tried again next run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from paycore.config import SweeperSettings, sweeper_settings
from paycore.data import orders as store
from paycore.errors import Conflict, DataAccessError, NotFound, ProviderUnavailable
from paycore.observability import Metric, count, log_keys, logger
from paycore.orders.states import OrderStatus

# The settling code (provider adapters, callbacks, expiry, the router behind their events) is
# imported where an order is due, overdue or has a lost refund: a run that finds none, most runs,
# never loads it (docs/performance.md, section 1).

BACKLOG_COUNT_CAP = 10_000  # SweeperBacklogLeft counts at most this many (a bounded index read)
# What applying a provider's answer can end in (apply_event's outcomes), for the run's tallies.
_WON_ELSEWHERE = ("already_paid", "ignored:", "late_payment_refunded")


def sweep_event_id(order_id: str) -> str:
    """The event id under which the sweeper applies what it learnt from the provider: one per
    order, so a second sweep (or the late webhook, under its own id) changes nothing more."""
    return f"sweep:{order_id}"


@dataclass
class SweepResult:
    expired: int = 0  # pending → expired by this run
    paid: int = 0  # found paid at the provider at expiry, applied as paid
    failed: int = 0  # found failed at the provider at expiry, applied as failed
    lost_races: int = 0  # another writer (a webhook, a cancel) moved the order first
    held: int = 0  # the provider's payment did not apply (an anomaly): left pending for ops
    errors: int = 0  # provider or store failures; the order is tried again next run
    overdue_checked: int = 0  # provider queries made for the overdue-notification check
    overdue_applied: int = 0  # payments applied because their notification was overdue
    backlog_left: int = 0  # due orders left for the next run (counted up to BACKLOG_COUNT_CAP)
    refunds_resubmitted: int = 0  # refunds whose lost submission was made again (the provider answered)
    stopped_early: bool = False
    expired_by_channel: Counter[str] = field(default_factory=Counter)  # OrdersExpired by channel

    def as_dict(self) -> dict[str, Any]:
        # asdict rebuilds a Counter from (key, value) pairs, which Counter counts as elements: the
        # keys would become tuples and the result would not serialise. Give the plain mapping.
        data = asdict(self)
        data["expired_by_channel"] = dict(self.expired_by_channel)
        return data


class Budget:
    """The invocation's time left (``context.get_remaining_time_in_millis``) against a reserve."""

    def __init__(self, remaining_ms: Callable[[], int], reserve_ms: int):
        self._remaining_ms = remaining_ms
        self._reserve_ms = reserve_ms

    def exhausted(self) -> bool:
        return self._remaining_ms() <= self._reserve_ms


def sweep(*, now: float, remaining_ms: Callable[[], int]) -> SweepResult:
    """One run of the sweeper at ``now`` within the invocation's remaining time."""
    settings = sweeper_settings()
    budget = Budget(remaining_ms, settings.reserve_ms)
    result = SweepResult()
    _expire_due(int(now), now, settings, budget, result)
    if result.stopped_early:
        result.backlog_left = store.count_pending_due(int(now), BACKLOG_COUNT_CAP)
    else:
        _apply_overdue(now, settings, budget, result)
    if not result.stopped_early:
        _resubmit_refunds(now, settings, budget, result)
    _emit(result)
    logger.info("sweep finished", extra={"sweep": result.as_dict()})
    return result


# ------------------------------------------------------------------ expiry


def _expire_due(due_by: int, now: float, settings: SweeperSettings, budget: Budget, result: SweepResult) -> None:
    start: dict[int, dict[str, Any] | None] = dict.fromkeys(range(store.PENDING_SHARDS))
    active = list(range(store.PENDING_SHARDS))
    while active:
        for shard in list(active):
            if budget.exhausted():
                result.stopped_early = True
                return
            page = store.pending_page(shard, due_by=due_by, limit=settings.page_size, start_key=start[shard])
            for order in page.orders:
                if budget.exhausted():
                    result.stopped_early = True
                    return
                with log_keys(order_id=order.order_id):
                    _expire_one(order, now, result)
            if page.next_key is None:
                active.remove(shard)
            else:
                start[shard] = page.next_key


def _expire_one(indexed: store.OrderItem, now: float, result: SweepResult) -> None:
    from paycore.orders import callbacks
    from paycore.orders.service import expire_order
    from paycore.providers import get_provider
    from paycore.providers.base import ProviderError

    order_id = indexed.order_id
    try:
        order = store.get_order(order_id)  # the index is eventually consistent; the order is not
        if order is None or order.status != OrderStatus.PENDING:
            result.lost_races += 1
            return
        state = get_provider(order.provider).query_payment(order.order_id, order.provider_payment_id)
        outcome = callbacks.apply_provider_state(order, state, sweep_event_id(order_id), now=now)
        if outcome is not None:
            _tally(outcome, result)
            return
        status = expire_order(order_id, now, current=order)  # closes at the provider first
    except (ProviderError, ProviderUnavailable, DataAccessError, Conflict, NotFound) as exc:
        result.errors += 1
        logger.warning("sweeper could not settle an order", extra={"order_id": order_id, "error": type(exc).__name__})
        return
    if status == OrderStatus.EXPIRED:
        result.expired += 1
        result.expired_by_channel[order.channel] += 1
        logger.info("order expired", extra={"order_id": order_id})
    elif status == OrderStatus.PAID:
        result.paid += 1  # the payer won the race with the close
    elif status == OrderStatus.PENDING:
        result.held += 1  # the close answered a payment that did not apply (an anomaly)
    else:
        result.lost_races += 1
        logger.info("order settled by another writer first", extra={"order_id": order_id, "status": status})


def _tally(outcome: str, result: SweepResult) -> None:
    if outcome == "paid":
        result.paid += 1
    elif outcome == "failed":
        result.failed += 1
    elif outcome.startswith(_WON_ELSEWHERE):
        result.lost_races += 1
    else:  # an anomaly (alerted once), or the same anomaly seen by an earlier run
        result.held += 1


# ------------------------------------------------------------------ overdue notifications


def _apply_overdue(now: float, settings: SweeperSettings, budget: Budget, result: SweepResult) -> None:
    if settings.overdue_max_queries == 0:
        return
    cutoff = now - settings.overdue_after_seconds
    candidates: list[store.OrderItem] = []
    for shard in range(store.PENDING_SHARDS):
        page = store.pending_page(shard, not_due_at=int(now), limit=settings.overdue_scan_limit)
        candidates += [order for order in page.orders if order.created_at <= cutoff]
    if not candidates:
        return
    from paycore.orders import callbacks
    from paycore.providers import get_provider
    from paycore.providers.base import PaymentStatus, ProviderError

    candidates.sort(key=lambda order: (order.created_at, order.order_id))
    for order in candidates[: settings.overdue_max_queries]:
        if budget.exhausted():
            result.stopped_early = True
            return
        result.overdue_checked += 1
        try:
            state = get_provider(order.provider).query_payment(order.order_id, order.provider_payment_id)
            if state.status != PaymentStatus.PAID:
                continue  # a failed attempt may be retried by the payer until the order expires
            with log_keys(order_id=order.order_id):
                outcome = callbacks.apply_provider_state(order, state, sweep_event_id(order.order_id), now=now)
        except (ProviderError, DataAccessError, NotFound) as exc:
            result.errors += 1
            logger.warning(
                "overdue check failed for an order", extra={"order_id": order.order_id, "error": type(exc).__name__}
            )
            continue
        if outcome == "paid":
            result.overdue_applied += 1
            logger.info("overdue payment applied", extra={"order_id": order.order_id})
        elif outcome is not None and not outcome.startswith(_WON_ELSEWHERE):
            result.held += 1


# ------------------------------------------------------------------ refunds whose submission was lost


def _resubmit_refunds(now: float, settings: SweeperSettings, budget: Budget, result: SweepResult) -> None:
    if settings.refund_max_per_run == 0:
        return
    keys = store.unsubmitted_refunds(int(now) - settings.refund_grace_seconds, settings.refund_max_per_run)
    if not keys:
        return
    from paycore.orders import callbacks
    from paycore.providers.base import ProviderError

    for order_id, refund_id in keys:
        if budget.exhausted():
            result.stopped_early = True
            return
        with log_keys(order_id=order_id):
            try:
                refund = store.get_refund(order_id, refund_id)  # the index lags; the refund does not
                order = store.get_order(order_id)
                if refund is None or order is None or refund.status != "pending" or refund.provider_refund_id:
                    continue
                if callbacks.resubmit_refund(order, refund, now):
                    result.refunds_resubmitted += 1
                    logger.info("lost refund submitted again", extra={"refund_id": refund_id})
                else:  # the provider is unavailable: the refund waits another grace period
                    result.errors += 1
            except (ProviderError, ProviderUnavailable, DataAccessError, Conflict, NotFound) as exc:
                result.errors += 1
                logger.warning(
                    "sweeper could not submit a refund", extra={"refund_id": refund_id, "error": type(exc).__name__}
                )


# ------------------------------------------------------------------ metrics


def _emit(result: SweepResult) -> None:
    # OrdersExpired by channel (one record per channel that had expiries), and 0 on a quiet run
    for channel, expired in sorted(result.expired_by_channel.items()):
        count(Metric.ORDERS_EXPIRED, expired, channel=channel)
    if not result.expired_by_channel:
        count(Metric.ORDERS_EXPIRED, 0)
    count(Metric.SWEEPER_PAID_AT_EXPIRY, result.paid)
    count(Metric.SWEEPER_ERRORS, result.errors)
    count(Metric.OVERDUE_PAYMENTS_APPLIED, result.overdue_applied)
    count(Metric.SWEEPER_BACKLOG_LEFT, result.backlog_left)
    count(Metric.REFUNDS_RESUBMITTED, result.refunds_resubmitted)
    # The heartbeat: one per finished run. The SweeperNotRunning alarm fires when it is missing.
    count(Metric.SWEEPER_HEARTBEAT)

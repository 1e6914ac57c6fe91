"""Attempt counters in DynamoDB, one item per throttled key and fixed window.

``AuthThrottleTable`` holds ``{throttle_key, window_started_at, attempts, expires_at}``. An attempt
is *reserved* before the work it guards (an argon2 verify) with one conditional update, so any
number of concurrent requests cannot take more than ``limit`` attempts in a window: DynamoDB
serialises the updates on the item and the condition refuses the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.models import Model

from paycore.config import identity_settings
from paycore.data.base import bind


class ThrottleItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "AuthThrottleTable"

    throttle_key = UnicodeAttribute(hash_key=True)
    window_started_at = NumberAttribute()
    attempts = NumberAttribute()
    expires_at = NumberAttribute()  # the table's TTL attribute: the end of the window


@dataclass(frozen=True)
class Reservation:
    granted: bool
    window_ends_at: int


def _model() -> type[ThrottleItem]:
    return bind(ThrottleItem, identity_settings().throttle_table)


def _condition_failed(exc: UpdateError | PutError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def reserve_attempt(key: str, *, limit: int, window_seconds: int, now: int) -> Reservation:
    """Count one attempt for ``key``; refused once ``limit`` attempts fall in the current window.

    The first write tries to open a new window, because that is the common case: a success clears
    the key, so most attempts find no window (one request, where trying the live window first took
    three: a failed update, a read and the put). Within a live window the second write counts the
    attempt; only a full window is read, for its end (docs/performance.md, "DynamoDB work").
    """
    model = _model()
    cutoff = now - window_seconds
    for _ in range(3):
        try:
            # No window, or an expired one: start a new window with this attempt.
            model(throttle_key=key, window_started_at=now, attempts=1, expires_at=now + window_seconds).save(
                condition=model.throttle_key.does_not_exist() | (model.window_started_at <= cutoff)
            )
            return Reservation(True, now + window_seconds)
        except PutError as exc:
            if not _condition_failed(exc):
                raise
        try:
            # A live window: count against it if it has room (update returns the item's new state).
            item = model(throttle_key=key)
            item.update(
                actions=[model.attempts.add(1)],
                condition=(model.window_started_at > cutoff) & (model.attempts < limit),
            )
            return Reservation(True, int(item.window_started_at) + window_seconds)
        except UpdateError as exc:
            if not _condition_failed(exc):
                raise
        try:
            current = model.get(key, consistent_read=True)
        except DoesNotExist:
            current = None
        if current is not None and int(current.window_started_at) > cutoff:
            # A live window that is full.
            return Reservation(False, int(current.window_started_at) + window_seconds)
        # The window ended or was cleared between the writes: try again.
    return Reservation(False, now + window_seconds)


def clear(key: str) -> None:
    """Forget the attempts of ``key`` (after a success)."""
    _model()(throttle_key=key).delete()

"""Login: throttled, equal-cost password checks that start a session.

Every attempt on a username first reserves one of 10 attempts in a 15-minute window (the window
opens at the first attempt; a success clears it). Past the limit the answer is 429 with
``Retry-After`` up to the end of the window, whatever the password: it bounds online guessing to 40
tries an hour and 960 a day per account, and a stranger who keeps failing can hold the owner off for
at most 15 minutes after their last burst, never for good. Unknown usernames are throttled and
answered exactly like known ones: the same 401 ``invalid_credentials`` body after one argon2
verify (against a dummy hash), so neither the body, the status nor the work tells them apart.
Numbers and sources: docs/identity.md, "Throttling".
"""

from __future__ import annotations

import time
from typing import Final

from paycore.data import throttle
from paycore.data import users as user_store
from paycore.data.users import ACTIVE
from paycore.errors import Forbidden, Throttled, Unauthorized
from paycore.identity import passwords, sessions
from paycore.identity.registration import normalize_username
from paycore.observability import Metric, count
from paycore.schemas.identity import TokenOut

MAX_ATTEMPTS: Final = 10
WINDOW_SECONDS: Final = 15 * 60


def throttle_key(username: str) -> str:
    return f"login#{normalize_username(username)}"


def login(username: str, password: str, *, now: int | None = None) -> TokenOut:
    now = int(time.time()) if now is None else now
    key = throttle_key(username)
    reservation = throttle.reserve_attempt(key, limit=MAX_ATTEMPTS, window_seconds=WINDOW_SECONDS, now=now)
    if not reservation.granted:
        count(Metric.LOGIN_THROTTLED)
        raise Throttled(
            "too many login attempts for this account; try again later",
            retry_after=reservation.window_ends_at - now,
            code="too_many_attempts",
        )
    user = user_store.get_user(normalize_username(username))
    if not passwords.verify_password(user.password_hash if user else None, password) or user is None:
        count(Metric.LOGIN_FAILED)
        raise Unauthorized("the username or password is wrong", code="invalid_credentials")
    throttle.clear(key)
    if user.status != ACTIVE:
        raise Forbidden("verify the account with the code sent to you before logging in", code="not_verified")
    if passwords.needs_rehash(user.password_hash):
        user_store.save_new_password_hash(user, passwords.hash_password(password))
    return sessions.start_session(user.user_id, now=now)

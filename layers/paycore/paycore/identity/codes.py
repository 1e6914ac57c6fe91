"""Verification codes: generation, hashing, and the rules of their life, as pure functions of ``now``.

A code is 6 decimal digits from ``secrets`` (uniform over 000000-999999). Only
``HMAC-SHA256(pepper, username || 0x00 || code)`` is stored, the pepper being derived from the
identity HMAC secret (:mod:`paycore.identity.derived`): a copy of the users table alone does not
let anyone test a million candidates offline. A code is valid for 10 minutes, works once, and is
burnt by the 5th wrong try. Codes go out at registration and on request, at most one a minute and
five an hour per user.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

from paycore.errors import Throttled

DIGITS: Final = 6
CODE_SECONDS: Final = 10 * 60
MAX_WRONG_TRIES: Final = 5
RESEND_INTERVAL_SECONDS: Final = 60
RESEND_WINDOW_SECONDS: Final = 60 * 60
MAX_SENDS_PER_WINDOW: Final = 5


def new_code() -> str:
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def code_hash(pepper: bytes, username: str, code: str) -> str:
    return hmac.new(pepper, username.encode() + b"\x00" + code.encode(), hashlib.sha256).hexdigest()


class Outcome(Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"  # counts a try; the code stays usable while tries remain
    BURNT = "burnt"  # this wrong try was the last one: the code is gone
    EXPIRED = "expired"  # no usable code: expired, burnt earlier, used, or never sent


@dataclass(frozen=True)
class StoredCode:
    hash: str | None
    expires_at: int | None
    wrong_tries: int


def check(stored: StoredCode, presented_hash: str, *, now: int) -> Outcome:
    """What presenting a code (already hashed the same way) does to ``stored`` at ``now``."""
    if stored.hash is None or stored.expires_at is None or now >= stored.expires_at:
        return Outcome.EXPIRED
    if stored.wrong_tries >= MAX_WRONG_TRIES:
        return Outcome.EXPIRED
    if hmac.compare_digest(stored.hash, presented_hash):
        return Outcome.ACCEPTED
    return Outcome.BURNT if stored.wrong_tries + 1 >= MAX_WRONG_TRIES else Outcome.WRONG


def recent_sends(sends: Sequence[int], *, now: int) -> list[int]:
    """The send times that still count against the hourly limit, oldest first."""
    return sorted(t for t in sends if t > now - RESEND_WINDOW_SECONDS)


def check_send_allowed(sends: Sequence[int], *, now: int) -> None:
    """Raise Throttled (429, with Retry-After) when another code may not be sent yet."""
    recent = recent_sends(sends, now=now)
    if recent and now - recent[-1] < RESEND_INTERVAL_SECONDS:
        raise Throttled(
            "a code was sent less than a minute ago; wait before asking again",
            retry_after=recent[-1] + RESEND_INTERVAL_SECONDS - now,
            code="code_recently_sent",
        )
    if len(recent) >= MAX_SENDS_PER_WINDOW:
        raise Throttled(
            f"at most {MAX_SENDS_PER_WINDOW} codes an hour; wait before asking again",
            retry_after=recent[-MAX_SENDS_PER_WINDOW] + RESEND_WINDOW_SECONDS - now,
            code="too_many_codes",
        )

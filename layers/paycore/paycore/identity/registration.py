"""Registration: create a pending user, send a verification code, verify it, resend on request."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from paycore import delivery
from paycore.data import users as user_store
from paycore.data.users import ACTIVE, PENDING, StaleUser, UserItem
from paycore.errors import Conflict, Throttled, Unauthorized
from paycore.identity import codes, derived, passwords
from paycore.observability import Metric, count, logger
from paycore.schemas.identity import RegisterIn, RegisterOut, ResendOut, VerifyOut

T = TypeVar("T")

_STALE_RETRIES = 3


def normalize_username(username: str) -> str:
    return username.strip().lower()


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


def _new_code_fields(username: str, *, now: int) -> tuple[str, dict[str, object]]:
    """A fresh code and the user fields that store it (its hash, key version, expiry)."""
    code = codes.new_code()
    version = derived.current_version()
    pepper = derived.key_for(version, derived.VERIFICATION_CODE_PEPPER, b"")
    return code, {
        "code_hash": codes.code_hash(pepper, username, code),
        "code_key_version": version,
        "code_expires_at": now + codes.CODE_SECONDS,
        "code_attempts": 0,
    }


def _send_code(user: UserItem, code: str) -> None:
    """Email and SMS the code. A channel that fails is logged and counted, not raised: the user
    exists either way and can ask for another code."""
    text = f"Your serverless-payments verification code is {code}. It expires in {codes.CODE_SECONDS // 60} minutes."
    sends: list[tuple[str, Callable[[], str]]] = [
        ("email", lambda: delivery.send_email(user.email, "Your verification code", text)),
        ("sms", lambda: delivery.send_sms(user.phone_number, text)),
    ]
    for channel, send in sends:
        try:
            send()
        except delivery.DeliveryFailed as exc:
            logger.error("verification code not delivered", extra={"channel": channel, "reason": exc.reason})
            count(Metric.VERIFICATION_DELIVERY_FAILED)


def register(request: RegisterIn, *, now: int | None = None) -> RegisterOut:
    now = _now(now)
    username = normalize_username(request.username)
    passwords.check_policy(request.password, username=username)
    code, code_fields = _new_code_fields(username, now=now)
    user = user_store.new_user(
        username=username,
        user_id=str(uuid.uuid4()),
        email=request.email.strip().lower(),
        phone_number=request.phone_number,
        password_hash=passwords.hash_password(request.password),
        status=PENDING,
        created_at=now,
        code_sends=[now],
        **code_fields,
    )
    try:
        user_store.create_user(user)
    except user_store.UserExists as exc:
        raise Conflict("the username, email or phone number is already registered", code="user_exists") from exc
    count(Metric.USER_REGISTERED)
    _send_code(user, code)
    return RegisterOut(user_id=user.user_id, username=user.username, status=PENDING)


def _retrying_stale(action: Callable[[], T]) -> T:
    for _ in range(_STALE_RETRIES - 1):
        try:
            return action()
        except StaleUser:
            continue
    return action()


def verify(username: str, code: str, *, now: int | None = None) -> VerifyOut:
    """Check ``code`` for ``username``; every wrong try is counted with a conditional write."""
    now = _now(now)
    key = normalize_username(username)

    def attempt() -> VerifyOut:
        user = user_store.get_user(key)
        if user is None:
            raise Unauthorized("the code is wrong", code="invalid_code")
        if user.status == ACTIVE:
            raise Conflict("the account is already verified", code="already_verified")
        try:
            pepper = derived.key_for(user.code_key_version or "", derived.VERIFICATION_CODE_PEPPER, b"")
            presented = codes.code_hash(pepper, key, code)
        except derived.UnknownKeyVersion:
            presented = ""
        expires_at = None if user.code_expires_at is None else int(user.code_expires_at)
        stored = codes.StoredCode(user.code_hash, expires_at, int(user.code_attempts))
        outcome = codes.check(stored, presented, now=now)
        burn = [UserItem.code_hash.remove(), UserItem.code_expires_at.remove(), UserItem.code_key_version.remove()]
        if outcome is codes.Outcome.ACCEPTED:
            user_store.update_user(user, [UserItem.status.set(ACTIVE), UserItem.code_attempts.set(0), *burn])
            count(Metric.USER_VERIFIED)
            return VerifyOut(status=ACTIVE)
        if outcome is codes.Outcome.WRONG:
            left = codes.MAX_WRONG_TRIES - stored.wrong_tries - 1
            user_store.update_user(user, [UserItem.code_attempts.add(1)])
            raise Unauthorized(f"the code is wrong; {left} tries left", code="invalid_code")
        if outcome is codes.Outcome.BURNT:
            user_store.update_user(user, [UserItem.code_attempts.add(1), *burn])
            raise Unauthorized("the code is wrong and no tries are left; request a new code", code="invalid_code")
        raise Unauthorized("no valid code: it expired, was used or was burnt; request a new one", code="code_expired")

    return _retrying_stale(attempt)


def resend(username: str, *, now: int | None = None) -> ResendOut:
    """Send a new code to a pending user, within the resend limits (429 with Retry-After beyond).

    An unknown or already active username gets the same answer and nothing is sent.
    """
    now = _now(now)
    key = normalize_username(username)
    answer = ResendOut(message="If the account awaits verification, a new code is on its way.")
    user = user_store.get_user(key)
    if user is None or user.status != PENDING:
        return answer
    sent_at = user_store.code_send_times(user)
    codes.check_send_allowed(sent_at, now=now)
    code, fields = _new_code_fields(key, now=now)
    sends = [*codes.recent_sends(sent_at, now=now), now]
    actions = [getattr(UserItem, name).set(value) for name, value in fields.items()]
    try:
        user_store.update_user(user, [*actions, UserItem.code_sends.set(sends)])  # type: ignore[arg-type]
    except StaleUser as exc:
        # Another request changed the user in between (most likely a concurrent resend that won).
        raise Throttled(
            "a code was just sent; wait before asking again",
            retry_after=codes.RESEND_INTERVAL_SECONDS,
            code="code_recently_sent",
        ) from exc
    _send_code(user, code)
    return answer

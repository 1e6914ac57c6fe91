"""Sessions: start one at login, rotate its refresh token, end it, and give out its signing key.

A session lives 30 days from login (absolute: refreshing does not extend it). It hands out:

- access tokens (15 minutes, :mod:`paycore.identity.tokens`), re-issued at every refresh;
- an opaque refresh token: 32 random bytes from ``secrets`` (256 bits), base64url, stored only as
  its SHA-256. Each one works once; presenting one that was already used revokes the session
  (``token_reused``), because either the client or a thief holds a copy it should not;
- a signing key for ``X-Signature``: HKDF-SHA256 of the identity HMAC secret's version
  ``key_version`` and the session id (:mod:`paycore.identity.derived`); nothing secret is stored on
  the session, and :func:`signing_key_for` derives the same 32 bytes whenever asked.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Final

from paycore.config import identity_settings
from paycore.data import sessions as session_store
from paycore.errors import Unauthorized
from paycore.identity import derived, keys, tokens
from paycore.observability import Metric, count, logger

if TYPE_CHECKING:  # pydantic stays out of the authorizer's cold start (it only needs active_session)
    from paycore.schemas.identity import TokenOut

SESSION_SECONDS: Final = 30 * 24 * 60 * 60
REFRESH_TOKEN_BYTES: Final = 32


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def encode_signing_key(key: bytes) -> str:
    """base64url without padding: the ``signing_key`` clients receive."""
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def _signing_key(session: session_store.SessionItem) -> bytes:
    return derived.key_for(session.key_version, derived.SESSION_SIGNING_KEY, session.session_id.encode("utf-8"))


def _inactive() -> Unauthorized:
    return Unauthorized("the session has ended; log in again", code="session_inactive")


def signing_key_for(session_id: str) -> bytes:
    """The 32-byte HMAC key of an active session, for checking ``X-Signature``.

    Raises Unauthorized ``session_inactive`` when the session is unknown, revoked or expired (or its
    key version has been removed from the secret, which rotation does only after 30 days).
    """
    session = session_store.get_session(session_id)
    if session is None or not session.is_active(int(time.time())):
        raise _inactive()
    try:
        return _signing_key(session)
    except derived.UnknownKeyVersion as exc:
        logger.warning("session key version is no longer in the secret", extra={"key_version": session.key_version})
        raise _inactive() from exc


def _tokens_for(session: session_store.SessionItem, refresh_token: str, *, now: int) -> TokenOut:
    from paycore.schemas.identity import TokenOut

    settings = identity_settings()
    access = tokens.encode_access_token(
        keys.current_key_set(),
        issuer=settings.issuer,
        audience=settings.audience,
        user_id=session.user_id,
        session_id=session.session_id,
        now=now,
    )
    return TokenOut(
        access_token=access,
        expires_in=tokens.ACCESS_TOKEN_SECONDS,
        refresh_token=refresh_token,
        signing_key=encode_signing_key(_signing_key(session)),
    )


def _new_refresh_token(session: session_store.SessionItem, *, now: int) -> tuple[str, session_store.RefreshTokenItem]:
    token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    item = session_store.new_refresh_token(
        token_hash=hash_refresh_token(token),
        session_id=session.session_id,
        user_id=session.user_id,
        issued_at=now,
        expires_at=int(session.expires_at),
    )
    return token, item


def start_session(user_id: str, *, now: int | None = None) -> TokenOut:
    now = _now(now)
    session = session_store.new_session(
        session_id=str(uuid.uuid4()),
        user_id=user_id,
        created_at=now,
        expires_at=now + SESSION_SECONDS,
        status=session_store.ACTIVE,
        key_version=derived.current_version(),
    )
    refresh_token, item = _new_refresh_token(session, now=now)
    session_store.create_session(session, item)
    count(Metric.SESSION_STARTED)
    return _tokens_for(session, refresh_token, now=now)


def _reused(session_id: str, *, now: int) -> Unauthorized:
    session_store.revoke_session(session_id, reason="refresh_token_reused", now=now)
    logger.warning("refresh token reused; session revoked", extra={"session_id": session_id})
    count(Metric.REFRESH_TOKEN_REUSED)
    return Unauthorized("this refresh token was already used; the session is revoked", code="token_reused")


def refresh(refresh_token: str, *, now: int | None = None) -> TokenOut:
    """Exchange a refresh token for new tokens; the presented one stops working."""
    now = _now(now)
    current = session_store.get_refresh_token(hash_refresh_token(refresh_token))
    if current is None:
        raise Unauthorized("the refresh token is not valid", code="invalid_token")
    if current.used_at is not None:
        raise _reused(current.session_id, now=now)
    session = session_store.get_session(current.session_id)
    if session is None or not session.is_active(now):
        raise _inactive()
    next_token, item = _new_refresh_token(session, now=now)
    try:
        session_store.rotate_refresh_token(current, item, now=now)
    except session_store.RotationRefused as exc:
        if exc.reason == "token_used":
            # Another request exchanged the same token first: two holders of one token.
            raise _reused(current.session_id, now=now) from exc
        raise _inactive() from exc
    return _tokens_for(session, next_token, now=now)


def end_session(session_id: str, *, now: int | None = None) -> None:
    if session_store.revoke_session(session_id, reason="logout", now=_now(now)):
        count(Metric.SESSION_ENDED)


def active_session(session_id: str, user_id: str, *, now: int) -> bool:
    """True when the session exists, belongs to ``user_id``, is not revoked and has not expired."""
    session = session_store.get_session(session_id)
    return session is not None and session.user_id == user_id and session.is_active(now)

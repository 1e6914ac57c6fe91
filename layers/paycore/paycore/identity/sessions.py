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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from paycore.config import identity_settings
from paycore.data import sessions as session_store
from paycore.errors import Unauthorized
from paycore.identity import derived, keys, tokens
from paycore.observability import Metric, count, logger

if TYPE_CHECKING:  # pydantic stays out of the authorizer's cold start (it only needs active_key_version)
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


@dataclass(frozen=True)
class _Session:
    """What issuing tokens needs of a session: the session item has it, and so does each refresh
    token (which copies the session's user, expiry and key version when it is issued)."""

    session_id: str
    user_id: str
    expires_at: int
    key_version: str


def _facts(item: session_store.SessionItem) -> _Session:
    return _Session(item.session_id, item.user_id, int(item.expires_at), item.key_version)


def _signing_key(session: _Session) -> bytes:
    return derived.key_for(session.key_version, derived.SESSION_SIGNING_KEY, session.session_id.encode("utf-8"))


def _inactive() -> Unauthorized:
    return Unauthorized("the session has ended; log in again", code="session_inactive")


def signing_key_for(session_id: str, key_version: str | None = None) -> bytes:
    """The 32-byte HMAC key of an active session, for checking ``X-Signature``.

    ``key_version`` is the session's, as the authorizer found it when it checked the session in
    this same request (its context carries it): the key is derived without reading the session
    again. Without it (a context from an authorizer that did not pass it), the session is read
    consistently here. Raises Unauthorized ``session_inactive`` when the session is unknown, revoked
    or expired (or its key version has been removed from the secret, which rotation does only after
    30 days).
    """
    if key_version is None:
        session = session_store.get_session(session_id)
        if session is None or not session.is_active(int(time.time())):
            raise _inactive()
        key_version = session.key_version
    try:
        return derived.key_for(key_version, derived.SESSION_SIGNING_KEY, session_id.encode("utf-8"))
    except derived.UnknownKeyVersion as exc:
        logger.warning("session key version is no longer in the secret", extra={"key_version": key_version})
        raise _inactive() from exc


def _tokens_for(session: _Session, refresh_token: str, *, now: int) -> TokenOut:
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


def _new_refresh_token(session: _Session, *, now: int) -> tuple[str, session_store.RefreshTokenItem]:
    token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    item = session_store.new_refresh_token(
        token_hash=hash_refresh_token(token),
        session_id=session.session_id,
        user_id=session.user_id,
        issued_at=now,
        expires_at=session.expires_at,
        key_version=session.key_version,
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
    facts = _facts(session)
    refresh_token, item = _new_refresh_token(facts, now=now)
    session_store.create_session(session, item)
    count(Metric.SESSION_STARTED)
    return _tokens_for(facts, refresh_token, now=now)


def _reused(session_id: str, *, now: int) -> Unauthorized:
    session_store.revoke_session(session_id, reason="refresh_token_reused", now=now)
    logger.warning("refresh token reused; session revoked", extra={"session_id": session_id})
    count(Metric.REFRESH_TOKEN_REUSED)
    return Unauthorized("this refresh token was already used; the session is revoked", code="token_reused")


def _session_of(token: session_store.RefreshTokenItem, *, now: int) -> _Session:
    """The session a refresh token belongs to, from the token itself: it carries the session's
    user, expiry and key version, and the rotation's transaction requires the session to be
    active, so the session need not be read first. A token issued before tokens carried the key
    version (at most 30 days before this code was deployed) reads the session instead."""
    if token.key_version is not None:
        if now >= int(token.expires_at):
            raise _inactive()
        return _Session(token.session_id, token.user_id, int(token.expires_at), token.key_version)
    session = session_store.get_session(token.session_id)
    if session is None or not session.is_active(now):
        raise _inactive()
    return _facts(session)


def refresh(refresh_token: str, *, now: int | None = None) -> TokenOut:
    """Exchange a refresh token for new tokens; the presented one stops working.

    Two DynamoDB requests: the token's consistent read, then the rotation's transaction, which is
    conditioned on the token being unused and on the session being active and unexpired (a
    logged-out or revoked session refuses it: ``session_inactive``, nothing written).
    """
    now = _now(now)
    current = session_store.get_refresh_token(hash_refresh_token(refresh_token))
    if current is None:
        raise Unauthorized("the refresh token is not valid", code="invalid_token")
    if current.used_at is not None:
        raise _reused(current.session_id, now=now)
    session = _session_of(current, now=now)
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


def active_key_version(session_id: str, user_id: str, *, now: int) -> str | None:
    """The session's signing-key version when the session exists, belongs to ``user_id``, is not
    revoked and has not expired; None otherwise (one consistent GetItem)."""
    session = session_store.get_session(session_id)
    if session is None or session.user_id != user_id or not session.is_active(now):
        return None
    return session.key_version


def active_session(session_id: str, user_id: str, *, now: int) -> bool:
    """True when the session exists, belongs to ``user_id``, is not revoked and has not expired."""
    return active_key_version(session_id, user_id, now=now) is not None

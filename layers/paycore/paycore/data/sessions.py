"""Sessions and their refresh tokens in DynamoDB.

``SessionsTable``: one item per login, keyed by ``session_id``: the user, the absolute expiry
(30 days after login, also the table's TTL attribute), ``status`` (``active`` or ``revoked``) and
``key_version``, the version of the identity HMAC secret its signing key is derived from.

``RefreshTokensTable``: one item per refresh token ever issued, keyed by the SHA-256 of the token
(the token itself is never stored), with ``used_at`` set once it has been exchanged, and a copy of
its session's user, expiry and ``key_version`` (a refresh issues tokens from these without reading
the session; its transaction still requires the session to be active). Keeping used
tokens until the session's expiry is what lets a replayed token be recognised as a replay and
revoke the session, however many rotations later it comes back.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.models import Model

from paycore.config import identity_settings
from paycore.data.base import TransactionFailed, bind, transact_write

ACTIVE = "active"
REVOKED = "revoked"


class SessionItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "SessionsTable"

    session_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    created_at = NumberAttribute()
    expires_at = NumberAttribute()  # the table's TTL attribute; expiry is checked in code as well
    status = UnicodeAttribute(default=ACTIVE)
    key_version = UnicodeAttribute()
    revoked_at = NumberAttribute(null=True)
    revoked_reason = UnicodeAttribute(null=True)
    last_refreshed_at = NumberAttribute(null=True)

    def is_active(self, now: int) -> bool:
        return self.status == ACTIVE and now < int(self.expires_at)


class RefreshTokenItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "RefreshTokensTable"

    token_hash = UnicodeAttribute(hash_key=True)
    session_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    issued_at = NumberAttribute()
    expires_at = NumberAttribute()  # the session's expiry; the table's TTL attribute
    used_at = NumberAttribute(null=True)
    # The session's signing-key version, copied so that a refresh need not read the session (null
    # on tokens issued before it was copied).
    key_version = UnicodeAttribute(null=True)


class RotationRefused(Exception):
    """The rotation did not commit: ``reason`` is ``token_used`` (it was used first by another
    request) or ``session_inactive`` (the session ended meanwhile)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _sessions() -> type[SessionItem]:
    return bind(SessionItem, identity_settings().sessions_table)


def _tokens() -> type[RefreshTokenItem]:
    return bind(RefreshTokenItem, identity_settings().refresh_tokens_table)


def new_session(**fields: Any) -> SessionItem:
    return _sessions()(**fields)


def new_refresh_token(**fields: Any) -> RefreshTokenItem:
    return _tokens()(**fields)


def create_session(session: SessionItem, first_token: RefreshTokenItem) -> None:
    sessions, tokens = _sessions(), _tokens()

    def build(tx: Any) -> None:
        tx.save(session, condition=sessions.session_id.does_not_exist())
        tx.save(first_token, condition=tokens.token_hash.does_not_exist())

    transact_write(build)


def get_session(session_id: str) -> SessionItem | None:
    """The session, read consistently: a logout is seen by the very next request."""
    try:
        return _sessions().get(session_id, consistent_read=True)
    except DoesNotExist:
        return None


def get_refresh_token(token_hash: str) -> RefreshTokenItem | None:
    try:
        return _tokens().get(token_hash, consistent_read=True)
    except DoesNotExist:
        return None


def rotate_refresh_token(old: RefreshTokenItem, new: RefreshTokenItem, *, now: int) -> None:
    """In one transaction: mark ``old`` used (only if unused), store ``new``, and require the session
    to be active and unexpired. Raises :class:`RotationRefused`."""
    sessions, tokens = _sessions(), _tokens()

    def build(tx: Any) -> None:
        tx.update(old, actions=[tokens.used_at.set(now)], condition=tokens.used_at.does_not_exist())
        tx.save(new, condition=tokens.token_hash.does_not_exist())
        tx.update(
            sessions(session_id=old.session_id),
            actions=[sessions.last_refreshed_at.set(now)],
            condition=(sessions.status == ACTIVE) & (sessions.expires_at > now),
        )

    try:
        transact_write(build)
    except TransactionFailed as exc:
        raise RotationRefused("token_used" if 0 in exc.failed else "session_inactive") from exc


def revoke_session(session_id: str, *, reason: str, now: int) -> bool:
    """End the session; True if this call ended it, False if it had already ended."""
    sessions = _sessions()
    try:
        sessions(session_id=session_id).update(
            actions=[
                sessions.status.set(REVOKED),
                sessions.revoked_at.set(now),
                sessions.revoked_reason.set(reason),
            ],
            condition=(sessions.session_id.exists()) & (sessions.status == ACTIVE),
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True

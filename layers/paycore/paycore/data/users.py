"""Users and their uniqueness claims in DynamoDB.

``UsersTable``: one item per user, keyed by the normalised (lower-case) username, holding the
argon2id hash, the contact details, the status and the outstanding verification code (its hash
only). ``UserClaimsTable``: one item per email address and per phone number in use
(``email#<address>``, ``phone#<E.164>``), pointing back at the username.

Registration writes the user and both claims in one TransactWriteItems, each Put conditioned on
``attribute_not_exists`` of its key: two registrations that share a username, an email or a phone
number cannot both commit, whatever the timing (no read-then-write anywhere). Later changes to a
user are conditional on its ``version`` (optimistic locking), so two concurrent resends or
verifications cannot both act on the same state.
"""

from __future__ import annotations

from typing import Any, Final

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from paycore.config import identity_settings
from paycore.data.base import TransactionFailed, bind, transact_write

PENDING: Final = "pending_verification"
ACTIVE: Final = "active"


class StaleUser(Exception):
    """The user changed since it was read (another request won); the caller decides what that means."""


class UserExists(Exception):
    """A registration collided with an existing username, email or phone number."""


class UserItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "UsersTable"

    username = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    email = UnicodeAttribute()
    phone_number = UnicodeAttribute()
    password_hash = UnicodeAttribute()
    status = UnicodeAttribute(default=PENDING)
    created_at = NumberAttribute()
    code_hash = UnicodeAttribute(null=True)
    code_key_version = UnicodeAttribute(null=True)
    code_expires_at = NumberAttribute(null=True)
    code_attempts = NumberAttribute(default=0)
    # When codes were sent (epoch seconds), the last hour's only: the resend limits read it.
    code_sends = ListAttribute(of=NumberAttribute, default=list)  # type: ignore[var-annotated]
    version = VersionAttribute()


class ClaimItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "UserClaimsTable"

    claim = UnicodeAttribute(hash_key=True)
    username = UnicodeAttribute()
    created_at = NumberAttribute()


def _users() -> type[UserItem]:
    return bind(UserItem, identity_settings().users_table)


def _claims() -> type[ClaimItem]:
    return bind(ClaimItem, identity_settings().claims_table)


def email_claim(email: str) -> str:
    return f"email#{email}"


def phone_claim(phone_number: str) -> str:
    return f"phone#{phone_number}"


def new_user(**fields: Any) -> UserItem:
    return _users()(**fields)


def create_user(user: UserItem) -> None:
    """Write ``user`` and its email and phone claims atomically; raises :class:`UserExists`."""
    users, claims = _users(), _claims()
    owned = [
        claims(claim=email_claim(user.email), username=user.username, created_at=user.created_at),
        claims(claim=phone_claim(user.phone_number), username=user.username, created_at=user.created_at),
    ]

    def build(tx: Any) -> None:
        tx.save(user, condition=users.username.does_not_exist())
        for item in owned:
            tx.save(item, condition=claims.claim.does_not_exist())

    try:
        transact_write(build)
    except TransactionFailed as exc:
        raise UserExists() from exc


def get_user(username: str) -> UserItem | None:
    try:
        return _users().get(username, consistent_read=True)
    except DoesNotExist:
        return None


def code_send_times(user: UserItem) -> list[int]:
    """When codes were last sent to ``user`` (epoch seconds); numbers come back from DynamoDB as floats."""
    raw: Any = user.code_sends or []
    return [int(t) for t in raw]


def update_user(user: UserItem, actions: list[Action]) -> None:
    """Apply ``actions`` if nobody changed ``user`` since it was read; raises :class:`StaleUser`."""
    try:
        user.update(actions=actions)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise StaleUser() from exc
        raise


def save_new_password_hash(user: UserItem, password_hash: str) -> None:
    """Store a rehash made with newer parameters; losing a race to another change is harmless."""
    try:
        update_user(user, [UserItem.password_hash.set(password_hash)])
    except StaleUser:
        return

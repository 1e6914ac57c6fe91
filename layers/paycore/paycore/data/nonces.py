"""X-Signature nonces: one item per (session, nonce), claimed with a conditional put.

The item lives until ``expires_at`` (the table's TTL attribute). DynamoDB deletes expired items
lazily (within days), so the condition also accepts an expired leftover: a request carrying that
nonce would be refused by the timestamp window anyway.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from paycore.config import nonce_settings
from paycore.data.base import bind, is_condition_failure
from paycore.errors import DataAccessError


class NonceItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "NoncesTable"

    pk = UnicodeAttribute(hash_key=True)  # "<session_id>#<nonce>"
    expires_at = NumberAttribute()  # TTL attribute (unix seconds)
    claim = UnicodeAttribute()  # random per claim: recognises our own write when the SDK retried it


class DynamoNonceStore:
    """The :class:`paycore.request_signature.NonceStore` of the deployed functions."""

    def claim(self, session_id: str, nonce: str, expires_at: int) -> bool:
        import secrets
        import time

        model = bind(NonceItem, nonce_settings().table)
        claim = secrets.token_hex(8)
        item = model(pk=f"{session_id}#{nonce}", expires_at=expires_at, claim=claim)
        try:
            item.save(condition=model.pk.does_not_exist() | (model.expires_at < int(time.time())))
        except PutError as exc:
            if not is_condition_failure(exc):
                raise DataAccessError("could not record the request nonce") from exc
            # The SDK retries a put whose answer was lost; the retry then meets our own item.
            try:
                return model.get(item.pk, consistent_read=True).claim == claim
            except model.DoesNotExist:
                return False
        return True

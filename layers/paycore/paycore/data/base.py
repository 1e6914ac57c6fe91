"""Binding PynamoDB models to the configured tables and endpoint, once per container.

Table names are configuration (``*_TABLE`` variables), not class constants: :func:`bind` points a
model at its table before use and keeps the connection until the configuration changes or
:func:`paycore.aws.reset_clients` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from paycore.aws import on_reset
from paycore.config import aws_settings

M = TypeVar("M", bound=type[Model])

_BOUND: set[type[Model]] = set()
_CONNECTION: list[Connection] = []


def bind(model: M, table_name: str) -> M:
    """Point ``model`` at ``table_name`` on the configured endpoint; cheap when nothing changed."""
    settings = aws_settings()
    meta: Any = model.Meta
    if (
        getattr(meta, "table_name", None) != table_name
        or getattr(meta, "host", None) != settings.endpoint_url
        or getattr(meta, "region", None) != settings.region
    ):
        meta.table_name = table_name
        meta.host = settings.endpoint_url
        meta.region = settings.region
        model._connection = None
    _BOUND.add(model)
    return model


def connection() -> Connection:
    """A PynamoDB connection for transactions that span tables (``TransactWrite``)."""
    settings = aws_settings()
    if _CONNECTION:
        conn = _CONNECTION[0]
        if conn.host == settings.endpoint_url and conn.region == settings.region:
            return conn
        _CONNECTION.clear()
    conn = Connection(region=settings.region, host=settings.endpoint_url)
    _CONNECTION.append(conn)
    return conn


@on_reset
def reset_models() -> None:
    for model in _BOUND:
        model._connection = None
        meta: Any = model.Meta
        meta.table_name = None
    _BOUND.clear()
    _CONNECTION.clear()


class TransactionFailed(Exception):
    """A transaction was cancelled because a condition failed; ``failed`` lists the indexes (in the
    order the items were added) whose condition did not hold."""

    def __init__(self, failed: list[int]):
        self.failed = failed
        super().__init__(f"transaction cancelled: conditions failed at items {failed}")


def transact_write(build: Callable[[TransactWrite], None], *, attempts: int = 3) -> None:
    """Run one TransactWriteItems built by ``build``, all or nothing.

    A cancellation for a failed condition raises :class:`TransactionFailed`; a cancellation only
    because another transaction held an item (``TransactionConflict``, which DynamoDB answers
    instead of waiting) is retried, with a short random pause, up to ``attempts`` times.
    """
    import random
    import time

    for attempt in range(1, attempts + 1):
        try:
            with TransactWrite(connection=connection()) as transaction:
                build(transaction)
            return
        except TransactWriteError as exc:
            reasons = exc.cancellation_reasons if exc.cause_response_code == "TransactionCanceledException" else []
            codes = [r.code if r is not None else None for r in reasons]
            failed = [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
            if failed:
                raise TransactionFailed(failed) from exc
            if "TransactionConflict" in codes and attempt < attempts:
                time.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311  # nosec B311  # retry jitter, not a secret
                continue
            raise


def is_condition_failure(exc: Exception) -> bool:
    """True when a PynamoDB write failed on its condition (not on throttling or an outage)."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def is_transaction_cancelled(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "TransactionCanceledException"


def get_or_none(model: type[Any], hash_key: str, range_key: str | None, what: str) -> Any:
    """One consistent read of an item; None when it does not exist, DataAccessError on failure."""
    from pynamodb.exceptions import GetError

    from paycore.errors import DataAccessError

    try:
        return model.get(hash_key, range_key, consistent_read=True)
    except model.DoesNotExist:
        return None
    except GetError as exc:
        raise DataAccessError(f"could not read the {what}") from exc


def transact(what: str, build: Callable[[TransactWrite], None]) -> bool:
    """:func:`transact_write` for writers that decide again on a refusal: False when the transaction
    was cancelled (a condition failed, or conflicts outlasted the retries), so the caller re-reads
    and re-plans; DataAccessError for anything else."""
    from paycore.errors import DataAccessError

    try:
        transact_write(build)
    except TransactionFailed:
        return False
    except TransactWriteError as exc:
        if is_transaction_cancelled(exc):
            return False
        raise DataAccessError(f"could not {what}") from exc
    return True

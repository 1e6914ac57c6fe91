"""Client-keyed idempotency for API calls, on Powertools' idempotency utility.

:func:`run_once` runs ``work`` at most once per ``key`` while the record lives
(``IDEMPOTENCY_TTL_SECONDS``) and answers repeats from the stored response:

* same key, same payload, first call finished → the first response, replayed;
* same key, different payload → 422 ``idempotency_mismatch`` (``payload_validation_jmespath``);
* same key while the first call is still running → 409 ``request_in_progress`` with Retry-After;
* the first call raised → the record is deleted, so a retry runs ``work`` again;
* the first call timed out → its record stays "in progress" until the Lambda's deadline, then a
  retry runs ``work`` again. ``work`` must therefore be safe to run twice: the order and refund
  writes are conditional puts that recognise their own earlier result (docs/orders.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paycore.errors import Conflict, InvalidRequest

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
RETRY_AFTER_SECONDS = 2


def run_once(
    operation: str,
    key: dict[str, Any],
    payload: dict[str, Any],
    work: Callable[[], dict[str, Any]],
    lambda_context: Any = None,
) -> dict[str, Any]:
    """Run ``work()`` once per (``operation``, ``key``); ``payload`` must match on every repeat."""
    # Imported on first use: Powertools' idempotency utility is a large import that only the
    # state-changing routes need, so the read routes' cold starts skip it (docs/performance.md).
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    from paycore.data.idempotency import persistence_layer

    config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="payload",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        hash_function="sha256",
    )
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)

    @idempotent_function(
        data_keyword_argument="request",
        persistence_store=persistence_layer(),
        config=config,
        key_prefix=f"paycore.{operation}",
    )
    def _run(request: dict[str, Any]) -> dict[str, Any]:
        return work()

    try:
        result: dict[str, Any] = _run(request={"key": key, "payload": payload})
    except IdempotencyAlreadyInProgressError as exc:
        raise Conflict(
            "The same request is still being processed; retry shortly.",
            code="request_in_progress",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from exc
    except IdempotencyValidationError as exc:
        raise InvalidRequest(
            "This idempotency key was already used with a different request body.",
            code="idempotency_mismatch",
        ) from exc
    return result

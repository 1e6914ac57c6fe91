"""Make each moto request atomic, as each request to the real service is.

moto's backends are not thread-safe: under concurrent requests its DynamoDB TransactWriteItems
deep-copies table state while another thread writes to it, and fails with "dictionary changed
size during iteration" (seen in the 10-way registration race). Real DynamoDB executes each request
atomically, and conditional writes and transactions are what make our code correct under races.
Serialising moto's request handling with one lock restores per-request atomicity and keeps the
interleaving of requests from different threads: races between requests are still exercised.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_PATCHED = False


def serialize_moto_requests() -> None:
    """Wrap moto's response dispatch in one process-wide lock (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with _LOCK:
            return original(self)

    BaseResponse.call_action = call_action  # type: ignore[method-assign]
    _PATCHED = True

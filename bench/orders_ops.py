"""Orders, callbacks, refunds and the scheduled jobs as bench operations (filled in as they land)."""

from __future__ import annotations

from bench.operations import Operation

ORDERS: list[Operation] = []

"""The template's scheduled functions (``Schedule``/``ScheduleV2`` events), run on demand or on their rate.

moto stores EventBridge rules and schedules but never fires them, so the local stack runs a
scheduled function itself: ``POST /_local/schedules/{function}`` runs it now, and
``--fire-schedules`` also fires every ``rate(...)`` schedule on its rate (``cron(...)`` ones only
run on demand). The input is the request's JSON body; with no body it is the event's ``Input``
from the template, else the event EventBridge sends for a scheduled rule.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from infra.local.events import scheduled_event
from infra.local.runtime import FunctionRuntime, Invocation
from infra.local.template import ACCOUNT_ID, FunctionSpec

log = logging.getLogger("infra.local")

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int | None:
    """Seconds between firings of a ``rate(...)`` expression; None for ``cron(...)``/``at(...)``."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def expression_of(props: Mapping[str, Any]) -> str:
    return str(props.get("Schedule") or props.get("ScheduleExpression") or "")


def is_enabled(props: Mapping[str, Any]) -> bool:
    if props.get("Enabled") is False:
        return False
    return str(props.get("State", "ENABLED")).upper() != "DISABLED"


class UnknownSchedule(KeyError):
    pass


class ScheduleRunner:
    def __init__(
        self,
        schedules: Mapping[str, Mapping[str, Any]],
        *,
        specs: Mapping[str, FunctionSpec],
        runtime: FunctionRuntime,
        region: str,
    ):
        self.schedules = dict(schedules)
        self.specs = specs
        self.runtime = runtime
        self.region = region
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def names(self) -> dict[str, str]:
        """URL name (the function's folder, as in ``/_local/schedules/stats``) -> logical id."""
        return {self.specs[lid].name: lid for lid in self.schedules}

    def find(self, name: str) -> str:
        """The logical id for a function folder name or logical id (case-insensitive)."""
        for lid in self.schedules:
            if name.lower() in (lid.lower(), self.specs[lid].name.lower()):
                return lid
        raise UnknownSchedule(name)

    def input_for(self, logical_id: str, body: bytes) -> Any:
        """The event for a run: the JSON body, else the template's Input, else a scheduled event.
        Raises ValueError on a body that is not JSON."""
        if body.strip():
            return json.loads(body)
        props = self.schedules[logical_id]
        if props.get("Input") is not None:
            declared = props["Input"]
            return json.loads(declared) if isinstance(declared, str) else declared
        rule = f"arn:aws:events:{self.region}:{ACCOUNT_ID}:rule/{self.specs[logical_id].physical_name}-schedule"
        return scheduled_event(rule_arn=rule, region=self.region)

    def run(self, name: str, body: bytes = b"") -> Invocation:
        logical_id = self.find(name)
        return self.runtime.invoke(logical_id, self.input_for(logical_id, body))

    # ------------------------------------------------------------------ firing on rate
    def _fire(self, logical_id: str, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.runtime.invoke(logical_id, self.input_for(logical_id, b""))
                log.info("fired the schedule of %s (every %g s)", logical_id, every)
            except Exception as exc:  # the failure is logged by the runtime; keep the schedule going
                log.warning("the schedule of %s failed: %s", logical_id, exc)

    def start_firing(self, period_of: Callable[[str], float | None] = rate_seconds) -> list[str]:
        """Fire every enabled rate() schedule on its rate; returns what is not fired, and why.
        ``period_of`` turns an expression into seconds between firings (None: not fired)."""
        skipped = []
        for lid, props in self.schedules.items():
            expression = expression_of(props)
            every = period_of(expression)
            if not is_enabled(props):
                skipped.append(f"{lid}: disabled in the template")
            elif every is None:
                skipped.append(f"{lid}: {expression} runs only through /_local/schedules")
            else:
                thread = threading.Thread(target=self._fire, args=(lid, every), name=f"schedule-{lid}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return skipped

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

"""One simulated run: set the sandbox's behaviour, play the plan with N virtual users, let webhooks
settle, refund, expire what was abandoned, then read everything back for the checker.

Phases (docs/simulator.md, "What a run does"):

1. accounts: every virtual user registers, verifies (the code from the outbox) and logs in, before
   the traffic starts, so the traffic window holds orders only;
2. sandbox knobs: the scenario's webhook knobs, and each channel's success rate, outage and latency
   as per-channel knobs, updated every half second of the run from the scenario's clock;
3. traffic: at each planned start time a user lists the channels, creates a signed order, and as
   the payer pays, declines, abandons or cancels it; paid orders are refunded as planned as soon
   as the payment shows (or after the webhooks settle);
4. settle: wait until the sandbox's webhook queue is empty (duplicates, delays and retries included);
5. expiry: ``advance`` runs the sweeper's own code with its clock moved past every order's expiry
   (local stack only; then the real sweeper route once), ``wait`` waits for the short expiries
   and calls the sweeper route; then settle again;
6. read back: every order through the API as its owner, the service's history and the provider's
   record; the daily report of the run's day(s) before and after; then check.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests

from bench.simulator import ledger
from bench.simulator.accounts import AccountError, Accounts
from bench.simulator.backend import Target
from bench.simulator.checker import PAID_FAMILY, Observation
from bench.simulator.client import Api, Recorder, error_code
from bench.simulator.plan import Plan, PlannedOrder, PlannedUser, choose_channel
from bench.simulator.progress import Progress
from bench.simulator.scenario import Scenario

REFUND_WAIT_SECONDS = 3.0  # how long a payer's refund waits in line for the payment to show
KNOB_TICK_SECONDS = 0.5


@dataclass
class RunResult:
    observations: list[Observation]
    recorder: Recorder
    stats_before: list[dict[str, Any] | None]
    stats_after: list[dict[str, Any] | None]
    report_dates: list[str]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    traffic_seconds: float = 0.0
    sweeps: list[dict[str, Any]] = field(default_factory=list)


def _iso_seconds(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Run:
    def __init__(
        self,
        scenario: Scenario,
        plan: Plan,
        target: Target,
        accounts: Accounts,
        *,
        concurrency: int,
        progress: bool = True,
    ) -> None:
        self.scenario = scenario
        self.plan = plan
        self.target = target
        self.accounts = accounts
        self.concurrency = max(1, concurrency)
        self.show_progress = progress
        self.recorder = Recorder()
        self.observations: dict[str, Observation] = {}
        self.owners: dict[str, Api] = {}  # order key -> the user's session
        self.expiries: dict[str, float] = {}
        self.deferred: list[tuple[Api, Observation, PlannedOrder]] = []
        self.notes: list[str] = []
        self.sandbox = ledger.Sandbox()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._t0 = 0.0
        self._progress: Progress | None = None

    # ------------------------------------------------------------------ the whole run

    def execute(self) -> RunResult:
        timings: dict[str, float] = {}
        self.target.bind_paycore()
        dates = self._report_dates()
        mark = time.monotonic()
        stats_before = [self._stats(d) for d in dates]
        timings["baseline"] = time.monotonic() - mark
        sweeps: list[dict[str, Any]] = []
        mark = time.monotonic()
        sessions = self._sign_in_all()
        timings["accounts"] = time.monotonic() - mark
        try:
            self.sandbox.set(self.scenario.webhooks)
            self._t0 = time.monotonic()
            self._update_channels()
            threads = [threading.Thread(target=self._knob_ticker, name="knobs", daemon=True)]
            if self.scenario.expiry.sweep_every_seconds:
                threads.append(threading.Thread(target=self._sweep_ticker, args=(sweeps,), name="sweeps", daemon=True))
            for thread in threads:
                thread.start()
            self._progress = Progress(len(self.plan.orders), "orders", enabled=self.show_progress)
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="user") as pool:
                list(pool.map(lambda user: self._user(user, sessions.get(user.index)), self.plan.users))
            self._progress.close()
            traffic_seconds = time.monotonic() - self._t0
            timings["traffic"] = traffic_seconds
            self._stop.set()
            for thread in threads:
                thread.join()

            mark = time.monotonic()
            self._settle("payments")
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="refund") as pool:
                list(pool.map(lambda job: self._refunds(*job, wait=True), self.deferred))
            self._settle("refunds")
            timings["settle"] = time.monotonic() - mark

            mark = time.monotonic()
            sweeps += self._expire()
            self._settle("expiry")
            timings["expiry"] = time.monotonic() - mark
        finally:
            self._stop.set()
            self.sandbox.restore()

        mark = time.monotonic()
        self._read_back()
        timings["read_back"] = time.monotonic() - mark
        mark = time.monotonic()
        stats_after = [self._stats(d) for d in dates]
        timings["stats"] = time.monotonic() - mark
        return RunResult(
            observations=[self.observations[o.key] for o in self.plan.orders if o.key in self.observations],
            recorder=self.recorder,
            stats_before=stats_before,
            stats_after=stats_after,
            report_dates=dates,
            timings=timings,
            notes=self.notes,
            traffic_seconds=traffic_seconds,
            sweeps=sweeps,
        )

    # ------------------------------------------------------------------ the sandbox's behaviour

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    def _update_channels(self, last: dict[str, dict[str, int]] | None = None) -> dict[str, dict[str, int]]:
        now = self.scenario.simulated_time(self._elapsed())
        current = {}
        for name, behaviour in self.scenario.channels.items():
            knobs = ledger.channel_knobs(behaviour, now)
            if last is None or last.get(name) != knobs:
                self.sandbox.set(knobs, channel=name)
            current[name] = knobs
        return current

    def _knob_ticker(self) -> None:
        last = self._update_channels()
        while not self._stop.wait(KNOB_TICK_SECONDS):
            last = self._update_channels(last)

    def _sweep_ticker(self, sweeps: list[dict[str, Any]]) -> None:
        every = self.scenario.expiry.sweep_every_seconds or 0
        while not self._stop.wait(every):
            sweeps.append({"at": round(self._elapsed(), 1), "how": "route", **self._sweep_route()})

    # ------------------------------------------------------------------ users and orders

    def _sleep_until(self, offset: float) -> None:
        delay = self._t0 + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _sign_in_all(self) -> dict[int, Api]:
        """Every user's session (kept open: the read-back uses it); a user who could not sign in places nothing."""
        sessions: dict[int, Api] = {}
        progress = Progress(len(self.plan.users), "users signed in", enabled=self.show_progress)

        def sign_in(user: PlannedUser) -> None:
            api = Api(self.target.base_url, self.recorder)
            try:
                self.accounts.sign_in(api, user.index)
            except AccountError as exc:
                with self._lock:
                    self.notes.append(f"user {user.index}: {exc}; its {len(user.orders)} orders were not placed")
            else:
                with self._lock:
                    sessions[user.index] = api
            progress.advance()

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="signup") as pool:
            list(pool.map(sign_in, self.plan.users))
        progress.close()
        return sessions

    def _user(self, user: PlannedUser, api: Api | None) -> None:
        if api is None:
            for order in user.orders:
                self._observe(order, str(uuid.uuid4()))
                self._advance()
            return
        for order in user.orders:
            self._sleep_until(order.start)
            self._order(api, order)
            self._advance()

    def _advance(self) -> None:
        if self._progress is not None:
            self._progress.advance()

    def _observe(self, order: PlannedOrder, order_id: str) -> Observation:
        observation = Observation(
            key=order.key,
            order_id=order_id,
            currency=order.currency,
            amount=order.amount,
            created=False,
            payer=order.payer,
        )
        with self._lock:
            self.observations[order.key] = observation
        return observation

    def _create(self, api: Api, payload: dict[str, Any], concurrent: bool) -> requests.Response | None:
        def once() -> requests.Response | None:
            return api.call("POST", "/orders", "POST /orders", payload=payload, signed=True)

        if concurrent:  # a double submit: the same order twice at once (idempotency under a race)
            twin = api.twin()
            with ThreadPoolExecutor(max_workers=2) as pool:
                first = pool.submit(once)
                second = pool.submit(lambda: twin.call("POST", "/orders", "POST /orders", payload=payload, signed=True))
                answers = [first.result(), second.result()]
            twin.close()
            created = [a for a in answers if a is not None and a.status_code == 201]
            if created:
                return created[0]
            answer = answers[0]
        else:
            answer = once()
        for _ in range(3):  # the contract's retryable answers: same order id, signed again
            if answer is None or answer.status_code not in (409, 503):
                return answer
            if error_code(answer) not in ("request_in_progress", "provider_unavailable"):
                return answer
            time.sleep(min(float(answer.headers.get("Retry-After") or 1), 2.0))
            answer = once()
        return answer

    def _order(self, api: Api, order: PlannedOrder) -> None:
        observation = self._observe(order, str(uuid.uuid4()))
        listed = api.call(
            "GET", "/channels", "GET /channels", params={"amount": order.amount, "currency": order.currency}
        )
        offered = []
        if listed is not None and listed.status_code == 200:
            offered = [c["id"] for c in listed.json().get("channels", []) if c.get("available")]
        channel = choose_channel(order.channel_draw, dict(self.scenario.traffic.channels), offered)
        payload: dict[str, Any] = {
            "order_id": observation.order_id,
            "amount": order.amount,
            "currency": order.currency,
            "channel": channel,
            "subject": f"Simulated order {order.key}",
        }
        if self.scenario.expiry.expires_in:
            payload["expires_in"] = self.scenario.expiry.expires_in
        created = self._create(api, payload, "concurrent_create" in order.faults)
        if created is None or created.status_code != 201:
            observation.create_answer = (getattr(created, "status_code", 0), error_code(created))
            return
        body = created.json()
        observation.created = True
        with self._lock:
            self.owners[order.key] = api
            self.expiries[order.key] = _iso_seconds(body["expires_at"])
        if "replay_create" in order.faults:
            again = self._create(api, payload, concurrent=False)
            if again is None or again.status_code != 201 or again.json().get("payment") != body.get("payment"):
                observation.client_notes.append(
                    f"a replayed create answered {getattr(again, 'status_code', 0)} {error_code(again)} "
                    "instead of the same order"
                )
        time.sleep(order.think)
        checkout = body["payment"]["checkout_url"]
        if order.payer in ("pay", "decline"):
            api.call(
                "GET",
                "",
                "GET /sandbox/checkout/{payment_id}",
                url=checkout,
                auth=False,
                headers={"Accept": "text/html"},
            )
            acted = api.call(
                "POST",
                "",
                "POST /sandbox/checkout/{payment_id}",
                url=checkout,
                auth=False,
                payload={"action": order.payer},
            )
            if acted is not None and acted.status_code == 200:
                try:
                    observation.payer_result = str(acted.json().get("result"))
                except ValueError:
                    observation.client_notes.append(
                        f"the checkout answered {acted.headers.get('Content-Type')} to a JSON request: "
                        f"{acted.text[:200]!r}"
                    )
        elif order.payer == "cancel":
            observation.cancel_status = self._cancel(api, observation.order_id)
        if "cancel_after_pay" in order.faults and order.payer == "pay":
            status = self._cancel(api, observation.order_id)
            if status == 200:
                observation.cancel_status = status
        wants_refund = bool(order.refunds) or "concurrent_refund" in order.faults
        if wants_refund and observation.payer_result == "paid":
            self._refunds(api, observation, order, wait=False)

    def _cancel(self, api: Api, order_id: str) -> int:
        path = f"/orders/{order_id}/cancel"
        for _ in range(3):
            answer = api.call("POST", path, "POST /orders/{order_id}/cancel", signed=True)
            if answer is not None and answer.status_code == 503:
                time.sleep(1.0)
                continue
            return answer.status_code if answer is not None else 0
        return 503

    def _order_now(self, api: Api, order_id: str) -> dict[str, Any] | None:
        answer = api.call("GET", f"/orders/{order_id}", "GET /orders/{order_id}")
        if answer is None or answer.status_code != 200:
            return None
        order: dict[str, Any] = answer.json()
        return order

    def _refunds(self, api: Api, observation: Observation, order: PlannedOrder, *, wait: bool) -> None:
        """The planned refunds, once the payment shows on the order (else queued for after the settle)."""
        deadline = time.monotonic() + (0 if wait else REFUND_WAIT_SECONDS)
        while True:
            current = self._order_now(api, observation.order_id)
            if current is not None and current.get("status") in PAID_FAMILY:
                break
            if time.monotonic() >= deadline:
                if not wait:
                    with self._lock:
                        self.deferred.append((api, observation, order))
                return
            time.sleep(0.3)
        path = f"/orders/{observation.order_id}/refunds"

        def refund(refund_id: str, amount: int, session: Api = api) -> None:
            answer = None
            for _ in range(3):
                answer = session.call(
                    "POST",
                    path,
                    "POST /orders/{order_id}/refunds",
                    payload={"refund_id": refund_id, "amount": amount, "reason": "simulated"},
                    signed=True,
                )
                if answer is None or answer.status_code != 503:
                    break
                time.sleep(1.0)
            with self._lock:
                observation.refunds_requested.append(
                    {
                        "refund_id": refund_id,
                        "amount": amount,
                        "status": getattr(answer, "status_code", 0),
                        "code": error_code(answer),
                    }
                )

        if "concurrent_refund" in order.faults:  # two refunds of everything at once: one must lose
            twin = api.twin()
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(lambda job: refund(*job), [("rf-c1", order.amount, api), ("rf-c2", order.amount, twin)]))
            twin.close()
            accepted = [r for r in observation.refunds_requested if r["status"] == 201]
            if len(accepted) != 1:
                observation.client_notes.append(f"two concurrent full refunds: {len(accepted)} accepted, expected 1")
            return
        for i, amount in enumerate(order.refunds, start=1):
            refund(f"rf-{i}", amount)
            if i == 1 and "replay_refund" in order.faults:
                refund(f"rf-{i}", amount)  # the same refund again: replayed, not refunded twice

    # ------------------------------------------------------------------ settling and expiry

    def _settle(self, what: str) -> bool:
        deadline = time.monotonic() + self.scenario.settle_seconds
        quiet = 0
        while time.monotonic() < deadline:
            if self.target.webhook_backlog() == 0:
                quiet += 1
                if quiet >= 2:
                    return True
            else:
                quiet = 0
            time.sleep(0.5)
        self.notes.append(f"webhooks had not settled {self.scenario.settle_seconds:.0f}s after the {what}")
        return False

    def _sweep_route(self) -> dict[str, Any]:
        try:
            return {"result": self.target.run_schedule("sweeper", {})}
        except Exception as exc:  # reported, and the pending orders it leaves fail the check
            return {"error": str(exc)[:300]}

    def _expire(self) -> list[dict[str, Any]]:
        pending = [key for key, o in self.observations.items() if o.created]
        if not pending:
            return []
        latest = max(self.expiries.get(key, 0.0) for key in pending)
        sweeps = []
        if self.scenario.expiry.mode == "advance" and self.target.local:
            from paycore.jobs.sweeper import sweep

            at = max(latest + 1.0, time.time())
            with ledger.LOCK:
                result = sweep(now=at, remaining_ms=lambda: 120_000).as_dict()
            sweeps.append({"how": f"in-process, clock +{at - time.time():.0f}s", "result": result})
        else:
            if self.scenario.expiry.mode == "advance":
                self.notes.append("a deployed stage's clock cannot be advanced: waited for the expiries instead")
            wait = latest + 1.0 - time.time()
            if wait > 0:
                self.notes.append(f"waited {wait:.0f}s for the last order to expire")
                time.sleep(wait)
        sweeps.append({"how": "route", **self._sweep_route()})
        return sweeps

    # ------------------------------------------------------------------ reading back

    def _read_one(self, observation: Observation) -> None:
        if observation.created:
            api = self.owners[observation.key]
            observation.order = self._order_now(api, observation.order_id)
        observation.service = ledger.service_record(observation.order_id)
        observation.provider = ledger.provider_record(observation.order_id)

    def _read_back(self) -> None:
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="read") as pool:
            list(pool.map(self._read_one, list(self.observations.values())))

    # ------------------------------------------------------------------ the daily report

    def _report_dates(self) -> list[str]:
        """The report days (in the report's time zone) the run can touch: today, and tomorrow when
        the run may cross midnight."""
        from infra.local.sam_env import env_vars

        zone = env_vars(endpoint_url="", stage=self.target.stage, region=self.target.region)["StatsFunction"].get(
            "REPORT_TIMEZONE", "UTC"
        )
        start = datetime.now(tz=UTC).astimezone(ZoneInfo(zone))
        budget = self.scenario.wall_seconds + 3 * self.scenario.settle_seconds + 600
        end = start + timedelta(seconds=budget)
        return sorted({start.date().isoformat(), end.date().isoformat()})

    def _stats(self, day: str) -> dict[str, Any] | None:
        result = self.target.run_schedule("stats", {"date": day})
        report = result.get("report")
        return report if isinstance(report, dict) else None

"""The invariants a run must hold, over plain data (no HTTP, no AWS): unit-testable one by one.

Input per order (an :class:`Observation`): what the client did and was answered, the order as the
API shows it at the end (``order``), the service's stored history (``service``) and the sandbox
provider's own record (``provider``). Plus the daily report's counters before and after the run.

Each invariant is documented in docs/simulator.md ("Invariants"); :data:`INVARIANTS` lists them in
the order the report prints them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PAID_FAMILY = frozenset({"paid", "partially_refunded", "refunded"})
CLOSED = frozenset({"expired", "cancelled"})
FINAL = PAID_FAMILY | CLOSED | {"failed"}
STATS_FIELDS = (
    "created",
    "created_amount",
    "paid",
    "paid_amount",
    "failed",
    "expired",
    "cancelled",
    "refunded",
    "refunded_amount",
    "late_payments",
    "late_payment_amount",
    "anomalies",
)
INVARIANTS = {
    "final_state": "every order ends in exactly one final state, nothing left pending",
    "agrees_with_provider": "the order's state agrees with the provider's payment",
    "money_matches_provider": "paid minus refunded per order equals what the provider holds",
    "no_double_payment": "no order was paid twice (service history, provider events)",
    "refund_within_paid": "no order refunded more than was paid",
    "client_view": "what the client was told agrees with where the order ended",
    "stats_match": "the daily report's counts and amounts match the run",
    "no_server_errors": "no 5xx other than 503 provider_unavailable, no request left unanswered",
}


@dataclass
class Observation:
    key: str
    order_id: str
    currency: str
    amount: int
    created: bool  # the API answered 201 to the create
    payer: str  # the planned action: pay | decline | abandon | cancel
    payer_result: str | None = None  # the sandbox checkout's answer (paid, declined, already_closed, ...)
    cancel_status: int | None = None
    refunds_requested: list[dict[str, Any]] = field(default_factory=list)  # {refund_id, amount, status, code}
    order: dict[str, Any] | None = None  # the API's (or the store's) view at the end
    service: dict[str, Any] | None = None  # with "history": [{kind, to_status, event}]
    provider: dict[str, Any] | None = None  # the sandbox's payment, refunds, events
    create_answer: tuple[int, str] | None = None  # (status, error code) when the create was refused
    client_notes: list[str] = field(default_factory=list)  # answers the client did not expect


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str  # an order key, a (channel, currency) row, an endpoint
    message: str


@dataclass
class CheckResult:
    violations: list[Violation]
    checked_orders: int
    expected_stats: dict[tuple[str, str], dict[str, int]]
    observed_stats: dict[tuple[str, str], dict[str, int]]

    @property
    def ok(self) -> bool:
        return not self.violations

    def by_invariant(self) -> dict[str, list[Violation]]:
        out: dict[str, list[Violation]] = {name: [] for name in INVARIANTS}
        for v in self.violations:
            out.setdefault(v.invariant, []).append(v)
        return out


# ---------------------------------------------------------------------- per order


def _refunds(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(order.get("refunds") or [])


def _check_final(o: Observation, out: list[Violation]) -> None:
    order = o.order
    if order is None:
        out.append(Violation("final_state", o.key, "the order was created but cannot be read"))
        return
    status = order.get("status")
    if status not in FINAL:
        out.append(Violation("final_state", o.key, f"ended {status!r}, not a final state"))
    if int(order.get("refund_pending_amount") or 0) != 0:
        out.append(Violation("final_state", o.key, f"{order['refund_pending_amount']} still pending refund"))
    hanging = [r["refund_id"] for r in _refunds(order) if r.get("status") == "pending"]
    if hanging:
        out.append(Violation("final_state", o.key, f"refunds still pending: {hanging}"))


def _late_refunds(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in _refunds(order) if r.get("automatic")]


def _check_provider(o: Observation, out: list[Violation]) -> None:
    order, provider = o.order, o.provider
    if order is None:
        return
    if provider is None:
        out.append(Violation("agrees_with_provider", o.key, "the provider has no payment for this order"))
        return
    status, paid_at_provider = order.get("status"), provider.get("status")
    if provider.get("amount") != order.get("amount") or provider.get("currency") != order.get("currency"):
        out.append(
            Violation(
                "agrees_with_provider",
                o.key,
                f"order {order.get('amount')} {order.get('currency')} but the provider's payment is "
                f"{provider.get('amount')} {provider.get('currency')}",
            )
        )
    if status in PAID_FAMILY:
        fits = paid_at_provider == "paid"
    elif status == "failed":
        fits = paid_at_provider == "failed"
    elif status in CLOSED:
        # closed at the provider, or paid there too late and refunded automatically (a late payment)
        fits = paid_at_provider == "closed" or (paid_at_provider == "paid" and bool(_late_refunds(order)))
    else:
        fits = False
    if not fits:
        out.append(
            Violation("agrees_with_provider", o.key, f"order {status} but the provider's payment is {paid_at_provider}")
        )


def _check_money(o: Observation, out: list[Violation]) -> None:
    order, provider = o.order, o.provider
    if order is None or provider is None:
        return
    amount = int(order.get("amount") or 0)
    succeeded_at_provider = {r["refund_id"]: r for r in provider.get("refunds", []) if r.get("status") == "succeeded"}
    order_refunds = {r["refund_id"]: r for r in _refunds(order)}
    provider_refunds = {r["refund_id"]: r for r in provider.get("refunds", [])}
    for refund_id, refund in order_refunds.items():
        theirs = provider_refunds.get(refund_id)
        if theirs is None:
            if refund.get("status") == "succeeded":
                out.append(
                    Violation(
                        "money_matches_provider", o.key, f"refund {refund_id} succeeded but the provider has none"
                    )
                )
            continue
        if int(theirs["amount"]) != int(refund["amount"]) or theirs["status"] != refund.get("status"):
            out.append(
                Violation(
                    "money_matches_provider",
                    o.key,
                    f"refund {refund_id}: {refund['amount']} {refund.get('status')} here, "
                    f"{theirs['amount']} {theirs['status']} at the provider",
                )
            )
    for refund_id in provider_refunds.keys() - order_refunds.keys():
        out.append(
            Violation("money_matches_provider", o.key, f"the provider has refund {refund_id} the order does not")
        )
    if provider.get("status") != "paid":
        if succeeded_at_provider:
            out.append(Violation("money_matches_provider", o.key, "refunds succeeded on a payment that was never paid"))
        return
    kept_by_provider = int(provider.get("refundable") or 0)
    refunded_at_provider = sum(int(r["amount"]) for r in succeeded_at_provider.values())
    if kept_by_provider != amount - refunded_at_provider:
        out.append(
            Violation(
                "money_matches_provider",
                o.key,
                f"the provider keeps {kept_by_provider} of {amount} after {refunded_at_provider} refunded",
            )
        )
    if order.get("status") in PAID_FAMILY:
        own = sum(
            int(r["amount"])
            for r in succeeded_at_provider.values()
            if not order_refunds.get(r["refund_id"], {}).get("automatic")
        )
        net = amount - int(order.get("refunded_amount") or 0)
        if net != kept_by_provider or int(order.get("refunded_amount") or 0) != own:
            out.append(
                Violation(
                    "money_matches_provider",
                    o.key,
                    f"paid {amount} - refunded {order.get('refunded_amount')} = {net} here, "
                    f"but the provider keeps {kept_by_provider}",
                )
            )
        expected_status = "paid" if own == 0 else "refunded" if own == amount else "partially_refunded"
        if order.get("status") != expected_status:
            out.append(
                Violation(
                    "money_matches_provider",
                    o.key,
                    f"{own} of {amount} refunded: should be {expected_status}, is {order.get('status')}",
                )
            )
    elif kept_by_provider != 0:
        out.append(
            Violation(
                "money_matches_provider",
                o.key,
                f"order {order.get('status')} but the provider keeps {kept_by_provider}",
            )
        )


def _check_double_payment(o: Observation, out: list[Violation]) -> None:
    if o.service is not None:
        paid = [h for h in o.service.get("history", []) if h.get("to_status") == "paid"]
        if len(paid) > 1:
            out.append(Violation("no_double_payment", o.key, f"{len(paid)} transitions to paid in the order's history"))
    if o.provider is not None:
        succeeded = {e["event_id"] for e in o.provider.get("events", []) if e.get("type") == "payment.succeeded"}
        if len(succeeded) > 1:
            out.append(Violation("no_double_payment", o.key, f"the provider reports {len(succeeded)} payments"))


def _check_refund_bounds(o: Observation, out: list[Violation]) -> None:
    order = o.order
    if order is None:
        return
    amount = int(order.get("amount") or 0)
    refunded = int(order.get("refunded_amount") or 0)
    pending = int(order.get("refund_pending_amount") or 0)
    own = sum(int(r["amount"]) for r in _refunds(order) if r.get("status") == "succeeded" and not r.get("automatic"))
    if refunded + pending > amount or own > amount:
        out.append(Violation("refund_within_paid", o.key, f"{refunded} refunded + {pending} pending of {amount} paid"))
    if refunded and order.get("status") not in PAID_FAMILY:
        out.append(
            Violation("refund_within_paid", o.key, f"{refunded} refunded on an order that is {order.get('status')}")
        )
    if o.provider is not None:
        at_provider = sum(int(r["amount"]) for r in o.provider.get("refunds", []) if r.get("status") == "succeeded")
        if at_provider > int(o.provider.get("amount") or 0):
            out.append(
                Violation(
                    "refund_within_paid", o.key, f"the provider refunded {at_provider} of {o.provider.get('amount')}"
                )
            )
    accepted = sum({r["refund_id"]: int(r["amount"]) for r in o.refunds_requested if r.get("status") == 201}.values())
    if accepted > amount:
        out.append(Violation("refund_within_paid", o.key, f"the API accepted refunds of {accepted} on {amount}"))


def _check_client_view(o: Observation, out: list[Violation]) -> None:
    order = o.order
    if order is None:
        return
    status = order.get("status")
    if o.payer_result == "paid" and status not in PAID_FAMILY:
        out.append(Violation("client_view", o.key, f"the payer was told 'paid' but the order is {status}"))
    if o.payer_result == "declined" and status != "failed":
        out.append(Violation("client_view", o.key, f"the payer was told 'declined' but the order is {status}"))
    if o.cancel_status == 200 and status != "cancelled":
        out.append(Violation("client_view", o.key, f"the cancel was answered 200 but the order is {status}"))
    for note in o.client_notes:
        out.append(Violation("client_view", o.key, note))
    refunds = {r["refund_id"]: r for r in _refunds(order)}
    for asked in o.refunds_requested:
        if asked.get("status") == 201:
            kept = refunds.get(asked["refund_id"])
            if kept is None or int(kept["amount"]) != int(asked["amount"]):
                out.append(
                    Violation("client_view", o.key, f"refund {asked['refund_id']} was accepted but is not on the order")
                )


def check_order(o: Observation) -> list[Violation]:
    out: list[Violation] = []
    if not o.created:
        if o.provider is not None and o.provider.get("status") == "paid":
            out.append(
                Violation("agrees_with_provider", o.key, "no order was created, yet the provider took a payment")
            )
        return out
    _check_final(o, out)
    _check_provider(o, out)
    _check_money(o, out)
    _check_double_payment(o, out)
    _check_refund_bounds(o, out)
    _check_client_view(o, out)
    return out


# ---------------------------------------------------------------------- the daily report


def expected_stats(observations: Iterable[Observation]) -> dict[tuple[str, str], dict[str, int]]:
    """What the report's counters must have gained during the run, from where the orders ended."""
    rows: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATS_FIELDS, 0))
    for o in observations:
        order = o.order
        if not o.created or order is None:
            continue
        row = rows[(str(order["channel"]), str(order["currency"]))]
        amount = int(order["amount"])
        row["created"] += 1
        row["created_amount"] += amount
        status = order["status"]
        if status in PAID_FAMILY:
            row["paid"] += 1
            row["paid_amount"] += amount
        elif status in ("failed", "expired", "cancelled"):
            row[status] += 1
        for refund in _refunds(order):
            if refund.get("automatic"):
                row["late_payments"] += 1
                row["late_payment_amount"] += int(refund["amount"])
            elif refund.get("status") == "succeeded":
                row["refunded"] += 1
                row["refunded_amount"] += int(refund["amount"])
    return dict(rows)


def report_rows(report: Mapping[str, Any] | None) -> dict[tuple[str, str], dict[str, int]]:
    """The per-channel rows of a daily report (``stats``' JSON), keyed by (channel, currency)."""
    if not report:
        return {}
    return {
        (str(row["channel"]), str(row["currency"])): {name: int(row.get(name) or 0) for name in STATS_FIELDS}
        for row in report.get("rows", [])
    }


def stats_delta(
    before: Iterable[Mapping[str, Any] | None], after: Iterable[Mapping[str, Any] | None]
) -> dict[tuple[str, str], dict[str, int]]:
    """The counters the run added: the reports after it minus the reports before (one per local day)."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATS_FIELDS, 0))
    for sign, reports in ((1, after), (-1, before)):
        for report in reports:
            for key, row in report_rows(report).items():
                for name in STATS_FIELDS:
                    out[key][name] += sign * row[name]
    return {key: row for key, row in out.items() if any(row.values())}


def check_stats(
    expected: Mapping[tuple[str, str], Mapping[str, int]], observed: Mapping[tuple[str, str], Mapping[str, int]]
) -> list[Violation]:
    out = []
    for key in sorted(set(expected) | set(observed)):
        want = expected.get(key, dict.fromkeys(STATS_FIELDS, 0))
        got = observed.get(key, dict.fromkeys(STATS_FIELDS, 0))
        diffs = [f"{name} {got[name]} (expected {want[name]})" for name in STATS_FIELDS if got[name] != want[name]]
        if diffs:
            out.append(Violation("stats_match", f"{key[0]}/{key[1]}", "report says " + ", ".join(diffs)))
    return out


# ---------------------------------------------------------------------- answers


def check_answers(answers: Mapping[tuple[str, int, str], int]) -> list[Violation]:
    """5xx other than 503 provider_unavailable (the contract's "retry later"), and requests that got no
    answer, from the API. The local stack's own ``/_local`` routes (the outbox the simulator reads
    codes from) are the harness, not the API: their failures are retried and listed, not judged."""
    out = []
    for (endpoint, status, code), count in sorted(answers.items()):
        if endpoint.split(" ", 1)[-1].startswith("/_local"):
            continue
        if status == 0 or (status >= 500 and not (status == 503 and code == "provider_unavailable")):
            what = "no answer" if status == 0 else f"{status} {code}"
            out.append(Violation("no_server_errors", endpoint, f"{count} x {what}"))
    return out


def check(
    observations: list[Observation],
    *,
    stats_before: Iterable[Mapping[str, Any] | None] = (),
    stats_after: Iterable[Mapping[str, Any] | None] | None = None,
    answers: Mapping[tuple[str, int, str], int] | None = None,
) -> CheckResult:
    violations: list[Violation] = []
    for o in observations:
        violations += check_order(o)
    expected = expected_stats(observations)
    observed: dict[tuple[str, str], dict[str, int]] = {}
    if stats_after is not None:
        observed = stats_delta(stats_before, stats_after)
        violations += check_stats(expected, observed)
    if answers is not None:
        violations += check_answers(answers)
    return CheckResult(violations, sum(1 for o in observations if o.created), expected, observed)


def outcome_counts(observations: Iterable[Observation]) -> Counter[str]:
    return Counter(
        ("unreadable" if o.order is None else str(o.order.get("status"))) if o.created else "not created"
        for o in observations
    )

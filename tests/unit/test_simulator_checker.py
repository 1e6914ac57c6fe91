"""The simulator's invariant checker on synthetic orders: a consistent run passes, and each
invariant fails when its own rule is broken (docs/simulator.md, "Invariants")."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bench.simulator.checker import (
    Observation,
    check,
    check_answers,
    expected_stats,
    stats_delta,
)

pytestmark = pytest.mark.unit


def _refund(refund_id: str, amount: int, status: str = "succeeded", automatic: bool = False) -> dict[str, Any]:
    return {"refund_id": refund_id, "amount": amount, "status": status, "automatic": automatic}


def _order(status: str, amount: int, refunded: int = 0, refunds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "order_id": "o",
        "status": status,
        "amount": amount,
        "currency": "CNY",
        "channel": "sandbox",
        "refunded_amount": refunded,
        "refund_pending_amount": 0,
        "refunds": refunds or [],
    }


def _provider(status: str, amount: int, refundable: int, refunds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    events = [{"event_id": "evt_1", "type": "payment.succeeded", "attempts": 1, "delivered": True}]
    return {
        "payment_id": "pay_1",
        "status": status,
        "amount": amount,
        "currency": "CNY",
        "refundable": refundable,
        "refunds": [{k: r[k] for k in ("refund_id", "amount", "status")} for r in refunds or []],
        "events": events if status == "paid" else [],
    }


def _history(*statuses: str) -> dict[str, Any]:
    return {"history": [{"kind": s, "to_status": s, "event": f"evt_{i}"} for i, s in enumerate(statuses)]}


def consistent_run() -> list[Observation]:
    """A paid order refunded in part, a fully refunded one, a failed, an expired, a cancelled one
    and a late payment refunded automatically: every record agrees."""
    partial = [_refund("rf-1", 300)]
    full = [_refund("rf-1", 400), _refund("rf-2", 600)]
    late = [_refund("late_evt_9", 700, automatic=True)]
    return [
        Observation(
            "u0-o0",
            "a",
            "CNY",
            1000,
            True,
            "pay",
            payer_result="paid",
            refunds_requested=[{"refund_id": "rf-1", "amount": 300, "status": 201, "code": ""}],
            order=_order("partially_refunded", 1000, 300, partial),
            service=_history("created", "paid"),
            provider=_provider("paid", 1000, 700, partial),
        ),
        Observation(
            "u0-o1",
            "b",
            "CNY",
            1000,
            True,
            "pay",
            payer_result="paid",
            order=_order("refunded", 1000, 1000, full),
            service=_history("created", "paid"),
            provider=_provider("paid", 1000, 0, full),
        ),
        Observation(
            "u1-o0",
            "c",
            "CNY",
            500,
            True,
            "decline",
            payer_result="declined",
            order=_order("failed", 500),
            provider=_provider("failed", 500, 0),
        ),
        Observation(
            "u1-o1",
            "d",
            "CNY",
            500,
            True,
            "abandon",
            order=_order("expired", 500),
            provider=_provider("closed", 500, 0),
        ),
        Observation(
            "u1-o2",
            "e",
            "CNY",
            500,
            True,
            "cancel",
            cancel_status=200,
            order=_order("cancelled", 500),
            provider=_provider("closed", 500, 0),
        ),
        Observation(
            "u2-o0",
            "f",
            "CNY",
            700,
            True,
            "abandon",
            order=_order("expired", 700, 0, late),
            provider=_provider("paid", 700, 0, late),
        ),
        Observation("u2-o1", "g", "CNY", 900, False, "pay", create_answer=(503, "provider_unavailable")),
    ]


def _report(rows: dict[tuple[str, str], dict[str, int]]) -> dict[str, Any]:
    return {"rows": [{"channel": c, "currency": cur, **row} for (c, cur), row in rows.items()]}


def _violations(observations: list[Observation], **kwargs: Any) -> dict[str, list[str]]:
    result = check(observations, **kwargs)
    return {name: [v.message for v in found] for name, found in result.by_invariant().items() if found}


def test_a_consistent_run_holds_every_invariant() -> None:
    observations = consistent_run()
    after = _report(expected_stats(observations))
    result = check(observations, stats_before=[None], stats_after=[after], answers={("POST /orders", 201, ""): 6})
    assert result.ok, result.violations
    assert result.checked_orders == 6


def test_expected_stats_count_transitions_refunds_and_late_payments() -> None:
    rows = expected_stats(consistent_run())
    assert rows[("sandbox", "CNY")] == {
        "created": 6,
        "created_amount": 4200,
        "paid": 2,
        "paid_amount": 2000,
        "failed": 1,
        "expired": 2,
        "cancelled": 1,
        "refunded": 3,
        "refunded_amount": 1300,
        "late_payments": 1,
        "late_payment_amount": 700,
        "anomalies": 0,
    }


def test_a_pending_order_or_hanging_refund_breaks_final_state() -> None:
    observations = consistent_run()
    observations[3].order["status"] = "pending"  # type: ignore[index]
    observations[0].order["refund_pending_amount"] = 100  # type: ignore[index]
    found = _violations(observations)
    assert set(found) >= {"final_state"}
    assert any("pending" in m for m in found["final_state"])
    assert any("100 still pending refund" in m for m in found["final_state"])


def test_an_order_paid_here_but_not_at_the_provider_breaks_agreement() -> None:
    observations = consistent_run()
    observations[2].provider["status"] = "paid"  # failed here, paid there  # type: ignore[index]
    observations[3].provider = None  # no payment at all
    found = _violations(observations)
    assert "order failed but the provider's payment is paid" in found["agrees_with_provider"]
    assert "the provider has no payment for this order" in found["agrees_with_provider"]


def test_money_the_provider_keeps_must_equal_paid_minus_refunded() -> None:
    observations = consistent_run()
    observations[0].provider["refundable"] = 800  # the provider kept 100 more than the order says  # type: ignore[index]
    found = _violations(observations)
    assert list(found) == ["money_matches_provider"]
    assert any("keeps 800" in m for m in found["money_matches_provider"])


def test_a_refund_the_provider_does_not_have_breaks_money() -> None:
    observations = consistent_run()
    observations[0].provider["refunds"] = []  # type: ignore[index]
    found = _violations(observations)
    assert any("refund rf-1 succeeded but the provider has none" in m for m in found["money_matches_provider"])


def test_two_paid_transitions_or_two_payments_break_no_double_payment() -> None:
    observations = consistent_run()
    observations[0].service = _history("created", "paid", "paid")
    observations[1].provider["events"].append(  # type: ignore[index]
        {"event_id": "evt_2", "type": "payment.succeeded", "attempts": 1, "delivered": True}
    )
    found = _violations(observations)
    assert "2 transitions to paid in the order's history" in found["no_double_payment"]
    assert "the provider reports 2 payments" in found["no_double_payment"]


def test_a_duplicate_delivery_of_the_same_event_is_not_a_second_payment() -> None:
    observations = consistent_run()
    observations[0].provider["events"].append(dict(observations[0].provider["events"][0]))  # type: ignore[index]
    assert "no_double_payment" not in _violations(observations)


def test_refunds_above_the_paid_amount_break_refund_within_paid() -> None:
    observations = consistent_run()
    o = observations[1]
    o.order["refunded_amount"] = 1300  # type: ignore[index]
    o.refunds_requested = [
        {"refund_id": "rf-c1", "amount": 1000, "status": 201, "code": ""},
        {"refund_id": "rf-c2", "amount": 1000, "status": 201, "code": ""},
    ]
    found = _violations(observations)
    assert any("1300 refunded + 0 pending of 1000 paid" in m for m in found["refund_within_paid"])
    assert any("accepted refunds of 2000 on 1000" in m for m in found["refund_within_paid"])


def test_a_replayed_refund_is_counted_once() -> None:
    observations = consistent_run()
    observations[0].refunds_requested.append(dict(observations[0].refunds_requested[0]))
    assert "refund_within_paid" not in _violations(observations)


def test_what_the_client_was_told_must_match_the_end_state() -> None:
    observations = consistent_run()
    observations[2].payer_result = "paid"  # told paid, order failed
    observations[4].client_notes.append("a replayed create answered 409 order_exists instead of the same order")
    found = _violations(observations)
    assert "the payer was told 'paid' but the order is failed" in found["client_view"]
    assert any("replayed create" in m for m in found["client_view"])


def test_a_report_that_differs_from_the_run_breaks_stats_match() -> None:
    observations = consistent_run()
    rows = expected_stats(observations)
    wrong = copy.deepcopy(rows)
    wrong[("sandbox", "CNY")]["paid"] += 1
    wrong[("sandbox", "CNY")]["refunded_amount"] -= 300
    found = _violations(observations, stats_before=[None], stats_after=[_report(wrong)])
    assert found["stats_match"] == ["report says paid 3 (expected 2), refunded_amount 1000 (expected 1300)"]


def test_stats_delta_subtracts_the_baseline_per_day() -> None:
    key = ("sandbox", "USD")
    before = [_report({key: {"created": 5, "paid": 2}}), None]
    after = [_report({key: {"created": 7, "paid": 3}}), _report({key: {"created": 1}})]
    delta = stats_delta(before, after)
    assert delta[key]["created"] == 3
    assert delta[key]["paid"] == 1


def test_server_errors_and_unanswered_requests_break_no_server_errors() -> None:
    answers = {
        ("POST /orders", 201, ""): 10,
        ("POST /orders", 503, "provider_unavailable"): 2,  # the contract's "retry later"
        ("POST /orders", 409, "request_in_progress"): 1,
        ("GET /orders/{order_id}", 502, "internal_error"): 1,
        ("POST /orders/{order_id}/cancel", 0, "no_answer"): 1,
        ("GET /_local/outbox", 502, "moto_unreachable"): 1,  # the harness's own route, retried
    }
    found = check_answers(answers)
    assert [(v.subject, v.message) for v in found] == [
        ("GET /orders/{order_id}", "1 x 502 internal_error"),
        ("POST /orders/{order_id}/cancel", "1 x no answer"),
    ]

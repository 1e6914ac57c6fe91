"""The daily report on moto: a day of known traffic made through the real transitions (API logic,
sandbox payer, signed webhooks, sweeper), reported from the counters and checked against figures
worked out by hand; re-runs; a timezone east of UTC; the SNS email."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import AwsStack, load_handler
from tests.helpers import FakeContext, load_event
from tests.jobs_support import (
    USER,
    ample_time,
    counters_of,
    create_order,
    decline,
    deliver_webhooks,
    order,
    pay,
)
from tests.orders_support import capture_ops_alerts

pytestmark = pytest.mark.integration


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    """A moment of November 2026, UTC."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC).timestamp()


@pytest.fixture
def stack(seeded_channels: AwsStack, identity: Any) -> AwsStack:
    return seeded_channels


@pytest.fixture
def ops_inbox(stack: AwsStack) -> Any:
    """The daily-report messages the ops topic delivered so far (to an SQS queue subscribed to it)."""
    captured = capture_ops_alerts(stack)

    def reports() -> list[dict[str, Any]]:
        return [m for m in captured.read() if m.get("Subject", "").startswith("Payments daily report")]

    return reports


def use_timezone(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    from paycore.config import reset_settings

    monkeypatch.setenv("REPORT_TIMEZONE", name)
    reset_settings()


def run_report(day: str, now: float) -> dict[str, Any]:
    from paycore.jobs.report import run_daily_report

    return run_daily_report({"date": day}, now=now)


def sweep(now: float) -> Any:
    from paycore.jobs.sweeper import sweep as run

    return run(now=now, remaining_ms=ample_time)


def provider_event(order_id: str, event_id: str, amount: int, when: float, currency: str = "CNY") -> Any:
    """A verified sandbox payment event (what parse_callback returns after the signature check)."""
    from paycore.providers.base import EventKind, ProviderEvent

    return ProviderEvent(
        event_id=event_id,
        kind=EventKind.PAYMENT_SUCCEEDED,
        order_id=order_id,
        provider_payment_id=None,
        amount=amount,
        currency=currency,
        occurred_at=datetime.fromtimestamp(when, tz=UTC),
    )


def known_traffic(stack: AwsStack) -> None:
    """Tuesday 2026-11-24 (UTC), order by order; the figures it must give are in the test below."""
    from paycore.orders import callbacks, service
    from paycore.schemas.orders import RefundIn

    # the day before and the day after: must not count
    j = create_order(at(23, 23, 50))
    pay(j, at(23, 23, 55))
    deliver_webhooks(stack, at(23, 23, 55))

    a = create_order(at(24, 1), amount=1000)  # paid by webhook
    pay(a, at(24, 1, 5))
    deliver_webhooks(stack, at(24, 1, 5))

    b = create_order(at(24, 2), amount=2000)  # paid, then 5.00 refunded
    pay(b, at(24, 2, 10))
    deliver_webhooks(stack, at(24, 2, 10))
    service.request_refund(USER, b, RefundIn(refund_id="rf-b-1", amount=500), now=at(24, 3))
    deliver_webhooks(stack, at(24, 3, 1))

    c = create_order(at(24, 4), amount=1000)  # declined
    decline(c, at(24, 4, 5))
    deliver_webhooks(stack, at(24, 4, 5))

    d = create_order(at(24, 5), amount=1000)  # expires
    assert sweep(at(24, 6)).expired == 1

    e = create_order(at(24, 7), amount=1000)  # cancelled by its owner
    service.cancel_order(USER, e, now=at(24, 7, 10))

    f = create_order(at(24, 8), amount=1500)  # paid, webhook lost: the sweeper finds it at expiry
    pay(f, at(24, 8, 5))
    assert sweep(at(24, 9)).paid == 1

    g = create_order(at(24, 10), amount=1000)  # a payment of the wrong amount, then it expires
    assert callbacks.apply_event(
        "sandbox", provider_event(g, "evt_g_wrong", 999, at(24, 10, 5)), now=at(24, 10, 5)
    ) == ("anomaly:amount_mismatch")
    assert sweep(at(24, 11)).expired == 1

    h = create_order(at(24, 12), amount=1000)  # expires, then a payment arrives anyway
    assert sweep(at(24, 12, 30)).expired == 1
    assert callbacks.apply_event("sandbox", provider_event(h, "evt_h_late", 1000, at(24, 13)), now=at(24, 13)) == (
        "late_payment_refunded"
    )

    i = create_order(at(24, 14), amount=1999, currency="USD", channel="sandbox_slow")  # paid, other channel
    pay(i, at(24, 14, 1))
    deliver_webhooks(stack, at(24, 14, 1))

    # a payment for an order we do not have
    callbacks.apply_event("sandbox", provider_event("no-such-order", "evt_ghost", 100, at(24, 15)), now=at(24, 15))

    create_order(at(25, 0))  # the next day
    assert {order(x).status for x in (a, b, f, i)} == {"paid", "partially_refunded"}
    assert (order(c).status, order(d).status, order(e).status) == ("failed", "expired", "cancelled")
    assert (order(g).status, order(h).status) == ("expired", "expired")


# Worked out by hand from known_traffic, 2026-11-24 UTC:
#   CNY on sandbox: created A-H = 8 orders, 1000+2000+1000+1000+1000+1500+1000+1000 = 9500 (95.00 CNY);
#   paid A, B, F = 3, 1000+2000+1500 = 4500 (45.00 CNY); failed C; expired D, G, H = 3; cancelled E;
#   refunded 1 (B's 500 = 5.00 CNY); late 1 (H, 1000); anomalies 1 (G);
#   success = 3 / (3 + 1 + 3) = 42.857 % -> 4286 bp.
#   USD on sandbox_slow: created, paid 1, 1999 (19.99 USD); success 100 %.
EXPECTED_CNY = {
    "channel": "sandbox",
    "currency": "CNY",
    "created": 8,
    "created_amount": 9500,
    "paid": 3,
    "paid_amount": 4500,
    "failed": 1,
    "expired": 3,
    "cancelled": 1,
    "refunded": 1,
    "refunded_amount": 500,
    "late_payments": 1,
    "late_payment_amount": 1000,
    "anomalies": 1,
    "success_rate_bps": 4286,
}
EXPECTED_USD = {
    "channel": "sandbox_slow",
    "currency": "USD",
    "created": 1,
    "created_amount": 1999,
    "paid": 1,
    "paid_amount": 1999,
    "failed": 0,
    "expired": 0,
    "cancelled": 0,
    "refunded": 0,
    "refunded_amount": 0,
    "late_payments": 0,
    "late_payment_amount": 0,
    "anomalies": 0,
    "success_rate_bps": 10_000,
}


def test_a_day_of_known_traffic_reports_the_figures_worked_out_by_hand(stack: AwsStack, ops_inbox: Any) -> None:
    known_traffic(stack)

    result = run_report("2026-11-24", now=at(25, 0, 10))

    report = result["report"]
    assert report["rows"] == [EXPECTED_CNY, EXPECTED_USD]
    assert report["totals"] == [{**EXPECTED_CNY, "channel": "all"}, {**EXPECTED_USD, "channel": "all"}]
    assert report["unmatched_anomalies"]["sandbox"] == 1  # every registered provider is listed
    assert sum(report["unmatched_anomalies"].values()) == 1
    assert (report["from"], report["to"], report["complete"]) == ("2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z", True)
    # what it read: one counter item per busy quarter hour and channel, never an order
    assert report["source"]["counter_items"] == len(counters_of("2026-11-24"))


def test_running_a_day_again_gives_the_same_report_and_item(stack: AwsStack, ops_inbox: Any) -> None:
    from paycore.data.reports import get_report

    known_traffic(stack)
    counters_before = counters_of("2026-11-24")

    first = run_report("2026-11-24", now=at(25, 0, 10))
    item_first = get_report("2026-11-24", "UTC")
    second = run_report("2026-11-24", now=at(25, 0, 10))
    item_second = get_report("2026-11-24", "UTC")

    assert first == second
    assert item_first is not None
    assert item_second is not None
    assert item_first.attribute_values == item_second.attribute_values
    assert counters_of("2026-11-24") == counters_before  # reporting changes no counter

    # A later re-run replaces the item (same figures, newer generation time); an older one cannot
    later = run_report("2026-11-24", now=at(26, 9))
    assert later["report"]["rows"] == first["report"]["rows"]
    stored = get_report("2026-11-24", "UTC")
    assert stored is not None
    assert stored.generated_at == int(at(26, 9))
    stale = run_report("2026-11-24", now=at(25, 0, 10))
    assert (stale["stored"], stale["published"]) == (False, False)
    assert json.loads(stored.report_json) == later["report"]
    assert len(ops_inbox()) == 3  # the stale run sent nothing


def test_a_timezone_east_of_utc_reports_its_own_midnight_to_midnight(
    stack: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Asia/Shanghai's 2026-11-24 is 2026-11-23 16:00 to 2026-11-24 16:00 UTC
    for moment in (at(23, 15, 59), at(23, 16, 0), at(24, 15, 59), at(24, 16, 0)):
        create_order(moment, amount=100)

    use_timezone(monkeypatch, "Asia/Shanghai")
    shanghai = run_report("2026-11-24", now=at(24, 16, 10))["report"]
    use_timezone(monkeypatch, "UTC")
    utc = run_report("2026-11-24", now=at(25, 0, 10))["report"]

    assert (shanghai["from"], shanghai["to"]) == ("2026-11-23T16:00:00Z", "2026-11-24T16:00:00Z")
    assert [(r["created"], r["created_amount"]) for r in shanghai["rows"]] == [(2, 200)]  # 16:00 and 15:59
    assert [(r["created"], r["created_amount"]) for r in utc["rows"]] == [(2, 200)]  # 15:59 and 16:00 on the 24th

    from paycore.data.reports import get_report

    assert get_report("2026-11-24", "Asia/Shanghai") is not None  # one item per day and timezone
    assert get_report("2026-11-24", "UTC") is not None


def test_the_email_has_the_date_in_the_subject_an_aligned_table_and_the_json(stack: AwsStack, ops_inbox: Any) -> None:
    known_traffic(stack)

    report = load_handler("stats").lambda_handler(load_event("stats", "rerun_day"), FakeContext())["report"]

    (email,) = ops_inbox()
    assert email["Subject"] == "Payments daily report 2026-11-24 (UTC)"
    assert email["MessageAttributes"]["report_date"]["Value"] == "2026-11-24"
    text, _, payload = email["Message"].partition("\n--- JSON ---\n")
    assert json.loads(payload) == report

    lines = text.splitlines()
    assert lines[0] == "Payments daily report for 2026-11-24 in UTC"
    table = lines[lines.index("") + 1 : lines.index("", lines.index("") + 1)]
    assert len(table) == 2 + 4  # header, rule, two rows, two currency totals
    assert len({len(line) for line in table}) == 1
    cny, usd = table[2], table[3]
    assert cny.split()[:8] == ["sandbox", "CNY", "8", "3", "1", "3", "1", "1"]
    assert "45.00 CNY" in cny
    assert "5.00 CNY" in cny
    assert "42.86%" in cny
    assert usd.split()[:4] == ["sandbox_slow", "USD", "1", "1"]
    assert "19.99 USD" in usd
    assert "100.00%" in usd
    assert "Events for orders we do not have (per provider): sandbox 1" in text


def test_a_day_without_traffic_still_reports_and_a_bad_date_is_refused(stack: AwsStack, ops_inbox: Any) -> None:
    from paycore.errors import InvalidRequest

    quiet = run_report("2026-11-20", now=at(25, 0, 10))
    assert quiet["report"]["rows"] == []
    (email,) = ops_inbox()
    assert "No order activity on this day." in email["Message"]

    with pytest.raises(InvalidRequest):
        run_report("2026-11-31", now=at(25, 0, 10))

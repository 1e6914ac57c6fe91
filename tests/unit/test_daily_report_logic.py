"""The daily report's pure parts: local days as UTC quarter-hour ranges, the success rate, the table."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

pytestmark = pytest.mark.unit


def window(day: str, tz: str):  # type: ignore[no-untyped-def]
    from paycore.jobs.report import day_window

    return day_window(date.fromisoformat(day), tz)


def test_a_utc_day_is_one_date_of_96_quarter_hours() -> None:
    w = window("2026-11-24", "UTC")
    assert (w.start, w.end) == (datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC))
    assert w.utc_ranges() == [("2026-11-24", "0000", "2400")]
    assert w.quarter_hours == 96


def test_a_day_east_of_utc_spans_the_end_of_one_utc_date_and_the_start_of_the_next() -> None:
    w = window("2026-11-24", "Asia/Shanghai")  # UTC+8
    assert w.utc_ranges() == [("2026-11-23", "1600", "2400"), ("2026-11-24", "0000", "1600")]
    assert w.quarter_hours == 96


def test_a_day_west_of_utc_on_quarter_hour_offsets() -> None:
    assert window("2026-11-24", "America/St_Johns").utc_ranges() == [  # UTC-3:30 in November
        ("2026-11-24", "0330", "2400"),
        ("2026-11-25", "0000", "0330"),
    ]
    assert window("2026-11-24", "Asia/Kathmandu").utc_ranges() == [  # UTC+5:45
        ("2026-11-23", "1815", "2400"),
        ("2026-11-24", "0000", "1815"),
    ]


def test_daylight_saving_days_have_92_and_100_quarter_hours() -> None:
    spring = window("2026-03-08", "America/New_York")  # 02:00 → 03:00: a 23-hour day
    assert spring.utc_ranges() == [("2026-03-08", "0500", "2400"), ("2026-03-09", "0000", "0400")]
    assert spring.quarter_hours == 92
    autumn = window("2026-11-01", "America/New_York")  # 02:00 → 01:00: a 25-hour day
    assert autumn.quarter_hours == 100
    london = window("2026-03-29", "Europe/London")  # GMT → BST: one UTC date, ends at 23:00
    assert london.utc_ranges() == [("2026-03-29", "0000", "2300")]


def test_consecutive_days_tile_time_without_gap_or_overlap() -> None:
    for tz in ("UTC", "Asia/Shanghai", "America/New_York", "Australia/Lord_Howe"):
        days = [window(f"2026-{m:02d}-{d:02d}", tz) for m, d in ((3, 7), (3, 8), (3, 9), (4, 4), (4, 5), (4, 6))]
        for earlier, later in itertools.pairwise(days):
            if (later.day - earlier.day).days == 1:
                assert earlier.end == later.start, tz


def test_a_zone_whose_day_does_not_start_on_a_quarter_hour_is_refused() -> None:
    from paycore.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="quarter hour"):
        window("1971-06-01", "Africa/Monrovia")  # UTC-0:44:30 until 1972
    with pytest.raises(ConfigurationError, match="IANA"):
        window("2026-11-24", "Mars/Olympus_Mons")


@pytest.mark.parametrize(
    ("paid", "failed", "expired", "bps"),
    [
        (0, 0, 0, None),
        (5, 0, 0, 10_000),
        (0, 3, 2, 0),
        (3, 1, 3, 4_286),  # 3/7 = 42.857 %
        (2, 1, 0, 6_667),  # 66.666… % rounds up
        (1, 2, 0, 3_333),  # 33.333… % rounds down
        (1, 31, 0, 313),  # 3.125 %: exactly half a basis point rounds up
    ],
)
def test_success_rate_is_paid_over_paid_failed_expired_in_basis_points(
    paid: int, failed: int, expired: int, bps: int | None
) -> None:
    from paycore.jobs.report import success_rate_bps

    assert success_rate_bps(paid, failed, expired) == bps


def test_the_report_day_is_yesterday_in_the_timezone_unless_a_date_is_given() -> None:
    from paycore.errors import InvalidRequest
    from paycore.jobs.report import report_day

    ten_past_midnight_shanghai = datetime(2026, 11, 24, 16, 10, tzinfo=UTC).timestamp()  # 00:10 on the 25th there
    assert report_day({}, "Asia/Shanghai", ten_past_midnight_shanghai) == date(2026, 11, 24)
    assert report_day({}, "UTC", ten_past_midnight_shanghai) == date(2026, 11, 23)
    assert report_day({"date": "2025-01-31"}, "UTC", ten_past_midnight_shanghai) == date(2025, 1, 31)
    for bad in ("2026-02-30", "24/11/2026", "2026-1-1", 20261124, ""):
        with pytest.raises(InvalidRequest):
            report_day({"date": bad}, "UTC", ten_past_midnight_shanghai)


def _row(channel: str, currency: str, **figures: int | None) -> dict[str, object]:
    base: dict[str, object] = {
        "channel": channel,
        "currency": currency,
        "created": 0,
        "paid": 0,
        "failed": 0,
        "expired": 0,
        "cancelled": 0,
        "refunded": 0,
        "paid_amount": 0,
        "refunded_amount": 0,
        "success_rate_bps": None,
        "late_payments": 0,
        "anomalies": 0,
    }
    return {**base, **figures}


def test_the_text_table_is_aligned_with_exact_amounts() -> None:
    from paycore.jobs.report import render_table

    table = render_table(
        [
            _row("sandbox", "KWD", created=12, paid=7, paid_amount=1_234_567, success_rate_bps=5_833),
            _row("sandbox_slow", "JPY", created=3, paid=3, paid_amount=500, refunded=1, refunded_amount=120),
        ]
    ).splitlines()

    assert len({len(line) for line in table}) == 1  # every line as wide as the header
    assert table[0].split() == [
        "Channel",
        "Currency",
        "Created",
        "Paid",
        "Failed",
        "Expired",
        "Cancelled",
        "Refunded",
        "Paid",
        "amount",
        "Refunded",
        "amount",
        "Success",
        "Late",
        "Anomalies",
    ]
    assert set(table[1]) == {"-", " "}
    assert "1234.567 KWD" in table[2]
    assert "58.33%" in table[2]
    assert "500 JPY" in table[3]
    assert "120 JPY" in table[3]
    assert table[3].split()[12] == "-"  # no outcome: no rate
    # figures are right-aligned: the paid amounts end in the same column
    assert table[2].index("KWD", 40) + 3 == table[3].index("JPY", 40) + 3

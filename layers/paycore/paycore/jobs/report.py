"""The daily ops report: one local day's orders per channel and currency, from the counters.

Every order transition adds to a counter item of its UTC quarter hour, channel and currency in
the same transaction (``paycore.data.orders.counter_key``). A local day in ``REPORT_TIMEZONE`` is a
whole number of quarter hours (every zone's offset is), so the report sums the buckets of the one
or two UTC dates that the day spans: its cost grows with channels x currencies x 96, never with
the number of orders (docs/scheduled-jobs.md, "Cost model").

Definitions (the same text is in the email and the docs):

* every figure counts what *happened* during the day: ``paid`` is payments received that day,
  whenever their order was created;
* ``success rate = paid / (paid + failed + expired)``, rounded half up to 0.01 %: of the orders
  that reached an outcome that day, the share that was paid. Cancelled orders are left out (the
  payer or merchant withdrew; the payment did not fail). No outcome → no rate (``null``, "-");
* ``late payments``: payments that arrived on an order already closed (refunded automatically);
  ``anomalies``: payments whose amount, currency or payment id differed from the order's, plus
  (``unmatched_anomalies``) provider events for orders this service does not have.

The report is stored as one item per local day (``DAILY#<date>``, sort key the timezone) and
replaced whole by a re-run, then published to the ops SNS topic: the subject carries the date, the
body is an aligned text table followed by the JSON after a ``--- JSON ---`` line, so an email
reader sees the table and a machine subscriber parses what follows the marker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from paycore import money
from paycore.aws import client
from paycore.config import report_settings
from paycore.data import reports as store
from paycore.errors import ConfigurationError, InvalidRequest
from paycore.observability import Metric, count, logger
from paycore.providers import known_providers

QUARTER = timedelta(minutes=15)
JSON_MARKER = "--- JSON ---"
SNS_SUBJECT_MAX = 100  # SNS: subjects are at most 100 characters
SNS_MESSAGE_MAX = 256 * 1024  # SNS: messages are at most 256 KiB
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Counter attribute -> report field, in the order of the JSON rows.
FIELDS = {
    "created_count": "created",
    "created_amount": "created_amount",
    "paid_count": "paid",
    "paid_amount": "paid_amount",
    "failed_count": "failed",
    "expired_count": "expired",
    "cancelled_count": "cancelled",
    "refunded_count": "refunded",
    "refunded_amount": "refunded_amount",
    "late_payment_count": "late_payments",
    "late_payment_amount": "late_payment_amount",
    "anomaly_count": "anomalies",
}


@dataclass(frozen=True)
class Window:
    """A local day as a half-open UTC interval ``[start, end)`` on quarter-hour boundaries."""

    day: date
    timezone: str
    start: datetime
    end: datetime

    def utc_ranges(self) -> list[tuple[str, str, str]]:
        """``(utc date, from hhmm, to hhmm)`` per UTC date the day touches (one or two)."""
        ranges = []
        cursor = self.start
        while cursor < self.end:
            next_midnight = datetime.combine(cursor.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
            stop = min(self.end, next_midnight)
            to_hhmm = "2400" if stop == next_midnight else f"{stop:%H%M}"
            ranges.append((f"{cursor:%Y-%m-%d}", f"{cursor:%H%M}", to_hhmm))
            cursor = stop
        return ranges

    @property
    def quarter_hours(self) -> int:
        return int((self.end - self.start) / QUARTER)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"REPORT_TIMEZONE {name!r} is not an IANA time zone") from exc


def day_window(day: date, timezone: str) -> Window:
    """The UTC interval of ``day`` in ``timezone`` (23, 24 or 25 hours across DST changes)."""
    tz = zone(timezone)
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz).astimezone(UTC)
    for edge in (start, end):
        if edge.minute % 15 or edge.second or edge.microsecond:
            raise ConfigurationError(f"{timezone} on {day} does not start on a UTC quarter hour")
    return Window(day=day, timezone=timezone, start=start, end=end)


def report_day(event: Mapping[str, Any] | None, timezone: str, now: float) -> date:
    """``{"date": "YYYY-MM-DD"}`` from a manual run, else yesterday in ``timezone``."""
    raw = (event or {}).get("date") if isinstance(event, Mapping) else None
    if raw is None:
        today = datetime.fromtimestamp(now, tz=zone(timezone)).date()
        return today - timedelta(days=1)
    if not isinstance(raw, str) or not _DATE.match(raw):
        raise InvalidRequest("date must be a day written YYYY-MM-DD", code="invalid_date")
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{raw} is not a calendar day", code="invalid_date") from exc


def success_rate_bps(paid: int, failed: int, expired: int) -> int | None:
    """paid / (paid + failed + expired) in basis points (1 bp = 0.01 %), rounded half up."""
    outcomes = paid + failed + expired
    if outcomes == 0:
        return None
    return (paid * 10_000 * 2 + outcomes) // (outcomes * 2)


def _with_rate(row: dict[str, Any]) -> dict[str, Any]:
    row["success_rate_bps"] = success_rate_bps(row["paid"], row["failed"], row["expired"])
    return row


def build_report(window: Window, *, now: float) -> dict[str, Any]:
    """Sum the window's counter items per (channel, currency), with per-currency totals."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    items = 0
    for utc_date, from_hhmm, to_hhmm in window.utc_ranges():
        for item in store.counters(utc_date, from_hhmm, to_hhmm):
            items += 1
            _, channel, currency = item.sk.split("#", 2)
            row = rows.setdefault(
                (channel, currency), {"channel": channel, "currency": currency, **dict.fromkeys(FIELDS.values(), 0)}
            )
            for attr, name in FIELDS.items():
                row[name] += int(getattr(item, attr) or 0)
    ordered = [_with_rate(rows[key]) for key in sorted(rows, key=lambda k: (k[1], k[0]))]
    totals: dict[str, dict[str, Any]] = {}
    for row in ordered:
        total = totals.setdefault(
            row["currency"], {"channel": "all", "currency": row["currency"], **dict.fromkeys(FIELDS.values(), 0)}
        )
        for name in FIELDS.values():
            total[name] += row[name]
    start_ms, end_ms = int(window.start.timestamp() * 1000), int(window.end.timestamp() * 1000)
    return {
        "report": "daily",
        "date": window.day.isoformat(),
        "timezone": window.timezone,
        "from": f"{window.start:%Y-%m-%dT%H:%M:%SZ}",
        "to": f"{window.end:%Y-%m-%dT%H:%M:%SZ}",
        "complete": now >= window.end.timestamp(),
        "generated_at": datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rows": ordered,
        "totals": [_with_rate(totals[c]) for c in sorted(totals)],
        "unmatched_anomalies": {p: store.unmatched_anomalies(p, start_ms, end_ms) for p in known_providers()},
        "source": {"counter_items": items, "quarter_hours": window.quarter_hours},
    }


# ------------------------------------------------------------------ text


def _rate_text(bps: int | None) -> str:
    return "-" if bps is None else f"{bps // 100}.{bps % 100:02d}%"


_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Channel", "channel"),
    ("Currency", "currency"),
    ("Created", "created"),
    ("Paid", "paid"),
    ("Failed", "failed"),
    ("Expired", "expired"),
    ("Cancelled", "cancelled"),
    ("Refunded", "refunded"),
    ("Paid amount", "paid_amount"),
    ("Refunded amount", "refunded_amount"),
    ("Success", "success_rate_bps"),
    ("Late", "late_payments"),
    ("Anomalies", "anomalies"),
)
_LEFT = {"channel", "currency"}


def _cell(row: Mapping[str, Any], key: str) -> str:
    if key in ("paid_amount", "refunded_amount"):
        return money.format_minor(int(row[key]), row["currency"])
    if key == "success_rate_bps":
        return _rate_text(row[key])
    return str(row[key])


def render_table(rows: list[Mapping[str, Any]]) -> str:
    """An aligned plain-text table (text columns left, figures right), one line per row."""
    cells = [[_cell(row, key) for _, key in _COLUMNS] for row in rows]
    widths = [max([len(title)] + [len(line[i]) for line in cells]) for i, (title, _) in enumerate(_COLUMNS)]

    def line(values: list[str]) -> str:
        parts = [
            v.ljust(w) if key in _LEFT else v.rjust(w) for v, w, (_, key) in zip(values, widths, _COLUMNS, strict=True)
        ]
        return "  ".join(parts).rstrip()

    header = line([title for title, _ in _COLUMNS])
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([header, rule, *(line(c) for c in cells)])


def subject(report: Mapping[str, Any]) -> str:
    partial = "" if report["complete"] else " [partial]"
    return f"Payments daily report {report['date']} ({report['timezone']}){partial}"[:SNS_SUBJECT_MAX]


def render_text(report: Mapping[str, Any]) -> str:
    lines = [
        f"Payments daily report for {report['date']} in {report['timezone']}",
        f"(UTC {report['from']} to {report['to']}; generated {report['generated_at']}"
        + ("" if report["complete"] else "; the day is not over, figures are partial")
        + ")",
        "",
    ]
    rows = [*report["rows"], *report["totals"]] if report["rows"] else []
    lines.append(render_table(rows) if rows else "No order activity on this day.")
    unmatched = ", ".join(f"{p} {n}" for p, n in sorted(report["unmatched_anomalies"].items()) if n) or "none"
    lines += [
        "",
        "Success = paid / (paid + failed + expired) of the orders that reached an outcome this day"
        " (cancelled left out; '-' when none did).",
        "Late = payments on orders already closed (refunded automatically). Anomalies = payments whose"
        " amount, currency or payment id differed from the order.",
        f"Events for orders we do not have (per provider): {unmatched}",
    ]
    return "\n".join(lines)


def message(report: Mapping[str, Any]) -> str:
    """The email body: the text, then the JSON after the marker line."""
    text = render_text(report)
    body = f"{text}\n\n{JSON_MARKER}\n{json.dumps(report, sort_keys=True, indent=1)}\n"
    if len(body.encode()) > SNS_MESSAGE_MAX:  # far beyond any real channel list; the item keeps it all
        body = f"{text}\n\n{JSON_MARKER}\n(too large for SNS; read DAILY#{report['date']} in the reports table)\n"
    return body


# ------------------------------------------------------------------ the job


def run_daily_report(event: Mapping[str, Any] | None, *, now: float) -> dict[str, Any]:
    """Build, store (replacing any earlier run's item for the day) and publish one day's report."""
    settings = report_settings()
    window = day_window(report_day(event, settings.timezone, now), settings.timezone)
    report = build_report(window, now=now)
    item = store.DailyReportItem(
        *store.report_key(report["date"], window.timezone),
        report_date=report["date"],
        timezone=window.timezone,
        generated_at=int(now),
        complete=bool(report["complete"]),
        report_json=json.dumps(report, sort_keys=True),
    )
    if not store.save_report(item):
        logger.info("a newer report of this day is stored; this run publishes nothing", extra={"date": report["date"]})
        return {"date": report["date"], "timezone": window.timezone, "stored": False, "published": False}
    _publish(settings.ops_topic_arn, report)
    count(Metric.REPORT_SENT)
    logger.info("daily report published", extra={"date": report["date"], "rows": len(report["rows"])})
    return {"date": report["date"], "timezone": window.timezone, "stored": True, "published": True, "report": report}


def _publish(topic_arn: str, report: Mapping[str, Any]) -> None:
    client("sns").publish(
        TopicArn=topic_arn,
        Subject=subject(report),
        Message=message(report),
        MessageAttributes={
            "report_kind": {"DataType": "String", "StringValue": "daily"},
            "report_date": {"DataType": "String", "StringValue": str(report["date"])},
        },
    )

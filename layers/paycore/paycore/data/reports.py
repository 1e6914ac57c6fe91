"""The daily report's reads (the orders table's counters) and its one item per day.

The report never reads orders: it reads the ``STATS#<utc date>`` counter items that every order
transition adds to in its own transaction (``paycore.data.orders.counter_key``), one item per UTC
quarter hour, channel and currency, and the ``ANOMALY#<provider>`` items of payments for orders
we do not have. Reports live in the ``ReportsTable``:

============================  ======================  =======================================
pk                            sk                      what
============================  ======================  =======================================
``DAILY#<yyyy-mm-dd>``        ``<IANA timezone>``     the report of that local day (JSON)
============================  ======================  =======================================
"""

from __future__ import annotations

from collections.abc import Iterator

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, QueryError
from pynamodb.models import Model

from paycore.config import report_settings
from paycore.data.base import bind, get_or_none, is_condition_failure
from paycore.data.orders import AnomalyItem, CounterItem
from paycore.errors import DataAccessError


class DailyReportItem(Model):
    class Meta:
        table_name: str | None = None
        template_table = "ReportsTable"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    report_date = UnicodeAttribute()
    timezone = UnicodeAttribute()
    generated_at = NumberAttribute()
    complete = BooleanAttribute()
    report_json = UnicodeAttribute()  # the report exactly as published


def _bind_orders() -> None:
    table = report_settings().orders_table
    bind(CounterItem, table)
    bind(AnomalyItem, table)


def report_key(report_date: str, timezone: str) -> tuple[str, str]:
    return f"DAILY#{report_date}", timezone


def counters(utc_date: str, from_hhmm: str, to_hhmm: str) -> Iterator[CounterItem]:
    """The counter items of one UTC date whose quarter hour is in ``[from_hhmm, to_hhmm)``.

    Sort keys are ``<hhmm>#<channel>#<currency>``: every key of a quarter hour ``q`` sorts at or
    after ``"q"`` and before the next quarter's ``"q'"``, so BETWEEN ``from_hhmm`` and ``to_hhmm``
    (``"2400"`` for the end of the day) is exactly the half-open range. One Query, paged."""
    _bind_orders()
    try:
        yield from CounterItem.query(f"STATS#{utc_date}", CounterItem.sk.between(from_hhmm, to_hhmm))
    except QueryError as exc:
        raise DataAccessError("could not read the counters") from exc


def unmatched_anomalies(provider: str, from_ms: int, to_ms: int) -> int:
    """How many events of ``provider`` for unknown orders arrived in ``[from_ms, to_ms)`` (sort
    keys are ``<15-digit ms>#<event id>``, so the same BETWEEN trick bounds them exactly)."""
    _bind_orders()
    try:
        return sum(
            1
            for _ in AnomalyItem.query(
                f"ANOMALY#{provider}",
                AnomalyItem.sk.between(f"{from_ms:015d}", f"{to_ms:015d}"),
                attributes_to_get=["pk", "sk"],
            )
        )
    except QueryError as exc:
        raise DataAccessError("could not read the anomalies") from exc


def save_report(item: DailyReportItem) -> bool:
    """Store the day's report, replacing an earlier run's; False (nothing written) when the
    stored report was generated later than this one (a delayed retry never undoes a re-run)."""
    bind(DailyReportItem, report_settings().reports_table)
    try:
        item.save(condition=DailyReportItem.pk.does_not_exist() | (DailyReportItem.generated_at <= item.generated_at))
    except PutError as exc:
        if is_condition_failure(exc):
            return False
        raise DataAccessError("could not store the report") from exc
    return True


def get_report(report_date: str, timezone: str) -> DailyReportItem | None:
    bind(DailyReportItem, report_settings().reports_table)
    item: DailyReportItem | None = get_or_none(DailyReportItem, *report_key(report_date, timezone), "report")
    return item

"""paycore.observability: metric emission (one name list, per-service and per-channel series) and
the request keys of log lines (added inside a block, gone after it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from paycore.observability import Metric, count, log_keys, logger, metrics
from tests.helpers import CapturedLogs

pytestmark = pytest.mark.unit


def _emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_count_with_a_channel_prints_a_service_and_channel_record_and_keeps_the_service_series(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lambda sets the service before paycore is imported; here it was imported without one.
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "orders")
    monkeypatch.setattr(metrics.provider, "service", "orders")
    monkeypatch.setenv("STAGE", "prod")
    metrics.clear_metrics()
    count(Metric.ORDERS_CREATED, channel="sandbox")
    [record] = _emf(capsys.readouterr().out)
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ServerlessPayments"
    assert sorted(directive["Dimensions"][0]) == ["channel", "service", "stage"]
    assert (record["channel"], record["stage"]) == ("sandbox", "prod")
    assert record["service"] == "orders"
    assert record["OrdersCreated"] == [1.0]
    # the per-service series (what alarms read) waits for log_metrics in the invocation's metrics
    assert metrics.metric_set["OrdersCreated"]["Value"] == [1.0]
    metrics.flush_metrics()
    [flushed] = _emf(capsys.readouterr().out)
    assert sorted(flushed["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == ["service", "stage"]
    assert (flushed["service"], flushed["stage"], flushed["OrdersCreated"]) == ("orders", "prod", [1.0])


def test_count_without_a_dimension_prints_nothing_until_the_flush(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.clear_metrics()
    count(Metric.ANOMALIES, 2, channel=None)
    assert _emf(capsys.readouterr().out) == []
    assert metrics.metric_set["Anomalies"]["Value"] == [2.0]
    metrics.clear_metrics()


def test_metric_names_are_unique_and_cloudwatch_safe() -> None:
    values = [m.value for m in Metric]
    assert len(values) == len(set(values))
    assert all(v.isascii() and v.isalnum() and v[0].isupper() for v in values)


def test_log_keys_mark_every_line_inside_the_block_and_none_after(captured_logs: CapturedLogs) -> None:
    logger.info("before")
    with log_keys(user_id="u-1", order_id="o-1"):
        logger.info("inside")
        with log_keys(order_id="o-2", provider=None):
            logger.info("nested")
        logger.info("inside again")
    logger.info("after")
    lines = captured_logs.lines()
    keys = {line["message"]: (line.get("user_id"), line.get("order_id"), "provider" in line) for line in lines}
    assert keys == {
        "before": (None, None, False),
        "inside": ("u-1", "o-1", False),
        "nested": ("u-1", "o-2", False),
        "inside again": ("u-1", "o-1", False),
        "after": (None, None, False),
    }


def test_log_keys_restore_the_outer_keys() -> None:
    with log_keys(user_id="u-1", order_id="o-1"):
        with log_keys(order_id="o-2"):
            assert logger.thread_safe_get_current_keys() == {"user_id": "u-1", "order_id": "o-2"}
        assert logger.thread_safe_get_current_keys() == {"user_id": "u-1", "order_id": "o-1"}
    assert logger.thread_safe_get_current_keys() == {}


def test_log_keys_refuse_a_key_that_is_not_an_identifier() -> None:
    with pytest.raises(ValueError, match="password"), log_keys(password="x"):  # type: ignore[arg-type]
        pass

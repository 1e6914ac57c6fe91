"""The bench's statistics and report helpers (bench/common.py)."""

from __future__ import annotations

import pytest

from bench.common import percentile, table

pytestmark = pytest.mark.unit


def test_percentiles_are_nearest_rank() -> None:
    samples = [float(n) for n in range(1000, 0, -1)]  # 1..1000, unsorted
    assert percentile(samples, 50) == 500
    assert percentile(samples, 99) == 990
    assert percentile(samples, 100) == 1000
    assert percentile([7.0], 99) == 7


def test_tables_right_align_numeric_columns_and_escape_pipes() -> None:
    text = table(["name", "n"], [["a|b", 1], ["c", 2.5]])
    assert text.splitlines() == ["| name | n |", "| --- | ---: |", "| a\\|b | 1 |", "| c | 2.50 |"]

"""Section 5 takes a due order's DynamoDB work from section 3's runs (bench/cost.py)."""

from __future__ import annotations

import pytest

from bench.cost import _sweep_per_order

pytestmark = pytest.mark.unit


def _growth(**rows: dict[str, float]) -> dict[str, object]:
    return {"due": 20, "rows": rows}


def test_a_due_order_costs_the_run_over_the_due_orders_less_a_run_over_none_per_order() -> None:
    growth = _growth(
        sweep={"small_requests": 97, "small_rru": 29.5, "small_wru": 340},
        empty={"small_requests": 17, "small_rru": 8.5, "small_wru": 0},
    )
    assert _sweep_per_order(growth) == {"requests": 4, "read_units": 1.05, "write_units": 17}


def test_section_2s_figures_stand_when_section_3_has_no_write_units() -> None:
    old = _growth(sweep={"small_requests": 76, "small_rru": 28.5}, empty={"small_requests": 16, "small_rru": 8})
    assert _sweep_per_order(old) is None
    assert _sweep_per_order({}) is None

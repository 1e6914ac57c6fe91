"""The bench's capacity arithmetic against DynamoDB's published sizing rules (bench/capacity.py)."""

from __future__ import annotations

import pytest

from bench import capacity
from bench.capacity import Index, TableShape

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("number", "size"),
    [("0", 2), ("7", 2), ("12", 2), ("123", 3), ("1500", 2), ("0.001", 2), ("-123456", 4), ("1795639097", 6)],
)
def test_number_size_is_one_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert capacity.number_size(number) == size


def test_item_size_adds_names_and_values_with_list_and_map_overheads() -> None:
    item = {
        "pk": {"S": "user#1"},  # 2 + 6
        "n": {"N": "42"},  # 1 + 2
        "ok": {"BOOL": True},  # 2 + 1
        "tags": {"L": [{"S": "a"}, {"S": "bc"}]},  # 4 + 3 + (1+1) + (1+2)
        "m": {"M": {"k": {"S": "v"}}},  # 1 + 3 + (1 + 1 + 1)
    }
    assert capacity.item_size(item) == 8 + 3 + 3 + 12 + 7


def test_read_units_round_up_per_4_kb_and_halve_for_eventual_consistency() -> None:
    assert capacity.read_units(0, consistent=True) == 1  # an item not found still costs a read
    assert capacity.read_units(4096, consistent=True) == 1
    assert capacity.read_units(4097, consistent=True) == 2
    assert capacity.read_units(4097, consistent=False) == 1


def test_write_units_round_up_per_kb_of_the_larger_state_and_double_in_transactions() -> None:
    shape = TableShape(keys=("pk",), indexes=())
    small, large = {"pk": {"S": "a"}}, {"pk": {"S": "a"}, "blob": {"S": "x" * 1500}}
    assert capacity.item_write_units(shape, None, small, transactional=False) == (1, 0)
    assert capacity.item_write_units(shape, large, small, transactional=False) == (2, 0)
    assert capacity.item_write_units(shape, None, large, transactional=True) == (4, 0)


def test_index_writes_follow_the_gsi_rules() -> None:
    shape = TableShape(keys=("pk",), indexes=(Index("by_due", ("due",), "KEYS_ONLY"),))
    plain = {"pk": {"S": "a"}, "note": {"S": "x"}}
    due = {**plain, "due": {"N": "10"}}
    moved = {**plain, "due": {"N": "20"}}
    assert capacity.index_write_units(shape, None, plain) == 0  # sparse: no index key, no index write
    assert capacity.index_write_units(shape, plain, due) == 1  # an entry appears
    assert capacity.index_write_units(shape, due, plain) == 1  # an entry goes
    assert capacity.index_write_units(shape, due, moved) == 2  # the index key changes: delete and put
    # KEYS_ONLY: a change of an attribute the index does not project costs the index nothing.
    assert capacity.index_write_units(shape, due, {**due, "note": {"S": "y"}}) == 0


def test_an_all_projection_index_pays_for_any_attribute_change() -> None:
    shape = TableShape(keys=("pk",), indexes=(Index("by_due", ("due",), "ALL"),))
    due = {"pk": {"S": "a"}, "due": {"N": "10"}, "note": {"S": "x"}}
    assert capacity.index_write_units(shape, due, {**due, "note": {"S": "y"}}) == 1

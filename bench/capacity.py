"""DynamoDB capacity units of one request, computed from item sizes by DynamoDB's published rules.

moto 5.2.5 does not meter: with ``ReturnConsumedCapacity=TOTAL`` it answers a fixed 0.5 for every
GetItem/PutItem/UpdateItem whatever the size or consistency, 1.0 per table for BatchWriteItem, and
nothing for TransactWriteItems (moto/dynamodb/responses.py). So the bench computes the units itself:

Item size (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
attribute name bytes + value bytes; strings and binaries by their bytes; a number is 1 byte per two
significant digits + 1; null and Boolean 1 byte; a list or map 3 bytes + 1 byte per element + its
elements; sets the sum of their elements.

Units (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html):
- a strongly consistent read is 1 read unit per 4 KB of the item (an item not found still costs 1),
  an eventually consistent one half that; a Query adds up every item it reads and rounds once;
- a write is 1 write unit per 1 KB of the larger of the item before and after (a failed condition
  still costs that); transactions cost 2 units per KB per item (prepare and commit);
- each global secondary index the write touches costs 1 unit per KB of its index entry: one to add
  or remove an entry, one to update an entry whose key did not change but whose projected attributes
  did, two when the index key changes (delete the old entry, put the new one).
On-demand tables bill the same units as read and write request units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: 1 per two significant digits (leading and trailing zeros trimmed) + 1."""
    digits = Decimal(text).normalize().as_tuple().digits if Decimal(text) != 0 else (0,)
    significant = "".join(str(d) for d in digits).strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB JSON (``{"S": "x"}``), without its name."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode("utf-8"))
    if kind == "N":
        return number_size(str(raw))
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else len(str(raw).encode("utf-8"))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode("utf-8")) for v in raw)
    if kind == "NS":
        return sum(number_size(str(v)) for v in raw)
    if kind == "BS":
        return sum(len(v) if isinstance(v, bytes | bytearray) else len(str(v).encode("utf-8")) for v in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def read_units(size: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


@dataclass(frozen=True)
class Index:
    """A global secondary index: its key attributes and what it projects."""

    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableShape:
    keys: tuple[str, ...]
    indexes: tuple[Index, ...]

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> TableShape:
        indexes = tuple(
            Index(
                name=gsi["IndexName"],
                keys=tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                projection=gsi.get("Projection", {}).get("ProjectionType", "ALL"),
                include=tuple(gsi.get("Projection", {}).get("NonKeyAttributes", ())),
            )
            for gsi in table.get("GlobalSecondaryIndexes", []) or []
        )
        return cls(keys=tuple(k["AttributeName"] for k in table["KeySchema"]), indexes=indexes)

    def key_of(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in self.keys}

    def index_entry(self, index: Index, item: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The entry ``item`` has in ``index``, or None when it lacks an index key (sparse index)."""
        if not item or any(k not in item for k in index.keys):
            return None
        if index.projection == "ALL":
            return dict(item)
        wanted = set(self.keys) | set(index.keys) | (set(index.include) if index.projection == "INCLUDE" else set())
        return {k: v for k, v in item.items() if k in wanted}


def index_write_units(shape: TableShape, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> int:
    """Write units the table's global secondary indexes consume for one item going from ``before`` to ``after``."""
    units = 0
    for index in shape.indexes:
        old, new = shape.index_entry(index, before), shape.index_entry(index, after)
        if old is None and new is None:
            continue
        if old is None or new is None:
            units += write_units(item_size(old or new))
        elif any(old[k] != new[k] for k in index.keys):
            units += write_units(item_size(old)) + write_units(item_size(new))
        elif old != new:
            units += write_units(max(item_size(old), item_size(new)))
    return units


def item_write_units(
    shape: TableShape, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *, transactional: bool
) -> tuple[int, int]:
    """(table units, index units) of one item write; ``after`` is ``before`` when the write did not happen."""
    table = write_units(max(item_size(before), item_size(after)))
    return (2 * table if transactional else table), index_write_units(shape, before, after)

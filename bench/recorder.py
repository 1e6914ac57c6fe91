"""Count every AWS request the code makes, and the DynamoDB capacity each one consumes, with botocore
event hooks; and replay recorded requests with a plain boto3 client.

:func:`install` wraps botocore's ``ClientCreator.create_client`` so that every client created
afterwards (boto3's, PynamoDB's, Powertools') registers three handlers on its event system:
``before-parameter-build`` keeps the request's parameters and reads the items a write will touch,
``before-call`` starts the clock and ``after-call`` (emitted for successes and errors alike) stops
it, reads the items again and computes the capacity units by :mod:`bench.capacity`. Inside
``with recorder.capture() as calls:`` every request lands in ``calls``.

Item states are read from moto's backend directly (not through botocore), so measuring adds no
request of its own; a Query is measured by running it again without its filter and projection
through a client the recorder ignores, which yields exactly the items DynamoDB reads (and bills).
"""

from __future__ import annotations

import contextlib
import copy
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench import capacity
from bench.capacity import TableShape

WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem"}


@dataclass
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    seconds: float = 0.0
    started: float = 0.0  # perf_counter when the request left (before-call)
    overhead: float = 0.0  # seconds the recorder itself spent on this call (item reads, metering)
    error: str | None = None
    read_units: float = 0.0
    write_units: float = 0.0  # table and index units together
    index_write_units: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"


@dataclass
class Tally:
    """What a list of calls adds up to."""

    calls: list[Call] = field(default_factory=list)

    @property
    def requests(self) -> Counter[str]:
        return Counter(c.name for c in self.calls)

    def count(self, service: str | None = None) -> int:
        return sum(1 for c in self.calls if service is None or c.service == service)

    @property
    def read_units(self) -> float:
        return sum(c.read_units for c in self.calls)

    @property
    def write_units(self) -> float:
        return sum(c.write_units for c in self.calls)

    @property
    def index_write_units(self) -> float:
        return sum(c.index_write_units for c in self.calls)

    def summary(self, service: str = "dynamodb") -> str:
        """``Query 16, GetItem 15`` style: how many of each operation, in order of first use."""
        counts: dict[str, int] = {}
        for c in self.calls:
            if c.service == service:
                counts[c.operation] = counts.get(c.operation, 0) + 1
        return ", ".join(f"{op} {n}" for op, n in counts.items()) or "none"

    def describe(self, service: str = "dynamodb") -> str:
        """``GetItem + TransactWriteItems(3)`` style: the operations in order, transactions with their size."""
        parts = []
        for c in self.calls:
            if c.service != service:
                continue
            label = c.operation
            if c.operation in ("TransactWriteItems", "TransactGetItems"):
                label += f"({len(c.params.get('TransactItems', []))})"
            if c.operation == "BatchWriteItem":
                label += f"({sum(len(v) for v in c.params.get('RequestItems', {}).values())})"
            if c.error:
                label += f" [{c.error}]"
            parts.append(label)
        return " + ".join(parts) or "—"


class Recorder:
    def __init__(self, backend: Any):
        self._backend = backend  # moto's DynamoDB backend of the account and region
        self._shapes: dict[str, TableShape] = {}
        self._sinks: list[list[Call]] = []
        self._local = threading.local()
        self._original: Any = None
        self._raw: Any = None
        # Off, the recorder only counts and times requests: no item reads, no capacity units (the
        # warm path times handlers and must not time the recorder's metering with them).
        self.metering = True

    # ------------------------------------------------------------ installation
    def install(self) -> None:
        from botocore.client import ClientCreator

        original = ClientCreator.create_client
        recorder = self

        def create_client(creator: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(creator, *args, **kwargs)
            recorder._attach(client)
            return client

        self._original = original
        ClientCreator.create_client = create_client  # type: ignore[method-assign]

    def uninstall(self) -> None:
        from botocore.client import ClientCreator

        if self._original is not None:
            ClientCreator.create_client = self._original  # type: ignore[method-assign]
            self._original = None

    def _attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build", self._before_build)
        events.register("before-call", self._before_call)
        events.register("after-call", self._after_call)

    @contextmanager
    def capture(self) -> Iterator[list[Call]]:
        calls: list[Call] = []
        self._sinks.append(calls)
        try:
            yield calls
        finally:
            self._sinks.remove(calls)

    @contextmanager
    def paused(self) -> Iterator[None]:
        previous = getattr(self._local, "paused", False)
        self._local.paused = True
        try:
            yield
        finally:
            self._local.paused = previous

    def _active(self) -> bool:
        return bool(self._sinks) and not getattr(self._local, "paused", False)

    def phase(self) -> str | None:
        """What the current thread is doing for the recorder: "request" (between before-call and
        after-call: the AWS request, moto's work in-process), "meter" (the recorder's own reads and
        metering, subtracted as overhead), or None (the code under measurement)."""
        return getattr(self._local, "phase", None)

    # ------------------------------------------------------------ hooks
    def _before_build(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self._active():
            return
        started = time.perf_counter()
        self._local.phase = "meter"
        service = model.service_model.service_name
        call = Call(service=service, operation=model.name, params=copy.deepcopy(params))
        state: dict[str, Any] = {"call": call}
        if service == "dynamodb" and self.metering:
            state["before"] = {target: self._item(*target) for target in self._write_targets(call)}
        context["bench"] = state
        self._local.phase = None
        call.overhead = time.perf_counter() - started

    def _before_call(self, context: dict[str, Any], **_: Any) -> None:
        if "bench" in context:
            self._local.phase = "request"
            context["bench"]["started"] = time.perf_counter()

    def _after_call(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        state = context.pop("bench", None)
        if state is None:
            return
        call: Call = state["call"]
        ended = time.perf_counter()
        self._local.phase = "meter"
        call.started = state.get("started", ended)
        call.seconds = ended - call.started
        error = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        call.error = error or None
        if call.service == "dynamodb" and self.metering:
            with self.paused():
                self._meter(call, state.get("before", {}), parsed)
        self._local.phase = None
        call.overhead += time.perf_counter() - ended
        for sink in self._sinks:
            sink.append(call)

    # ------------------------------------------------------------ capacity
    def shape(self, table: str) -> TableShape:
        if table not in self._shapes:
            self._shapes[table] = TableShape.from_description(self._backend.describe_table(table)["Table"])
        return self._shapes[table]

    def _item(self, table: str, key_json: str) -> dict[str, Any] | None:
        import json

        item = self._backend.get_item(table, json.loads(key_json))
        return None if item is None else copy.deepcopy(item.to_json()["Attributes"])

    def _key(self, table: str, item_or_key: dict[str, Any]) -> tuple[str, str]:
        import json

        return table, json.dumps(self.shape(table).key_of(item_or_key), sort_keys=True)

    def _write_targets(self, call: Call) -> list[tuple[str, str]]:
        p = call.params
        if call.operation == "PutItem":
            return [self._key(p["TableName"], p["Item"])]
        if call.operation in ("UpdateItem", "DeleteItem"):
            return [self._key(p["TableName"], p["Key"])]
        if call.operation == "TransactWriteItems":
            targets = []
            for entry in p["TransactItems"]:
                ((_, action),) = entry.items()
                targets.append(self._key(action["TableName"], action.get("Item") or action["Key"]))
            return targets
        if call.operation == "BatchWriteItem":
            return [
                self._key(table, request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"])
                for table, requests in p["RequestItems"].items()
                for request in requests
            ]
        return []

    def _meter(self, call: Call, before: dict[tuple[str, str], Any], parsed: dict[str, Any]) -> None:
        p, op, failed = call.params, call.operation, call.error is not None
        if op == "GetItem":
            item = self._item(*self._key(p["TableName"], p["Key"]))
            call.read_units = capacity.read_units(capacity.item_size(item), consistent=bool(p.get("ConsistentRead")))
        elif op == "BatchGetItem":
            for table, request in p["RequestItems"].items():
                for key in request["Keys"]:
                    size = capacity.item_size(self._item(*self._key(table, key)))
                    call.read_units += capacity.read_units(size, consistent=bool(request.get("ConsistentRead")))
        elif op == "TransactGetItems":
            for entry in p["TransactItems"]:
                get = entry["Get"]
                size = capacity.item_size(self._item(*self._key(get["TableName"], get["Key"])))
                call.read_units += 2 * capacity.read_units(size, consistent=True)
        elif op in ("Query", "Scan"):
            call.read_units = self._query_units(op, p)
        elif op in WRITE_OPERATIONS or op in ("TransactWriteItems", "BatchWriteItem"):
            transactional = op == "TransactWriteItems"
            for table, key in before:
                old = before[(table, key)]
                new = old if failed else self._item(table, key)
                if failed and transactional:
                    # A cancelled transaction: counted as its prepare phase, one unit per KB per item.
                    units, index_units = capacity.write_units(capacity.item_size(old)), 0
                else:
                    units, index_units = capacity.item_write_units(
                        self.shape(table), old, new, transactional=transactional
                    )
                call.write_units += units + index_units
                call.index_write_units += index_units

    def _query_units(self, op: str, p: dict[str, Any]) -> float:
        """Run the request again without filter or projection: the items it returns are the items read."""
        bare = {k: v for k, v in p.items() if k not in ("FilterExpression", "ProjectionExpression", "Select")}
        used = " ".join(str(bare.get(k, "")) for k in ("KeyConditionExpression",))
        if "ExpressionAttributeNames" in bare:
            bare["ExpressionAttributeNames"] = {
                k: v for k, v in bare["ExpressionAttributeNames"].items() if re.search(re.escape(k) + r"\b", used)
            } or None
        if "ExpressionAttributeValues" in bare:
            bare["ExpressionAttributeValues"] = {
                k: v for k, v in bare["ExpressionAttributeValues"].items() if re.search(re.escape(k) + r"\b", used)
            } or None
        bare = {k: v for k, v in bare.items() if v is not None}
        items = getattr(self._raw_client(), "query" if op == "Query" else "scan")(**bare).get("Items", [])
        shape = self.shape(p["TableName"])
        index = next((i for i in shape.indexes if i.name == p.get("IndexName")), None)
        entries = [shape.index_entry(index, item) if index else item for item in items]
        total = sum(capacity.item_size(e) for e in entries)
        return capacity.read_units(total, consistent=bool(p.get("ConsistentRead")))

    def _raw_client(self) -> Any:
        if self._raw is None:
            import boto3

            self._raw = boto3.client("dynamodb", region_name="us-east-1")
        return self._raw


# ---------------------------------------------------------------- replay
class Replayer:
    """Makes recorded requests again with plain boto3 clients, on mirror tables (``table_map``) so
    that conditions meet the same state the handler's requests met."""

    def __init__(self, recorder: Recorder, table_map: dict[str, str]):
        import boto3

        self._recorder = recorder
        self._map = table_map
        self._session = boto3.session.Session()
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            with self._recorder.paused():
                self._clients[service] = self._session.client(service, region_name="us-east-1")
        return self._clients[service]

    def _rename(self, params: dict[str, Any]) -> dict[str, Any]:
        params = copy.deepcopy(params)
        if "TableName" in params:
            params["TableName"] = self._map.get(params["TableName"], params["TableName"])
        if "RequestItems" in params:
            params["RequestItems"] = {self._map.get(k, k): v for k, v in params["RequestItems"].items()}
        for entry in params.get("TransactItems", []):
            for action in entry.values():
                action["TableName"] = self._map.get(action["TableName"], action["TableName"])
        return params

    def prepare(self, calls: list[Call]) -> list[tuple[Any, dict[str, Any]]]:
        """Bound methods and parameters, resolved before the clock starts."""
        from botocore import xform_name

        return [(getattr(self.client(c.service), xform_name(c.operation)), self._rename(c.params)) for c in calls]

    def run(self, prepared: list[tuple[Any, dict[str, Any]]]) -> float:
        """Seconds the requests took, made one after another as the handler made them."""
        from botocore.exceptions import ClientError

        with self._recorder.paused():
            started = time.perf_counter()
            for method, params in prepared:
                # A request that fails here failed the same way for the handler (a condition, a conflict).
                with contextlib.suppress(ClientError):
                    method(**params)
            return time.perf_counter() - started

"""Section 3: the scheduled jobs' work as the orders table grows (1,000 against 100,000 orders).

    PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only growth

Two stages are provisioned side by side in one moto: ``bench`` holds 1,000 orders, ``big`` 100,000
(quick: 10,000). Both get the same day's traffic through the handlers (orders created and paid
today), then the rest of their orders are old paid orders, cloned from a real one and written with
BatchWriteItem (25 a request, not metered). Each round, in a shuffled order of the two stages, the
same number of orders is made due (created an hour ago through the orders handler, unmeasured),
the sweeper runs over them, runs again with nothing due, and the daily report runs for today.
The sweeper reads a sparse index of pending orders and the report reads the day's counters, so
neither should notice the 99,000 other orders: the ratios big ÷ small should be close to 1.
"""

from __future__ import annotations

import copy
import gc
import os
import random
import time
import uuid
from typing import Any

from bench.common import Section, command, median, table
from bench.operations import Driver, set_up
from bench.orders_ops import _sweep_over, deliver, paid_webhook, report, sweep
from bench.recorder import Tally
from bench.stack import REGION, Stack, reset_paycore, stack

DUE = 20  # orders made due before each sweep
JOBS = ("sweep", "empty", "report")
TODAY = 40  # orders created and paid today in each stage


def _use(stage: Any, s: Stack) -> None:
    """Point paycore at ``stage``'s resources (environment from template.yaml, caches dropped)."""
    from infra.local.template import functions

    for spec in functions(s.resolver.template, stage).values():
        os.environ.update(spec.environment)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    reset_paycore()


def _provision(s: Stack, name: str) -> Any:
    from infra.local.provision import provision
    from infra.local.secrets import prepare_identity
    from infra.seed.channels import seed_channels

    with s.recorder.paused():
        resolver = provision(s.session, stage=name, region=REGION)
        prepare_identity(s.session, resolver)
        _use(resolver, s)
        seed_channels()
    return resolver


def _fill(s: Stack, resolver: Any, driver: Driver, total: int) -> int:
    """Today's traffic through the handlers, then old paid orders cloned from one of them; returns
    how many order items the table holds."""
    from infra.local.template import ACCOUNT_ID  # noqa: F401  # the backend's account

    _use(resolver, s)
    user = driver.active_user()
    from bench.orders_ops import _webhook_secret, create_order

    secret = _webhook_secret(driver)
    paid = []
    for _ in range(TODAY):
        order = create_order(driver, user)
        deliver(driver, paid_webhook(order), secret)
        paid.append(order)
    table = str(resolver.ref("OrdersTable"))
    ddb = s.client("dynamodb")
    with s.recorder.paused():
        model = ddb.get_item(TableName=table, Key={"pk": {"S": f"ORDER#{paid[0]['order_id']}"}, "sk": {"S": "ORDER"}})[
            "Item"
        ]
        day = 86_400
        now = int(time.time())
        batch: list[dict[str, Any]] = []
        for i in range(total - TODAY):
            item = copy.deepcopy(model)
            order_id = str(uuid.uuid4())
            created = now - (30 + i % 365) * day - i
            item["pk"] = {"S": f"ORDER#{order_id}"}
            item["order_id"] = {"S": order_id}
            item["created_at"] = {"N": str(created)}
            item["updated_at"] = {"N": str(created + 60)}
            item["created_sk"] = {"S": f"{created * 1000:013d}#{order_id}"}
            batch.append({"PutRequest": {"Item": item}})
            if len(batch) == 25:
                ddb.batch_write_item(RequestItems={table: batch})
                batch = []
        if batch:
            ddb.batch_write_item(RequestItems={table: batch})
    return total


class GcLog:
    """Every cyclic garbage collection while installed (``gc.callbacks``), with where it ran: in the
    job's own code, inside an AWS request (moto's work) or in the recorder's metering."""

    def __init__(self, recorder: Any):
        self._recorder = recorder
        self._started: float | None = None
        self.own: list[tuple[int, float]] = []  # (generation, seconds) of the collections in own time
        self.inside: list[tuple[int, float]] = []  # in requests and metering
        self.collected = 0  # unreachable objects the collections found, wherever they ran

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
        elif self._started is not None:
            where = self.own if self._recorder.phase() is None else self.inside
            where.append((int(info["generation"]), now - self._started))
            self.collected += int(info["collected"])
            self._started = None

    def __enter__(self) -> GcLog:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def summary(self) -> dict[str, Any]:
        return {
            "own_collections": [sum(1 for g, _ in self.own if g == gen) for gen in range(3)],
            "own_gc_ms": sum(t for _, t in self.own) * 1000,
            "inside_collections": [sum(1 for g, _ in self.inside if g == gen) for gen in range(3)],
            "inside_gc_ms": sum(t for _, t in self.inside) * 1000,
            "collected": self.collected,
        }


def _settle(freeze: bool) -> int:
    """Before a job, off the clock: collect, then freeze what is alive (moto's tables, the other
    stage's, botocore's loaded data) into the permanent generation, so that the collections the job
    triggers traverse only the objects created during the job, whichever stage it runs on
    (https://docs.python.org/3/library/gc.html#gc.freeze). Returns how many objects are frozen."""
    if freeze:
        gc.collect()
        gc.freeze()
    return gc.get_freeze_count()


def _timed(s: Stack, provider: set[str], call: Any, freeze: bool) -> tuple[float, Tally, float, dict[str, Any]]:
    """(ms, the service's requests, ms outside AWS requests, the garbage collections and where they ran)."""
    frozen = _settle(freeze)
    with s.recorder.capture() as calls, GcLog(s.recorder) as log:
        started = time.perf_counter()
        call()
        took = (time.perf_counter() - started) * 1000
    inside = sum(c.seconds for c in calls) * 1000
    took -= sum(c.overhead for c in calls) * 1000  # the recorder's own reads and metering
    names = provider

    def own(c: Any) -> bool:
        p = c.params
        return not ({p.get("TableName"), p.get("QueueUrl")} & names) and not (
            {a.get("TableName") for e in p.get("TransactItems", []) for a in e.values()} & names
        )

    return took, Tally([c for c in calls if own(c)]), took - inside, {**log.summary(), "frozen": frozen}


def _gc_medians(samples: list[Any]) -> dict[str, Any]:
    """Per round's collections, the median of each figure (collections per generation, ms)."""
    logs = [t[3] for t in samples]
    return {
        "own_collections": [median(log["own_collections"][g] for log in logs) for g in range(3)],
        "own_gc_ms": median(log["own_gc_ms"] for log in logs),
        "inside_collections": [median(log["inside_collections"][g] for log in logs) for g in range(3)],
        "inside_gc_ms": median(log["inside_gc_ms"] for log in logs),
    }


def freeze_heap() -> bool:
    """Whether the heap is frozen before measuring (BENCH_GC_FREEZE=0 measures without, for comparison)."""
    return os.environ.get("BENCH_GC_FREEZE", "1") != "0"


def measure(quick: bool) -> dict[str, Any]:
    freeze = freeze_heap()
    sizes = {"small": 1_000, "big": 10_000 if quick else 100_000}
    rounds = 2 if quick else 3
    samples: dict[str, dict[str, list[Any]]] = {n: {"sweep": [], "empty": [], "report": []} for n in sizes}
    with stack() as s:
        stages = {"small": s.resolver, "big": _provision(s, "big")}
        provider = {
            str(r.ref(lid))
            for r in stages.values()
            for lid in s.resolver.template["Resources"]
            if lid.startswith("Sandbox")
        }
        drivers = {name: Driver(s) for name in stages}
        fill_seconds = {}
        for name, resolver in stages.items():
            started = time.perf_counter()
            _fill(s, resolver, drivers[name], sizes[name])
            fill_seconds[name] = time.perf_counter() - started
        rng = random.Random(3)
        for _ in range(rounds):
            order = list(stages)
            rng.shuffle(order)
            for name in order:
                _use(stages[name], s)
                d = drivers[name]
                due = _sweep_over(d, DUE)
                set_up(due)
                samples[name]["sweep"].append(_timed(s, provider, due, freeze))
                samples[name]["empty"].append(_timed(s, provider, lambda d=d: sweep(d), freeze))
                samples[name]["report"].append(_timed(s, provider, lambda d=d: report(d), freeze))
        _use(stages["small"], s)
        gc.unfreeze()
        gc.collect()
    rows: dict[str, Any] = {}
    for job in ("sweep", "empty", "report"):
        small, big = samples["small"][job], samples["big"][job]
        rows[job] = {
            "small_requests": small[-1][1].count("dynamodb"),
            "big_requests": big[-1][1].count("dynamodb"),
            "small_rru": small[-1][1].read_units,
            "big_rru": big[-1][1].read_units,
            "small_wru": small[-1][1].write_units,
            "big_wru": big[-1][1].write_units,
            "small_summary": small[-1][1].summary(),
            "big_summary": big[-1][1].summary(),
            "small_ms": median(t[0] for t in small),
            "big_ms": median(t[0] for t in big),
            "time_ratio": median(b[0] / a[0] for a, b in zip(small, big, strict=True)),
            "small_own_ms": median(t[2] for t in small),
            "big_own_ms": median(t[2] for t in big),
            "own_ratio": median(b[2] / a[2] for a, b in zip(small, big, strict=True)),
            "small_gc": _gc_medians(small),
            "big_gc": _gc_medians(big),
            "per_round": {n: [{"ms": t[0], "own_ms": t[2], **t[3]} for t in samples[n][job]] for n in ("small", "big")},
        }
    return {
        "sizes": sizes,
        "rounds": rounds,
        "due": DUE,
        "today": TODAY,
        "rows": rows,
        "gc_frozen": freeze,
        "frozen_objects": median(t[3]["frozen"] for n in samples for job in samples[n] for t in samples[n][job]),
        "gc_thresholds": list(gc.get_threshold()),
        "fill_seconds": fill_seconds,
        "empty_sweep_ms": rows["empty"]["small_ms"],
        "sweep_ms": rows["sweep"]["small_ms"],
        "report_ms": rows["report"]["small_ms"],
    }


def _gens(counts: list[float]) -> str:
    return "/".join(f"{c:g}" for c in counts)


def report_md(figures: dict[str, Any]) -> str:
    small, big = figures["sizes"]["small"], figures["sizes"]["big"]
    rows = figures["rows"]
    names = {
        "sweep": f"sweeper, {figures['due']} orders due",
        "empty": "sweeper, nothing due",
        "report": "daily report (today)",
    }
    body = [
        [
            names[job],
            r["small_requests"],
            r["big_requests"],
            f"{r['small_rru']:g}",
            f"{r['big_rru']:g}",
            f"{r['small_ms']:.0f}",
            f"{r['big_ms']:.0f}",
            f"{r['big_requests'] / r['small_requests']:.2f}" if r["small_requests"] else "n/a",
            f"{r['own_ratio']:.2f}",
            f"{r['time_ratio']:.2f}",
        ]
        for job, r in ((j, rows[j]) for j in JOBS)
    ]
    by_operation = [
        [
            names[job],
            r["small_summary"]
            if r["small_summary"] == r["big_summary"]
            else f"{r['small_summary']} (at {big:,}: {r['big_summary']})",
            f"{r['small_wru']:g}",
            f"{r['big_wru']:g}",
        ]
        for job, r in ((j, rows[j]) for j in JOBS)
    ]
    collections = [
        [
            names[job],
            f"{r['small_own_ms']:.0f}",
            f"{r['big_own_ms']:.0f}",
            _gens(r["small_gc"]["own_collections"]),
            f"{r['small_gc']['own_gc_ms']:.0f}",
            _gens(r["big_gc"]["own_collections"]),
            f"{r['big_gc']['own_gc_ms']:.0f}",
            _gens(r["small_gc"]["inside_collections"]),
            _gens(r["big_gc"]["inside_collections"]),
        ]
        for job, r in ((j, rows[j]) for j in JOBS)
    ]
    due = figures["due"]
    if figures.get("gc_frozen"):
        heap = (
            "Before each job, off the clock, the bench runs a full collection and freezes what is alive "
            f"(`gc.collect(); gc.freeze()`, the same for both tables; a median of {figures['frozen_objects']:,.0f} "
            "objects then: both stages' tables in moto, botocore's loaded models and endpoint data, and what "
            "earlier jobs dropped after it was frozen, which stays there until the section unfreezes it): "
            "frozen objects sit in a permanent generation that no collection traverses "
            "(https://docs.python.org/3/library/gc.html#gc.freeze). Without it, moto's tables live in the "
            "bench's process, and a full (generation 2) collection that a job's own allocations happen to "
            "trigger traverses all of them: its cost grows with the table and lands in the job's own time "
            "(bench/FINDINGS.md has the run without the freeze). Frozen, the collections a job triggers traverse "
            "only what was created during the job: its own objects, which an O(table) regression in paycore would "
            "fill, and whatever moto's requests leave alive."
        )
    else:
        heap = (
            "Measured without freezing the heap (`BENCH_GC_FREEZE=0`): a collection the job triggers traverses "
            "every live object of the process, moto's tables included."
        )
    return "\n".join(
        [
            f"The same day's traffic ({figures['today']} orders created and paid today) and {due} orders "
            f"due, in a table of {small:,} orders against one of {big:,}; median of {figures['rounds']} interleaved "
            "rounds, requests of the last (the sandbox provider's own not counted).",
            "",
            table(
                [
                    "job",
                    f"requests ({small:,})",
                    f"requests ({big:,})",
                    f"RRU ({small:,})",
                    f"RRU ({big:,})",
                    f"ms ({small:,})",
                    f"ms ({big:,})",
                    "requests ratio",
                    "own time ratio",
                    "time ratio (moto)",
                ],
                body,
                align="lrrrrrrrrr",
            ),
            "",
            "Ratios are big ÷ small. own time: the job's time outside its AWS requests (its own work); time "
            "(moto): all of it, moto included. moto answers an index Query by walking every item of the table "
            "(moto/dynamodb/models/table.py), where DynamoDB reads only the matching index entries, so that "
            "column grows with the table because of moto; the request and read-unit columns are what DynamoDB "
            "would serve and bill.",
            "",
            "The requests by operation (last round) and the write units:",
            "",
            table(["job", "DynamoDB requests", f"WRU ({small:,})", f"WRU ({big:,})"], by_operation, align="llrr"),
            "",
            "Every sweeper run reads the sparse pending_by_expiry index: 8 shards, a Query each for the due orders "
            "and another for the overdue ones (16), and the refund reconciler's one Query of the sparse "
            "refunds_unsubmitted index (paycore/jobs/sweeper.py): 17 Queries whatever the table holds. Each due "
            "order then costs a consistent GetItem, the TransactWriteItems that expires it, and the router's "
            "outcome: here two UpdateItems, because the due orders were created an hour before today's paid orders "
            "and the outcome's first update, conditioned on the failure run's order of creation, is refused as out "
            "of order; the second adds the counts alone (paycore/data/routing.py, `record_outcome`). Section 2's "
            "sweep per expired order (3 requests) met no later success; in steady traffic an expiring order is "
            "usually older than its segment's last success, so 4 per order is what a sweep costs, and section 5 "
            "prices it from this section. The report: one Query of the day's counters, one of the day's "
            "anomalies per provider (4), one put of the report.",
            "",
            "Where the time outside the requests went: own time (ms, median) and the cyclic garbage collector's "
            "collections per generation 0/1/2 (median per run) with their ms, during the job's own code and "
            "inside its requests (moto):",
            "",
            table(
                [
                    "job",
                    f"own ms ({small:,})",
                    f"own ms ({big:,})",
                    f"collections in own code ({small:,})",
                    "their ms",
                    f"collections in own code ({big:,})",
                    "their ms",
                    f"in requests ({small:,})",
                    f"in requests ({big:,})",
                ],
                collections,
                align="lrrrrrrrr",
            ),
            "",
            heap,
            "",
            f"Filling the tables took {figures['fill_seconds']['small']:.0f} s and "
            f"{figures['fill_seconds']['big']:.0f} s (BatchWriteItem, 25 orders a request). None of the jobs scans "
            "the table.",
            "",
            "Reproduce (and, for comparison, without the freeze):",
            "",
            command("PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only growth"),
            "",
            command("BENCH_GC_FREEZE=0 PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only growth"),
        ]
    )


def run(quick: bool) -> Section:
    from infra.local.template import load_template

    needed = ("SweeperFunction", "StatsFunction", "OrdersFunction")
    missing = [f for f in needed if f not in load_template()["Resources"]]
    if missing:
        note = f"Not measured: {', '.join(missing)} not in template.yaml yet."
        return Section("growth", "3. Growth: the scheduled jobs against the table's size", note, {})
    figures = measure(quick)
    return Section("growth", "3. Growth: the scheduled jobs against the table's size", report_md(figures), figures)

"""Section 2: DynamoDB requests and capacity units per operation, against the design's minimum.

    PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only dynamo

Each operation runs through its handler in-process on moto with the recorder installed
(bench/recorder.py): requests are counted by botocore's own events, capacity units computed from
the items' sizes before and after (bench/capacity.py; moto does not meter). Each operation runs
three times; the figures are the last run's, and a difference between runs is reported.
"""

from __future__ import annotations

from typing import Any

from bench.common import Section, command, table
from bench.operations import Driver, available, operations, set_up
from bench.recorder import Tally
from bench.stack import stack

SAMPLES = 3


def measure() -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with stack() as s:
        driver = Driver(s, cold_caches=True)
        for op in operations():
            if not available(s, op):
                rows[op.name] = {"missing": [f for f in op.functions if f not in s.functions]}
                continue
            tallies, provider = [], Tally()
            for call in op.prepare(driver, SAMPLES):
                set_up(call)
                with s.recorder.capture() as calls:
                    call()
                tallies.append(Tally([c for c in calls if not s.provider_side(c)]))
                provider = Tally([c for c in calls if s.provider_side(c)])
            last = tallies[-1]
            base = Tally()
            if op.baseline is not None:
                empty = op.baseline(driver)
                set_up(empty)
                with s.recorder.capture() as calls:
                    empty()
                base = Tally([c for c in calls if not s.provider_side(c)])

            def per(value: float, baseline: float) -> float:
                return (value - baseline) / op.per  # noqa: B023  # op of this iteration

            other = {
                k: per(v, base.requests.get(k, 0)) for k, v in last.requests.items() if not k.startswith("dynamodb.")
            }
            rows[op.name] = {
                "provider_requests": provider.count() / op.per,
                "requests": per(last.count("dynamodb"), base.count("dynamodb")),
                "sequence": last.describe()
                if op.per == 1
                else f"a run over {op.per}: {last.summary()}; a run over none: {base.summary()}",
                "read_units": per(last.read_units, base.read_units),
                "write_units": per(last.write_units, base.write_units),
                "index_write_units": per(last.index_write_units, base.index_write_units),
                "other": dict(sorted(other.items())),
                "stable": len({t.describe() for t in tallies}) == 1,
                "minimum": op.minimum,
                "kept": op.kept,
                "why": op.why,
            }
    return {"rows": rows, "samples": SAMPLES}


def report(figures: dict[str, Any]) -> str:
    body = []
    for name, r in figures["rows"].items():
        if "missing" in r:
            body.append(
                [name, "—", "not measured: " + ", ".join(r["missing"]) + " not in template.yaml", "", "", "", "", ""]
            )
            continue
        over = r["requests"] - r["minimum"]
        verdict = "at minimum" if abs(over) < 1e-9 else (f"over by {over:g}" if over > 0 else f"under by {-over:g}")
        if r.get("kept") and abs(over - r["kept"]) < 1e-9:
            verdict += ", kept by choice"
        other = ", ".join(f"{k.split('.', 1)[1]} {v:g}" for k, v in r["other"].items() if v) or "—"
        if r.get("provider_requests"):
            other += f"; sandbox provider's own: {r['provider_requests']:g} (not counted)"
        if not r["stable"]:
            verdict += " (runs differed)"
        body.append(
            [
                name,
                f"{r['requests']:g}",
                r["sequence"],
                f"{r['read_units']:g}",
                f"{r['write_units']:g}",
                other,
                f"{r['minimum']:g}",
                verdict,
            ]
        )
    why = "\n".join(
        f"- **{name}** (minimum {r['minimum']:g}): {r['why']}" for name, r in figures["rows"].items() if "why" in r
    )
    return "\n".join(
        [
            "DynamoDB requests per operation, counted by botocore event hooks around the handler call; RRU/WRU are "
            "the read/write request units an on-demand table bills, computed from item sizes by DynamoDB's rules "
            "(moto does not meter; bench/capacity.py cites the rules). WRU include global secondary index writes. "
            f"Each operation ran {figures['samples']} times; figures of the last run.",
            "",
            table(
                [
                    "operation",
                    "requests",
                    "DynamoDB requests in order",
                    "RRU",
                    "WRU",
                    "other AWS requests",
                    "minimum",
                    "",
                ],
                body,
                align="lrlrrlrl",
            ),
            "",
            "The minimum the design needs, and why:",
            "",
            why,
            "",
            "Reproduce:",
            "",
            command("PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only dynamo"),
        ]
    )


def run(quick: bool) -> Section:
    figures = measure()
    return Section("dynamo", "2. DynamoDB work per operation", report(figures), figures)

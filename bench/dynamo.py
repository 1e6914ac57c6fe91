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
from bench.operations import Driver, available, operations
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
                with s.recorder.capture() as calls:
                    call()
                tallies.append(Tally([c for c in calls if not s.provider_side(c)]))
                provider = Tally([c for c in calls if s.provider_side(c)])
            last = tallies[-1]
            rows[op.name] = {
                "provider_requests": provider.count(),
                "requests": last.count("dynamodb"),
                "sequence": last.describe(),
                "read_units": last.read_units,
                "write_units": last.write_units,
                "index_write_units": last.index_write_units,
                "other": dict(sorted((k, v) for k, v in last.requests.items() if not k.startswith("dynamodb."))),
                "stable": len({t.describe() for t in tallies}) == 1,
                "minimum": op.minimum,
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
        verdict = "at minimum" if over == 0 else (f"over by {over}" if over > 0 else f"under by {-over}")
        other = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in r["other"].items()) or "—"
        if r.get("provider_requests"):
            other += f"; sandbox provider's own: {r['provider_requests']} (not counted)"
        if not r["stable"]:
            verdict += " (runs differed)"
        body.append(
            [
                name,
                r["requests"],
                r["sequence"],
                f"{r['read_units']:g}",
                f"{r['write_units']:g}",
                other,
                r["minimum"],
                verdict,
            ]
        )
    why = "\n".join(
        f"- **{name}** (minimum {r['minimum']}): {r['why']}" for name, r in figures["rows"].items() if "why" in r
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

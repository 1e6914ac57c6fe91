"""The printed report: the run, the money, each invariant, latency percentiles and errors by code."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from bench.simulator.checker import INVARIANTS, CheckResult, Observation, outcome_counts

SHOW_VIOLATIONS = 8  # per invariant; the JSON output has all of them


def percentile(samples: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (the smallest sample with at least q % of the samples at or below it)."""
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def latency_rows(latencies: Mapping[str, list[float]]) -> list[dict[str, Any]]:
    rows = []
    for endpoint in sorted(latencies):
        samples = latencies[endpoint]
        rows.append(
            {
                "endpoint": endpoint,
                "count": len(samples),
                "p50_ms": round(percentile(samples, 50) * 1000, 1),
                "p95_ms": round(percentile(samples, 95) * 1000, 1),
                "p99_ms": round(percentile(samples, 99) * 1000, 1),
                "max_ms": round(max(samples) * 1000, 1) if samples else 0.0,
            }
        )
    return rows


def error_rows(answers: Mapping[tuple[str, int, str], int]) -> list[dict[str, Any]]:
    return [
        {"endpoint": endpoint, "status": status, "code": code or "-", "count": count}
        for (endpoint, status, code), count in sorted(answers.items())
        if status == 0 or status >= 400
    ]


def money_rows(observations: Iterable[Observation]) -> list[dict[str, Any]]:
    sums: dict[str, Counter[str]] = defaultdict(Counter)
    for o in observations:
        if not o.created or o.order is None:
            continue
        row = sums[o.order["currency"]]
        row["orders"] += 1
        row["ordered"] += int(o.order["amount"])
        if o.order["status"] in ("paid", "partially_refunded", "refunded"):
            row["paid"] += int(o.order["amount"])
            row["refunded"] += int(o.order.get("refunded_amount") or 0)
    return [{"currency": c, **dict(v), "kept": v["paid"] - v["refunded"]} for c, v in sorted(sums.items())]


def webhook_summary(observations: Iterable[Observation]) -> dict[str, int]:
    """The provider's webhook events of the run's orders and how they were delivered."""
    out: Counter[str] = Counter()
    for o in observations:
        for event in (o.provider or {}).get("events", []):
            out["events"] += 1
            out["attempts"] += int(event.get("attempts") or 0)
            out["delivered_more_than_once"] += int(event.get("attempts") or 0) > 1
            out["undelivered"] += not event.get("delivered")
    return {k: out[k] for k in ("events", "attempts", "delivered_more_than_once", "undelivered")}


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def render(summary: Mapping[str, Any], result: CheckResult, observations: list[Observation]) -> str:
    lines = [
        f"Transaction simulator: scenario {summary['scenario']}, seed {summary['seed']}, plan {summary['plan_digest']}",
        f"target {summary['base_url']} ({summary['target']}), "
        f"{summary['users']} users, concurrency {summary['concurrency']}",
    ]
    created = result.checked_orders
    lines.append(
        f"traffic {summary['traffic_seconds']:.1f} s: {summary['planned_orders']} orders planned, {created} created"
        f" ({created / max(summary['traffic_seconds'], 1e-9):.2f} orders/s), {summary['requests']} requests"
        f" ({summary['requests'] / max(summary['traffic_seconds'], 1e-9):.1f}/s);"
        f" whole run {summary['run_seconds']:.1f} s"
    )
    outcomes = outcome_counts(observations)
    lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    lines.append("")
    money = money_rows(observations)
    if money:
        lines.append("Money (minor units)")
        lines += _table(
            ["currency", "orders", "ordered", "paid", "refunded", "kept"],
            [
                [r["currency"], *(str(r.get(k, 0)) for k in ("orders", "ordered", "paid", "refunded", "kept"))]
                for r in money
            ],
            {1, 2, 3, 4, 5},
        )
        lines.append("")
    hooks = webhook_summary(observations)
    lines.append(
        f"webhooks: {hooks['events']} provider events, {hooks['attempts']} delivery attempts, "
        f"{hooks['delivered_more_than_once']} delivered more than once (duplicates and retries), "
        f"{hooks['undelivered']} undelivered"
    )
    for sweep in summary.get("sweeps", []):
        detail = sweep.get("result") or sweep.get("error")
        if isinstance(detail, dict):
            detail = ", ".join(f"{k} {v}" for k, v in detail.items() if v not in (0, False, None))
        lines.append(
            f"sweep ({sweep['how']}{', at ' + str(sweep['at']) + ' s' if 'at' in sweep else ''}): "
            f"{detail or 'nothing to do'}"
        )
    if summary.get("sweeps"):
        lines.append("")
    lines.append("Invariants")
    grouped = result.by_invariant()
    for name, text in INVARIANTS.items():
        found = grouped.get(name, [])
        lines.append(
            f"  {'FAIL' if found else 'ok  '}  {name}: {text}" + (f" ({len(found)} violations)" if found else "")
        )
        for violation in found[:SHOW_VIOLATIONS]:
            lines.append(f"          {violation.subject}: {violation.message}")
        if len(found) > SHOW_VIOLATIONS:
            lines.append(f"          ... and {len(found) - SHOW_VIOLATIONS} more")
    lines.append("")
    lines.append("Latency per endpoint (ms)")
    lines += _table(
        ["endpoint", "count", "p50", "p95", "p99", "max"],
        [
            [
                r["endpoint"],
                str(r["count"]),
                f"{r['p50_ms']:.1f}",
                f"{r['p95_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['max_ms']:.1f}",
            ]
            for r in summary["latency"]
        ],
        {1, 2, 3, 4, 5},
    )
    lines.append("")
    errors = summary["errors"]
    if errors:
        lines.append("Answers that were not 2xx/3xx")
        lines += _table(
            ["endpoint", "status", "code", "count"],
            [[r["endpoint"], str(r["status"]), r["code"], str(r["count"])] for r in errors],
            {1, 3},
        )
    else:
        lines.append("Every request was answered 2xx.")
    for note in summary.get("notes", []):
        lines.append(f"note: {note}")
    lines.append("")
    lines.append(
        "RESULT: every invariant holds"
        if result.ok
        else f"RESULT: {len(result.violations)} invariant violations "
        f"in {sum(1 for v in grouped.values() if v)} invariants"
    )
    return "\n".join(lines)

"""Section 4: warm-path latency of each operation's handler against the same AWS requests made bare.

    PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only warm [--calls 1000]

For each call: the handler runs in-process on moto (its requests recorded), then the very same
requests run again with a plain boto3 client against mirror tables that have seen every write the
handler's tables have (bench/stack.py), so every condition meets the same state. The two are timed
back to back, call after call, so a slow spell of the machine hits both. The ratio handler ÷ bare
is the handler's own overhead: parsing and validation, Powertools, PynamoDB, and the work the
operation does on purpose (an argon2id hash or verify, EdDSA signing), which the overhead column
separates from the plumbing.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Section, command, percentile, ratio, table
from bench.operations import Driver, available, operations, set_up
from bench.stack import stack


def measure(calls: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with stack(mirror=True) as s:
        assert s.replayer is not None
        driver = Driver(s)
        recorder, replayer = s.recorder, s.replayer
        # Every request from here on is mirrored, set-up included, so the bare tables stay in step.
        for op in operations():
            if not op.warm:
                continue
            if not available(s, op):
                rows[op.name] = {"missing": [f for f in op.functions if f not in s.functions]}
                continue
            with recorder.capture() as setup:
                ready = op.prepare(driver, calls + 1)  # the first call warms up and is not kept
            replayer.run(replayer.prepare(setup))
            handler_ms, bare_ms, requests = [], [], 0
            recorder.metering = False  # count and time only: metering would be timed with the handler
            for i, call in enumerate(ready):
                with recorder.capture() as setup:
                    set_up(call)
                replayer.run(replayer.prepare(setup))
                with recorder.capture() as made:
                    started = time.perf_counter()
                    call()
                    took = (time.perf_counter() - started) * 1000
                bare = replayer.run(replayer.prepare(made)) * 1000
                if i:
                    handler_ms.append(took)
                    bare_ms.append(bare)
                requests = len(made)
            recorder.metering = True
            rows[op.name] = {
                "calls": len(handler_ms),
                "requests": requests,
                "handler_p50": percentile(handler_ms, 50),
                "handler_p99": percentile(handler_ms, 99),
                "bare_p50": percentile(bare_ms, 50),
                "bare_p99": percentile(bare_ms, 99),
                "ratio_p50": ratio(percentile(handler_ms, 50), percentile(bare_ms, 50)),
                "overhead_p50": percentile([h - b for h, b in zip(handler_ms, bare_ms, strict=True)], 50),
            }
    return {"rows": rows, "calls": calls}


def report(figures: dict[str, Any]) -> str:
    body = []
    for name, r in figures["rows"].items():
        if "missing" in r:
            body.append(
                [
                    name,
                    "—",
                    "—",
                    "not measured: " + ", ".join(r["missing"]) + " not in template.yaml",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
            continue
        body.append(
            [
                name,
                r["calls"],
                r["requests"],
                f"{r['handler_p50']:.2f}",
                f"{r['handler_p99']:.2f}",
                f"{r['bare_p50']:.2f}",
                f"{r['bare_p99']:.2f}",
                f"{r['ratio_p50']:.2f}",
                f"{r['overhead_p50']:.2f}",
            ]
        )
    return "\n".join(
        [
            "Handler latency in-process on moto (tracing off: no X-Ray daemon in-process; logs and metrics are "
            "written, to /dev/null) against the same AWS requests made with a plain boto3 client on mirror "
            "tables, call by call. Milliseconds on this machine; the ratio is what carries over.",
            "",
            table(
                [
                    "operation",
                    "calls",
                    "AWS requests",
                    "handler p50",
                    "handler p99",
                    "bare p50",
                    "bare p99",
                    "ratio p50",
                    "own ms p50",
                ],
                body,
                align="lrrrrrrrr",
            ),
            "",
            "own ms: the median of (handler - bare) per call: what the function adds to the requests it makes. "
            "register and login include one argon2id hash or verify (m=19 MiB, t=2, p=1) by design; login, refresh "
            "and create order sign a token or an order (EdDSA).",
            "",
            "Reproduce:",
            "",
            command("PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only warm --calls", str(figures["calls"])),
        ]
    )


def run(quick: bool, calls: int | None = None) -> Section:
    figures = measure(calls or (200 if quick else 1000))
    return Section("warm", "4. Warm path: the handlers' own overhead", report(figures), figures)

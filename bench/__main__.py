"""``make bench``: run the benchmark sections and write docs/performance.md.

    PYTHONPATH=layers/paycore:. .venv/bin/python -m bench [--quick] [--only dynamo,warm,...]

Sections: coldstart (1), dynamo (2), growth (3), warm (4), cost (5, from 2 and 4), load (6).
Each saves its figures under .bench/results/; the report is rebuilt from every section's last
results, so ``--only`` refreshes one section and keeps the others. Nothing here is a test: the
figures are written down, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

from bench.common import RESULTS, ROOT, Section, machine

ORDER = ["coldstart", "dynamo", "growth", "warm", "cost", "load"]
# Run order: the sections that others read first, the long cold-start rounds last but one.
RUN_ORDER = ["dynamo", "warm", "growth", "cost", "load", "coldstart"]
DOC = ROOT / "docs" / "performance.md"
# What was changed or left because of these figures: written by hand, kept between runs.
FINDINGS = Path(__file__).with_name("FINDINGS.md")

HEADER = """# Performance

Written by `make bench` (bench/); do not edit by hand. Every figure is a count, or a ratio of two
things measured side by side in the same run on the same machine (interleaved, so a slow spell of a
shared machine hits both sides); absolute times are shown for context only. Nothing here is asserted
by a test: tests check the harness's logic with counts (tests/unit/test_bench_*.py,
tests/integration/test_bench_*.py).

- Everything: `make bench` (40 minutes on 2 cores shared with other work, 2026-11-25); a quicker pass:
  `make bench QUICK=1`; one section: `make bench BENCH_ARGS="--only warm"`.
- Last run: {when}, on {machine}; sections: {sections}.
"""


def run_section(name: str, args: argparse.Namespace) -> Section:
    if name == "coldstart":
        from bench import coldstart

        return coldstart.run(args.quick, runs=args.runs)
    if name == "dynamo":
        from bench import dynamo

        return dynamo.run(args.quick)
    if name == "growth":
        from bench import growth

        return growth.run(args.quick)
    if name == "warm":
        from bench import warm

        return warm.run(args.quick, calls=args.calls)
    if name == "cost":
        from bench import cost

        return cost.run(args.quick)
    if name == "load":
        from bench import load

        return load.run(args.quick)
    raise SystemExit(f"unknown section {name!r}; known: {', '.join(ORDER)}")


def write_doc(ran: list[str]) -> Path:
    parts = [
        HEADER.format(when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), machine=machine(), sections=", ".join(ran))
    ]
    if FINDINGS.exists():
        parts.append(FINDINGS.read_text(encoding="utf-8"))
    for name in ORDER:
        path = RESULTS / f"{name}.md"
        if path.exists():
            parts.append(path.read_text(encoding="utf-8"))
        else:
            parts.append(f'## {name}\n\nNot run here yet: `make bench BENCH_ARGS="--only {name}"`.\n')
    DOC.write_text("\n".join(parts), encoding="utf-8")
    return DOC


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the benchmarks and write docs/performance.md.")
    parser.add_argument("--quick", action="store_true", help="fewer samples: a check that everything runs")
    parser.add_argument("--only", default="", help=f"comma-separated sections of {', '.join(ORDER)}")
    parser.add_argument("--calls", type=int, default=None, help="warm-path calls per operation (1000; quick 200)")
    parser.add_argument("--runs", type=int, default=None, help="cold-start rounds (10; quick 5)")
    args = parser.parse_args()
    chosen = [s for s in args.only.split(",") if s] or RUN_ORDER
    chosen = [s for s in RUN_ORDER if s in chosen] + [s for s in chosen if s not in RUN_ORDER]

    # Handlers log and print metrics to stdout on every call: thousands of lines that would cost the
    # terminal more than the handler. They go to /dev/null (the writing still happens); progress to stderr.
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  # for the life of the process
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    ran = []
    for name in chosen:
        started = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        run_section(name, args).save()
        ran.append(name)
        print(f"bench: {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    doc = write_doc(ran)
    print(f"bench: wrote {doc.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()

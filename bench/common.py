"""What every benchmark section shares: paths, statistics, the section results store and Markdown.

Each section writes its figures to ``.bench/results/<section>.json`` and its part of the report to
``.bench/results/<section>.md``; ``python -m bench`` joins the parts into docs/performance.md, so a
section can be rerun alone (``--only``) and the report still holds the others' last figures.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench"
RESULTS = WORK / "results"


@dataclass
class Section:
    """One section of docs/performance.md: its Markdown and the figures other sections read."""

    name: str
    title: str
    markdown: str
    figures: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{self.name}.md").write_text(f"## {self.title}\n\n{self.markdown.strip()}\n", encoding="utf-8")
        (RESULTS / f"{self.name}.json").write_text(
            json.dumps({"title": self.title, "figures": self.figures, "machine": machine()}, indent=1, sort_keys=True),
            encoding="utf-8",
        )


def load_figures(name: str) -> dict[str, Any] | None:
    """The figures a section saved on its last run, or None when it has not run here."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    return dict(json.loads(path.read_text(encoding="utf-8"))["figures"])


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]} ({platform.system()})"


# ---------------------------------------------------------------- statistics
def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by the nearest-rank method (p50 of 1,000 samples is the 500th)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])


def median(samples: Iterable[float]) -> float:
    return float(statistics.median(list(samples)))


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


# ---------------------------------------------------------------- Markdown
def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one letter per column (l or r), numbers right by default."""
    rows = [[_cell(v) for v in row] for row in rows]
    if align is None:
        align = "".join("r" if rows and all(_numeric(r[i]) for r in rows) else "l" for i in range(len(header)))
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value).replace("|", "\\|")


def _numeric(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("%"))
    except ValueError:
        return text in ("n/a", "—")
    return True


def command(*args: str) -> str:
    """How to rerun a section, as a fenced shell block."""
    return "```\n" + " ".join(args) + "\n```"

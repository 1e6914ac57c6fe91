"""The figure of docs/routing.md: regret over time, and traffic on a channel that fails and recovers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.routing.simulate import RunResult

COLOURS = {"static": "tab:gray", "round_robin": "tab:orange", "router": "tab:blue", "oracle": "tab:green"}
LABELS = {"static": "best static (hindsight)", "round_robin": "round robin", "router": "router", "oracle": "oracle"}


def plot_results(results: Sequence[RunResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), dpi=110)
    hours = np.linspace(0.0, 12.0, 241)

    def regret_panel(ax: Any, scenario: str) -> None:
        for policy in ("static", "round_robin", "router"):
            runs = [r for r in results if r.scenario == scenario and r.policy == policy]
            curves = [np.interp(hours, *zip(*r.regret_curve, strict=True)) for r in runs]
            mean = np.mean(curves, axis=0)
            sd = np.std(curves, axis=0)
            ax.plot(hours, mean, color=COLOURS[policy], label=LABELS[policy])
            ax.fill_between(hours, mean - sd, mean + sd, color=COLOURS[policy], alpha=0.15)
        ax.set_title(f"{scenario}: cumulative regret against the oracle")
        ax.set_xlabel("hours")
        ax.set_ylabel("expected lost payments (mean ± sd over seeds)")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)

    regret_panel(axes[0][0], "drifting")
    regret_panel(axes[0][1], "stationary")

    def share_panel(ax: Any, scenario: str, attr: str, limit: int, title: str, smooth: int) -> None:
        runs = [r for r in results if r.scenario == scenario and r.policy == "router"]
        length = min(limit, *(len(getattr(r, attr)) for r in runs))
        series = np.array([getattr(r, attr)[:length] for r in runs])
        if smooth > 1:
            kernel = np.ones(smooth) / smooth
            series = np.array([np.convolve(s, kernel, mode="full")[:length] / _ramp(length, smooth) for s in series])
        x = np.arange(1, length + 1)
        for s in series:
            ax.plot(x, s, color=COLOURS["router"], alpha=0.25, linewidth=0.8)
        ax.plot(x, series.mean(axis=0), color=COLOURS["router"], linewidth=2, label="router (mean; thin: seeds)")
        pre = float(np.mean([r.pre_failure_share for r in runs if r.pre_failure_share is not None]))
        ax.axhline(pre, color="black", linestyle=":", label=f"router's share before the failure ({pre:.2f})")
        fraction = 0.2 if attr == "after_failure" else 0.8
        ax.axhline(fraction * pre, color="tab:red", linestyle="--", label=f"{fraction:.0%} of it")
        rr = [r.pre_failure_share or 0.0 for r in results if r.scenario == scenario and r.policy == "round_robin"]
        if rr:
            ax.axhline(float(np.mean(rr)), color=COLOURS["round_robin"], label="round robin (never moves)")
        ax.set_title(title)
        ax.set_xlabel("transactions since the event")
        ax.set_ylabel("probability of choosing alpha")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(loc="center right", fontsize=8)
        ax.grid(alpha=0.3)

    share_panel(axes[1][0], "outage", "after_failure", 400, "outage: alpha fails (share over 50 decisions)", 50)
    share_panel(axes[1][1], "recovery", "after_recovery", 4000, "recovery: alpha is back (share over 100)", 100)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _ramp(length: int, window: int) -> Any:
    """The number of terms in each trailing average (fewer than ``window`` at the start)."""
    import numpy as np

    return np.minimum(np.arange(1, length + 1), window) / window

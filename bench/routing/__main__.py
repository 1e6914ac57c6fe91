"""Offline evaluation of the channel router: ``python -m bench.routing {tune,report,sensitivity}``.

- ``tune``: a grid of router configurations on the *tuning* seeds only; picks one by a stated rule
  and writes docs/routing-tuning.md. The chosen values become ``RouterConfig``'s defaults by hand.
- ``report``: every policy on every scenario on the *report* seeds (disjoint from the tuning
  seeds), with ``RouterConfig()`` as shipped; writes docs/routing-results.md, docs/routing-results.json
  and docs/routing.png (the plot needs matplotlib: bench/requirements.txt).
- ``sensitivity``: the router against the static best and the oracle with the drift scaled and the
  traffic rate changed; writes docs/routing-sensitivity.md.

Every run is deterministic for its seed; runs go to ``--jobs`` worker processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing import Pool
from pathlib import Path

from bench.routing.channel_models import SCENARIOS, Scenario, drifting
from bench.routing.simulate import RunResult, mean_sd, run
from paycore.routing.policy import RouterConfig

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TUNING_SEEDS = (1, 2, 3)
# 30 report seeds: one run's router - oracle varies by 0.15-0.2 points from seed to seed (tuning seeds
# 1-30, docs/routing.md "Results"), so 5 seeds left a standard error of 0.08 against targets 0.1 away;
# 30 bring it to about 0.03. 101-105 (the report until then) are the first five.
REPORT_SEEDS = tuple(range(101, 131))
POLICIES = ("static", "round_robin", "router", "oracle")
MOVE_OFF_BOUND = 200  # the target: fewer than 200 transactions to move >= 80% off a failed channel


def scenario_by_name(name: str) -> Scenario:
    """A scenario of :data:`SCENARIOS`, ``drifting_x<scale>``, or either with ``@<payments per second>``."""
    base, _, rate = name.partition("@")
    scenario = drifting(float(base.removeprefix("drifting_x"))) if base.startswith("drifting_x") else SCENARIOS[base]()
    if rate:
        scenario = dataclasses.replace(scenario, name=name, arrival_rate=float(rate))
    return scenario


@dataclasses.dataclass(frozen=True)
class Job:
    scenario: str
    policy: str
    seed: int
    config: RouterConfig = dataclasses.field(default_factory=RouterConfig)


def _work(job: Job) -> RunResult:
    return run(scenario_by_name(job.scenario), job.policy, job.seed, job.config)


def run_all(jobs: Sequence[Job], workers: int) -> list[RunResult]:
    """Results in the order of ``jobs``."""
    started = time.monotonic()
    results: list[RunResult] = []
    with Pool(workers) as pool:
        for i, result in enumerate(pool.imap(_work, jobs, chunksize=1), start=1):
            results.append(result)
            print(f"\r{i}/{len(jobs)} runs, {time.monotonic() - started:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return results


def _ms(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    mean, sd = mean_sd([v * scale for v in values])
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _se(values: Sequence[float], scale: float = 100.0) -> float:
    """Standard error of the mean (sd / sqrt(n))."""
    return mean_sd([v * scale for v in values])[1] / math.sqrt(len(values)) if len(values) > 1 else 0.0


def _seeds(seeds: Sequence[int]) -> str:
    if list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _count(value: int | None) -> float:
    """A transaction count for averaging; -1 stands for 'never'."""
    return float(value if value is not None else -1)


# ------------------------------------------------------------------ tune


def tuning_grid() -> list[RouterConfig]:
    """The memories (``dts3``): the threshold ``memory_z`` of the consistency test for half-lives of
    30 minutes, 2 and 8 hours, one longer set (1, 4 and 16 hours), and a single memory of 2 hours
    (``dts2``'s choice: the same policy with one memory) for reference. Sharpness 2, epsilon 0.02
    and collapse alpha 1e-3 as chosen by the ``dts2`` grid.

    A scratch pre-screen on the same tuning seeds (stationary, drifting, outage; docs/routing.md,
    "What was tried") left out a variance of the difference that ignores the memories' shared
    outcomes (it hardly ever shortened the memory), a memory per channel instead of per segment,
    and a fourth memory of 24 hours.
    """
    grid = [RouterConfig(memory_z=z) for z in (2.0, 2.5, 3.0)]
    grid.append(RouterConfig(half_life_seconds=3600.0, memory_z=2.5))
    grid.append(RouterConfig(half_life_seconds=7200.0, memories=1))
    return grid


def tune(workers: int, seeds: Sequence[int]) -> RouterConfig:
    grid = tuning_grid()
    router_jobs = [Job(name, "router", seed, config) for config in grid for name in SCENARIOS for seed in seeds]
    oracle_jobs = [Job(name, "oracle", seed) for name in SCENARIOS for seed in seeds]
    results = run_all(router_jobs + oracle_jobs, workers)
    oracle = {(r.scenario, r.seed): r.expected_rate for r in results[len(router_jobs) :]}
    rows = []
    for config in grid:
        runs = [r for job, r in zip(router_jobs, results, strict=False) if job.config == config]
        gaps = {
            name: sum(r.expected_rate - oracle[(name, r.seed)] for r in runs if r.scenario == name) / len(seeds)
            for name in SCENARIOS
        }
        moves = [r.moved_off_after for r in runs if r.scenario == "outage"]
        worst_move = max(m if m is not None else 10**9 for m in moves)
        rows.append((sum(gaps.values()) / len(gaps), config, gaps, worst_move))
    admissible = [row for row in rows if row[3] < MOVE_OFF_BOUND] or rows
    best = max(admissible, key=lambda row: row[0])[1]
    lines = [
        "# Router tuning",
        "",
        "Generated by `python -m bench.routing tune` (`make bench-routing-tune`).",
        "",
        f"Tuning seeds: {_seeds(seeds)}. The report (docs/routing-results.md) uses seeds "
        f"{_seeds(REPORT_SEEDS)}, never these.",
        "",
        "Each cell: the router's expected success rate minus the oracle's, in percentage points, mean over",
        "the tuning seeds (closer to 0 is better). *move-off*: the worst seed's number of transactions",
        "until >= 80% of the failed channel's traffic has moved off it, for good (outage scenario; the share is",
        "the router's probability of choosing it, averaged over the last 50 decisions).",
        "",
        "Rule: the best mean over the four scenarios among the configurations whose worst move-off is",
        f"under {MOVE_OFF_BOUND} transactions.",
        "",
        "| half-lives | memory z | sharpness | epsilon | collapse alpha | "
        + " | ".join(SCENARIOS)
        + " | mean | move-off |",
        "|---|---|---|---|---|" + "---|" * len(SCENARIOS) + "---|---|",
    ]
    for mean_gap, config, gaps, worst_move in rows:
        mark = " (chosen)" if config == best else ""
        lives = ", ".join(f"{h / 3600:g} h" for h in config.half_lives)
        z = f"{config.memory_z:g}" if config.memories > 1 else "-"
        lines.append(
            f"| {lives} | {z} | {config.sharpness:g} | {config.epsilon:g} | "
            f"{config.collapse_alpha:g} | "
            + " | ".join(f"{100 * gaps[name]:+.2f}" for name in SCENARIOS)
            + f" | {100 * mean_gap:+.2f}{mark} | {worst_move} |"
        )
    lines += [
        "",
        f"Chosen: `half_life_seconds={best.half_life_seconds:g}`, `memories={best.memories}`, "
        f"`memory_ratio={best.memory_ratio:g}`, `memory_z={best.memory_z:g}`, `sharpness={best.sharpness:g}`, "
        f"`epsilon={best.epsilon:g}`, `collapse_alpha={best.collapse_alpha:g}`.",
    ]
    (DOCS / "routing-tuning.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return best


# ------------------------------------------------------------------ report


def report(workers: int, seeds: Sequence[int], plot: bool) -> None:
    config = RouterConfig()
    jobs = [Job(name, policy, seed, config) for name in SCENARIOS for policy in POLICIES for seed in seeds]
    results = run_all(jobs, workers)
    by: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        by.setdefault((r.scenario, r.policy), []).append(r)

    def values(scenario: str, policy: str, pick: Callable[[RunResult], float]) -> list[float]:
        return [pick(r) for r in by[(scenario, policy)]]

    def paired(scenario: str, policy: str, other: str) -> list[float]:
        mine = {r.seed: r.success_rate for r in by[(scenario, policy)]}
        theirs = {r.seed: r.success_rate for r in by[(scenario, other)]}
        return [mine[s] - theirs[s] for s in seeds]

    lines = [
        "# Routing evaluation: results",
        "",
        "Generated by `python -m bench.routing report` (`make bench-routing`); docs/routing.md explains it.",
        "",
        f"Router: `{config.version}`. Seeds {_seeds(seeds)} ({len(seeds)} runs per cell, mean ± sd);",
        f"each run is {scenario_by_name('stationary').duration / 3600:g} h of traffic at "
        f"{scenario_by_name('stationary').arrival_rate:g} payments/s "
        f"(~{int(scenario_by_name('stationary').duration * scenario_by_name('stationary').arrival_rate):,} payments).",
        "",
        "## Success rate (%, realised outcomes)",
        "",
        "| scenario | " + " | ".join(POLICIES) + " |",
        "|---|" + "---|" * len(POLICIES),
    ]
    for name in SCENARIOS:
        lines.append(
            f"| {name} | " + " | ".join(_ms(values(name, p, lambda r: r.success_rate)) for p in POLICIES) + " |"
        )
    lines += [
        "",
        "## Router against the baselines (percentage points, paired by seed)",
        "",
        "| scenario | router - static | router - round robin | router - oracle | router - oracle after 2 h |",
        "|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        lines.append(
            f"| {name} | {_ms(paired(name, 'router', 'static'))} | {_ms(paired(name, 'router', 'round_robin'))} | "
            f"{_ms(paired(name, 'router', 'oracle'))} | {_ms(values(name, 'router', lambda r: r.warm_gap))} |"
        )
    moves = values("outage", "router", lambda r: _count(r.moved_off_after))
    moves_rec = values("recovery", "router", lambda r: _count(r.moved_off_after))
    back = values("recovery", "router", lambda r: _count(r.won_back_after))
    lines += [
        "",
        "The last column leaves out the first two hours (the cold start, when every posterior is the prior).",
        "",
        "## Moving off a failed channel",
        "",
        "Transactions after the failure (counting every payment the failed channel could have taken)",
        "until its share (the router's probability of choosing it, averaged over the last 50 decisions)",
        "is at or below 20% of its share in the hour before the failure and stays there (>= 80% of its",
        "traffic moved off, for good). Round robin never moves; the static best in hindsight never sent",
        "it traffic in the outage scenario.",
        "",
        "| scenario | mean ± sd | max | per seed |",
        "|---|---|---|---|",
        f"| outage | {_ms(moves, 1.0, 1)} | {max(moves):.0f} | {', '.join(f'{m:.0f}' for m in moves)} |",
        f"| recovery | {_ms(moves_rec, 1.0, 1)} | {max(moves_rec):.0f} | {', '.join(f'{m:.0f}' for m in moves_rec)} |",
        "",
        "After alpha recovers (recovery scenario), transactions until the router's average probability of",
        "choosing it over 100 decisions is back to 80% of its pre-failure share: "
        f"{_ms(back, 1.0, 0)} (per seed: {', '.join(f'{b:.0f}' for b in back)}).",
        "",
        "## Targets (issue 8)",
        "",
    ]
    drift = paired("drifting", "router", "static")
    stat = paired("stationary", "router", "oracle")
    warm = values("stationary", "router", lambda r: r.warm_gap)
    drift_gain, stat_gap, stat_warm = (mean_sd(v)[0] for v in (drift, stat, warm))
    lines += [
        "Means over the seeds, with their standard error (sd / sqrt(n)): the targets are about the",
        "router's expected performance, which the mean estimates to within about two standard errors.",
        "",
        f"- >= +1 point over the best static channel, drifting: {100 * drift_gain:+.3f} "
        f"(standard error {_se(drift):.3f}) points: " + ("met" if drift_gain >= 0.01 else "NOT met"),
        f"- within 0.5 points of the oracle, stationary: {100 * stat_gap:+.2f} (standard error {_se(stat):.2f}) "
        "over the whole run "
        + ("(met)" if stat_gap >= -0.005 else "(NOT met)")
        + f", {100 * stat_warm:+.2f} ({_se(warm):.2f}) after the 2 h cold start "
        + ("(met)" if stat_warm >= -0.005 else "(NOT met)"),
        f"- < {MOVE_OFF_BOUND} transactions to move >= 80% off a failed channel: worst seed {max(moves):.0f}: "
        + ("met" if 0 <= max(moves) < MOVE_OFF_BOUND else "NOT met"),
    ]
    (DOCS / "routing-results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (DOCS / "routing-results.json").write_text(
        json.dumps({"config": config.version, "runs": [r.summary() for r in results]}, indent=1) + "\n",
        encoding="utf-8",
    )
    print("\n".join(lines))
    if plot:
        from bench.routing.plot import plot_results

        plot_results(results, DOCS / "routing.png")


# ------------------------------------------------------------------ sensitivity


def sensitivity(workers: int, seeds: Sequence[int]) -> None:
    config = RouterConfig()
    drift_names = [f"drifting_x{s:g}" for s in (0.5, 1.5)]  # 1x is the report's drifting scenario
    rate_names = [f"outage@{rate:g}" for rate in (0.25, 1.0)]  # 0.5/s is the report's
    jobs = [
        Job(name, policy, seed, config)
        for name in drift_names + rate_names
        for policy in ("static", "router", "oracle")
        for seed in seeds
    ]
    results = run_all(jobs, workers)
    by: dict[tuple[str, str], dict[int, RunResult]] = {}
    for r in results:
        by.setdefault((r.scenario, r.policy), {})[r.seed] = r

    def gap(name: str, policy: str, other: str) -> str:
        return _ms([by[(name, policy)][s].success_rate - by[(name, other)][s].success_rate for s in seeds])

    lines = [
        "# Routing evaluation: sensitivity",
        "",
        f"Generated by `python -m bench.routing sensitivity`. Router `{config.version}`; seeds {_seeds(seeds)};",
        "percentage points, paired by seed, mean ± sd.",
        "",
        "## Drift amplitude (drifting scenario, every wave and ramp scaled)",
        "",
        "| scale | oracle - static (headroom) | router - static | router - oracle |",
        "|---|---|---|---|",
    ]
    for name in drift_names:
        lines.append(
            f"| {name.removeprefix('drifting_x')}x | {gap(name, 'oracle', 'static')} | "
            f"{gap(name, 'router', 'static')} | {gap(name, 'router', 'oracle')} |"
        )
    lines += [
        "",
        "## Traffic rate (outage scenario; payments per second, all segments; the same 12 hours)",
        "",
        "| scenario | rate | router - static | router - oracle | move-off (transactions) |",
        "|---|---|---|---|---|",
    ]
    for name in rate_names:
        scenario, rate = name.split("@")
        moves = ""
        if scenario == "outage":
            counts = [_count(by[(name, "router")][s].moved_off_after) for s in seeds]
            moves = f"{_ms(counts, 1.0, 0)} (max {max(counts):.0f})"
        lines.append(
            f"| {scenario} | {rate} | {gap(name, 'router', 'static')} | {gap(name, 'router', 'oracle')} | {moves} |"
        )
    (DOCS / "routing-sensitivity.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("tune", "report", "sensitivity"))
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seeds", type=str, default=None, help="comma-separated seeds (default: per command)")
    parser.add_argument("--no-plot", action="store_true", help="report without the PNG (no matplotlib needed)")
    args = parser.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None
    if args.command == "tune":
        tune(args.jobs, seeds or TUNING_SEEDS)
    elif args.command == "report":
        report(args.jobs, seeds or REPORT_SEEDS, plot=not args.no_plot)
    else:
        sensitivity(args.jobs, seeds or REPORT_SEEDS[:3])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m bench.simulator``: drive a scenario's traffic through the whole flow and check the money.

Exit status: 0 when every invariant holds, 1 when one breaks, 2 when the run could not be made
(bad arguments or scenario, no stack). docs/simulator.md explains everything printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.simulator import checker, plan, report, scenario
from bench.simulator.accounts import AccountError, Accounts, new_run_id
from bench.simulator.backend import DEFAULT_BASE_URL, Target, TargetError
from bench.simulator.checker import Observation
from bench.simulator.client import Recorder

EXIT_OK, EXIT_VIOLATION, EXIT_UNUSABLE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.simulator",
        description="Virtual users register, log in, order, pay, decline, abandon, cancel and refund over HTTP "
        "while the sandbox provider duplicates, delays and reorders its webhooks and the sweeper expires "
        "what was left; then every order is checked against the provider's own record and the daily report.",
        epilog=f"Shipped scenarios: {', '.join(scenario.shipped())}. Exit 0: every invariant holds; 1: one broke; "
        "2: the run could not be made.",
    )
    parser.add_argument(
        "--scenario", default="smoke", help="a shipped scenario's name or a .toml path (default: smoke)"
    )
    parser.add_argument(
        "--base-url",
        help=f"the API (default: the local stack at {DEFAULT_BASE_URL}, started on free ports when nothing answers "
        "there); a URL without /_local is a deployed stage (then --stage)",
    )
    parser.add_argument(
        "--new-stack", action="store_true", help="start a fresh local stack on free ports even if one answers on :3000"
    )
    parser.add_argument("--stage", help="a deployed stage's name (its tables and functions are found by it)")
    parser.add_argument("--region", default="us-east-1", help="a deployed stage's region (default: us-east-1)")
    parser.add_argument("--users", type=int, help="virtual users (default: the scenario's)")
    parser.add_argument("--concurrency", type=int, default=8, help="users acting at once (default: 8)")
    parser.add_argument(
        "--seed", type=int, default=1, help="the traffic plan's seed: same seed, same plan (default: 1)"
    )
    parser.add_argument(
        "--codes-from",
        metavar="COMMAND",
        help="deployed stage: a shell command printing the verification code (gets SIM_USERNAME, SIM_EMAIL, SIM_PHONE)",
    )
    parser.add_argument(
        "--accounts",
        type=Path,
        metavar="FILE",
        help="deployed stage: JSON list of verified {username, password} to log in instead of registering",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON here")
    parser.add_argument(
        "--save", type=Path, metavar="PATH", help="save the run (orders, answers, reports) for --recheck"
    )
    parser.add_argument(
        "--recheck",
        type=Path,
        metavar="RUN_FILE",
        help="read a saved run's orders and provider "
        "records again from its (still running) local stack and check them; no traffic",
    )
    parser.add_argument("--plan-only", action="store_true", help="print the plan's digest and mix, then exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _summary(args: argparse.Namespace, sc: scenario.Scenario, the_plan: plan.Plan, target: Target) -> dict[str, Any]:
    return {
        "scenario": sc.name,
        "seed": args.seed,
        "plan_digest": the_plan.digest(),
        "base_url": target.base_url,
        "target": (
            f"local stack started by the simulator, stage {target.stage}"
            if target.started
            else f"local stack, stage {target.stage}"
            if target.local
            else f"deployed stage {target.stage}"
        ),
        "users": len(the_plan.users),
        "concurrency": args.concurrency,
        "planned_orders": len(the_plan.orders),
    }


def _finish(
    summary: dict[str, Any], result: checker.CheckResult, observations: list[Observation], args: argparse.Namespace
) -> int:
    print(report.render(summary, result, observations))
    if args.json:
        document = {
            **summary,
            "ok": result.ok,
            "violations": [asdict(v) for v in result.violations],
            "outcomes": dict(checker.outcome_counts(observations)),
            "money": report.money_rows(observations),
            "webhooks": report.webhook_summary(observations),
            "stats_expected": {f"{k[0]}/{k[1]}": v for k, v in result.expected_stats.items()},
            "stats_observed": {f"{k[0]}/{k[1]}": v for k, v in result.observed_stats.items()},
        }
        args.json.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return EXIT_OK if result.ok else EXIT_VIOLATION


def _answers_to_json(recorder: Recorder) -> list[list[Any]]:
    return [[e, s, c, n] for (e, s, c), n in sorted(recorder.answers.items())]


def run(args: argparse.Namespace) -> int:
    sc = scenario.load(args.scenario)
    the_plan = plan.build(sc, args.seed, args.users)
    if args.plan_only:
        print(
            f"scenario {sc.name}, seed {args.seed}: plan {the_plan.digest()}, {len(the_plan.users)} users, "
            f"{len(the_plan.orders)} orders, payer actions {dict(sorted(the_plan.counts().items()))}"
        )
        return EXIT_OK
    started = time.monotonic()
    target = Target.open(args.base_url, stage=args.stage, region=args.region, new_stack=args.new_stack)
    try:
        accounts = Accounts(
            run_id=new_run_id(), local=target.local, codes_from=args.codes_from, accounts_file=args.accounts
        )
        from bench.simulator.runner import Run

        print(
            f"scenario {sc.name}: {len(the_plan.users)} users, {len(the_plan.orders)} orders "
            f"over {sc.wall_seconds:.0f} s "
            f"(plan {the_plan.digest()}) against {target.base_url}",
            file=sys.stderr,
        )
        outcome = Run(
            sc, the_plan, target, accounts, concurrency=args.concurrency, progress=not args.no_progress
        ).execute()
        result = checker.check(
            outcome.observations,
            stats_before=outcome.stats_before,
            stats_after=outcome.stats_after,
            answers=outcome.recorder.answers,
        )
        summary = _summary(args, sc, the_plan, target) | {
            "traffic_seconds": outcome.traffic_seconds,
            "run_seconds": time.monotonic() - started,
            "requests": outcome.recorder.calls(),
            "latency": report.latency_rows(outcome.recorder.latencies),
            "errors": report.error_rows(outcome.recorder.answers),
            "notes": outcome.notes,
            "sweeps": outcome.sweeps,
            "timings": {k: round(v, 2) for k, v in outcome.timings.items()},
        }
        if args.save:
            args.save.write_text(
                json.dumps(
                    {
                        "summary": summary,
                        "stage": target.stage,
                        "region": target.region,
                        "report_dates": outcome.report_dates,
                        "stats_before": outcome.stats_before,
                        "answers": _answers_to_json(outcome.recorder),
                        "observations": [asdict(o) for o in outcome.observations],
                    },
                    indent=1,
                )
                + "\n"
            )
        return _finish(summary, result, outcome.observations, args)
    finally:
        target.close()


def recheck(args: argparse.Namespace) -> int:
    """Check a saved run again, reading the orders from the service's table (the run's sessions are
    gone) and the provider's records and the daily report afresh."""
    saved = json.loads(args.recheck.read_text())
    summary = saved["summary"]
    target = Target.open(summary["base_url"])
    if not target.local:
        raise TargetError("--recheck reads the local stack the run used; it no longer answers")
    target.bind_paycore()
    from bench.simulator import ledger

    observations = []
    for data in saved["observations"]:
        o = Observation(
            **{**data, "create_answer": tuple(data["create_answer"]) if data.get("create_answer") else None}
        )
        service = ledger.service_record(o.order_id)
        o.service = service
        o.order = {k: v for k, v in service.items() if k != "history"} if service else None
        o.provider = ledger.provider_record(o.order_id)
        observations.append(o)
    after = []
    for day in saved["report_dates"]:
        answer = target.run_schedule("stats", {"date": day})
        after.append(answer.get("report") if isinstance(answer.get("report"), dict) else None)
    answers = {(e, s, c): n for e, s, c, n in saved["answers"]}
    result = checker.check(observations, stats_before=saved["stats_before"], stats_after=after, answers=answers)
    summary = {**summary, "notes": [*summary.get("notes", []), f"rechecked from {args.recheck}"]}
    return _finish(summary, result, observations, args)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return recheck(args) if args.recheck else run(args)
    except (scenario.ScenarioError, TargetError, AccountError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())

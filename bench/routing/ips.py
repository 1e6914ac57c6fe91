"""Off-policy evaluation from exported logs: ``python -m bench.routing.ips LOG [LOG ...]``.

Reads JSON log lines (a CloudWatch Logs export or ``aws logs filter-log-events`` output, one event
per line; a timestamp before the JSON is fine), joins the ``routing_decision`` and
``routing_outcome`` records, and prints IPS and SNIPS estimates of the success rate (or net value)
that other policies would have had on the same payments: each channel alone, uniform random, and
the router with other parameters (``--epsilon``, ``--sharpness``, ``--objective``; the half-life is
already in the logged counts, so it cannot be varied this way).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from paycore.routing.offline import estimate, read_log, router_target, static_target, uniform_target
from paycore.routing.policy import RouterConfig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing.ips", description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", type=Path, help="files of JSON log lines")
    parser.add_argument("--reward", choices=("success", "net_value"), default="success")
    parser.add_argument("--epsilon", type=float, action="append", default=[], help="router variant (repeatable)")
    parser.add_argument("--sharpness", type=float, action="append", default=[], help="router variant (repeatable)")
    parser.add_argument("--objective", choices=("success_rate", "net_value"), action="append", default=[])
    args = parser.parse_args(argv)

    lines: list[str] = []
    for path in args.logs:
        lines += path.read_text(encoding="utf-8").splitlines()
    samples, pending = read_log(lines)
    if not samples:
        print(f"no decision with an outcome in {len(lines)} lines ({pending} pending)", file=sys.stderr)
        return 1
    channels = sorted({c for s in samples for c in s.decision.eligible})
    targets = {f"always {c}": static_target(c) for c in channels}
    targets["uniform"] = uniform_target
    variants = [RouterConfig(epsilon=e) for e in args.epsilon]
    variants += [RouterConfig(sharpness=k) for k in args.sharpness]
    variants += [RouterConfig(objective=o) for o in args.objective]
    for config in variants or [RouterConfig()]:
        targets[f"router {config.version}"] = router_target(config)

    policies = sorted({s.decision.policy for s in samples})
    print(f"{len(samples)} decisions with an outcome, {pending} pending; logged by: {', '.join(policies)}")
    own = estimate(samples, uniform_target, reward=args.reward).logged_value
    print(f"reward: {args.reward}; the logging policy's own average: {own:.4f}")
    print(f"{'policy':<60} {'IPS':>8} {'± se':>7} {'SNIPS':>8} {'± se':>7} {'ESS':>8}")
    for name, target in targets.items():
        result = estimate(samples, target, reward=args.reward)
        print(
            f"{name[:60]:<60} {result.ips:8.4f} {result.ips_se:7.4f} {result.snips:8.4f} "
            f"{result.snips_se:7.4f} {result.effective_sample_size:8.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

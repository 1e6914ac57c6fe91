"""What a routing decision costs: DynamoDB requests (counted) and in-process latency (measured).

``python -m bench.routing.latency`` (``make bench-routing-latency``) runs on moto in-process with
the template's tables, the seed channels plus three more CNY channels, and router state with
history for every channel. It prints a markdown table and writes docs/routing-latency.md.

Latency on moto is CPU time of this process (moto answers in-process, no network), so the figures
separate the router's own work (the policy, the log line) from the DynamoDB round trip, which on
AWS is a network call (docs/routing.md discusses it). Not a test: nothing here is asserted.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUNS = 300
WARMUP = 50
_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessPayments",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "STAGE": "bench",
}
EXTRA_CHANNELS = ("cny_c", "cny_d", "cny_e")


def _timed(fn: Callable[[], Any], runs: int = RUNS) -> tuple[float, float, float]:
    """CPU-time p50 and p99 and wall-clock p50, in milliseconds, over ``runs`` calls after a warm-up.

    CPU time of this thread (``time.thread_time``) is what the call costs whatever else the machine
    runs; wall-clock time on a shared machine also counts waiting for a core.
    """
    for _ in range(WARMUP):
        fn()
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append((time.thread_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    cuts = statistics.quantiles(cpu, n=100)
    return cuts[49], cuts[98], statistics.median(wall)


def main() -> None:
    os.environ.update(_ENV)
    import boto3
    from moto import mock_aws
    from pynamodb.connection.base import Connection

    with mock_aws():
        from infra.local.provision import provision

        resolver = provision(boto3.session.Session(), stage="bench", region="us-east-1")
        os.environ["CHANNELS_TABLE"] = str(resolver.ref("ChannelsTable"))
        os.environ["ROUTER_TABLE"] = str(resolver.ref("RouterStateTable"))
        from infra.seed.channels import seed_channels
        from paycore import channels
        from paycore.data import routing as store
        from paycore.data.channels import put_channel_item
        from paycore.observability import logger
        from paycore.routing import service
        from paycore.routing.policy import Arm, ArmState, evaluate

        handler: Any = logger.registered_handler
        handler.setStream(io.StringIO())  # log lines are formatted as in Lambda, not printed to the terminal
        seed_channels()
        for i, channel_id in enumerate(EXTRA_CHANNELS):
            put_channel_item(
                {
                    "id": channel_id,
                    "name": channel_id,
                    "provider": "sandbox",
                    "currencies": ["CNY"],
                    "limits": {"CNY": {"min": 1, "max": 5_000_000}},
                    "priority": 30 + i,
                }
            )
        now = time.time()
        all_ids = [c.id for c in channels.eligible_channels(1000, "CNY")]
        for k, channel_id in enumerate(all_ids):
            for i in range(40):
                service.observe(
                    order_id=f"h{k}-{i}",
                    channel_id=channel_id,
                    amount=1000,
                    currency="CNY",
                    outcome="paid" if i % (k + 3) else "failed",
                    at=now - 600 + i,
                )

        counts: Counter[str] = Counter()
        original = Connection._make_api_call

        def counting(self: Connection, operation_name: str, operation_kwargs: dict[str, Any]) -> dict[str, Any]:
            counts[operation_name] += 1
            return original(self, operation_name, operation_kwargs)

        two = channels.eligible_channels(1000, "CNY")[:2]  # the channel list: a Query every CHANNELS_CACHE_SECONDS
        Connection._make_api_call = counting  # type: ignore[method-assign]
        service.route(two, 1000, "CNY", decision_id="count")
        per_decision = dict(counts)
        counts.clear()
        service.observe(order_id="count", channel_id="sandbox", amount=1000, currency="CNY", outcome="paid", at=now)
        per_outcome = dict(counts)
        Connection._make_api_call = original  # type: ignore[method-assign]

        rows: list[tuple[str, float, float, float]] = []
        eligible = [c for c in channels.eligible_channels(1000, "CNY") if c.available]
        config = service.policy_config()
        for k in (2, 3, 5):
            subset = eligible[:k]
            states = store.read_states("CNY#1e1", [c.id for c in subset], now)
            arms = [Arm(c.id, c.fee_bps, states.get(c.id, ArmState())) for c in subset]
            rows.append((f"policy only (`evaluate`, K={k})", *_timed(lambda a=arms: evaluate(a, config))))
        for k in (2, 5):
            subset = eligible[:k]
            keys = [c.id for c in subset]
            rows.append(
                (
                    f"state read (`read_states`, BatchGetItem of {k} on moto)",
                    *_timed(lambda ids=keys: store.read_states("CNY#1e1", ids, time.time())),
                )
            )
            client = boto3.client("dynamodb", region_name="us-east-1")
            request = {os.environ["ROUTER_TABLE"]: {"Keys": [{"pk": {"S": "CNY#1e1"}, "sk": {"S": c}} for c in keys]}}
            rows.append(
                (
                    f"bare boto3 BatchGetItem of {k} on moto (floor)",
                    *_timed(lambda r=request, c=client: c.batch_get_item(RequestItems=r)),
                )
            )
            rows.append(
                (
                    f"whole decision (`route`, K={k}: read, policy, draw, log line)",
                    *_timed(lambda s=subset: service.route(s, 1000, "CNY", decision_id="bench")),
                )
            )
        rows.append(
            (
                "eligibility only (what `auto` did before: cached channel list)",
                *_timed(lambda: [c for c in channels.eligible_channels(1000, "CNY") if c.available]),
            )
        )
        rows.append(
            (
                "outcome (`observe`: one UpdateItem on moto, log line)",
                *_timed(
                    lambda: service.observe(
                        order_id="b", channel_id="sandbox", amount=1000, currency="CNY", outcome="paid", at=time.time()
                    )
                ),
            )
        )

    lines = [
        "# Routing decision cost",
        "",
        "Generated by `python -m bench.routing.latency` (`make bench-routing-latency`): moto in-process,",
        f"this machine, over {RUNS} calls after {WARMUP} warm-up calls: CPU time of the calling thread",
        "(p50, p99) and wall-clock p50. Not asserted anywhere.",
        "",
        f"- DynamoDB requests per routing decision: {per_decision} (one request, one item per eligible channel)",
        f"- DynamoDB requests per outcome: {per_outcome}",
        "",
        "| operation | CPU p50 ms | CPU p99 ms | wall p50 ms |",
        "|---|---|---|---|",
        *[f"| {name} | {p50:.3f} | {p99:.3f} | {wall:.3f} |" for name, p50, p99, wall in rows],
    ]
    (ROOT / "docs" / "routing-latency.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Section 5: cost per million payments on arm64, REST API against HTTP API, from sections 2 and 4.

    PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only cost    (after dynamo and warm)

A payment is one paid order. Its traffic, with the amortisation stated in FLOW: the payer's
registration and logins shared over their payments, one channel listing (the routing answer), the
order, the provider's callback, the authorizer on every Bearer call, the sweeper's work on the
orders left unpaid, and the daily report. Counts per operation come from section 2 (requests,
request units, other AWS requests); Lambda durations from section 4 (handler p50 on this machine,
moto's in-process latency standing in for DynamoDB's round trip), billed per 1 ms at the
function's memory from template.yaml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.common import Section, command, load_figures, table
from infra.local.template import Resolver, functions, load_template

PRICES_CHECKED = "2026-11-25"
# us-east-1 list prices, as the AWS pricing pages state them (first tier; checked on PRICES_CHECKED).
PRICES = {
    "lambda_gb_s_arm": (0.0000133334, "https://aws.amazon.com/lambda/pricing/ (Arm, first 7.5 billion GB-s a month)"),
    "lambda_request": (0.20 / 1e6, "https://aws.amazon.com/lambda/pricing/ ($0.20 per 1M requests)"),
    "rest_api_request": (3.50 / 1e6, "https://aws.amazon.com/api-gateway/pricing/ (REST, first 333M a month)"),
    "http_api_request": (
        1.00 / 1e6,
        "https://aws.amazon.com/api-gateway/pricing/ (HTTP, first 300M a month, per 512 KB)",
    ),
    "ddb_wru": (0.625 / 1e6, "https://aws.amazon.com/dynamodb/pricing/on-demand/ ($0.625 per 1M write request units)"),
    "ddb_rru": (0.125 / 1e6, "https://aws.amazon.com/dynamodb/pricing/on-demand/ ($0.125 per 1M read request units)"),
    "secrets_call": (0.05 / 10_000, "https://aws.amazon.com/secrets-manager/pricing/ ($0.05 per 10,000 API calls)"),
    "secret_month": (0.40, "https://aws.amazon.com/secrets-manager/pricing/ ($0.40 per secret per month)"),
    "sns_publish": (0.50 / 1e6, "https://aws.amazon.com/sns/pricing/ ($0.50 per 1M publishes)"),
    "sns_email": (2.00 / 100_000, "https://aws.amazon.com/sns/pricing/ ($2.00 per 100,000 email notifications)"),
    "ses_email": (0.10 / 1000, "https://aws.amazon.com/ses/pricing/ ($0.10 per 1,000 emails)"),
    "events_put": (1.00 / 1e6, "https://aws.amazon.com/eventbridge/pricing/ ($1.00 per 1M custom events)"),
    "scheduler_run": (
        1.00 / 1e6,
        "https://aws.amazon.com/eventbridge/pricing/ (Scheduler, $1.00 per 1M after 14M free)",
    ),
    "sqs_request": (0.40 / 1e6, "https://aws.amazon.com/sqs/pricing/ ($0.40 per 1M standard requests)"),
}

# What one payment amortises (assumptions, stated in the report):
PAYMENTS_PER_USER = 10  # a payer registers (register + verify) once for ten payments
PAYMENTS_PER_LOGIN = 2  # logs in once for two payments, and refreshes once per login
EXPIRED_SHARE = 0.10  # one order in ten is never paid: created, then expired by the sweeper
PAYMENTS_PER_DAY = 1_000_000 / 30  # a million payments a month: the daily report and sweeper runs shared
SWEEPS_PER_DAY = 24 * 60 / 5


@dataclass(frozen=True)
class Step:
    operation: str  # a section 2 / section 4 operation
    per_payment: float
    function: str  # logical id billed for the invocation
    api: bool  # an API Gateway request
    bearer: bool  # the authorizer runs first (ReauthorizeEvery 0)


def flow() -> list[Step]:
    orders = 1 / (1 - EXPIRED_SHARE)
    return [
        Step("register", 1 / PAYMENTS_PER_USER, "RegisterFunction", api=True, bearer=False),
        Step("verify", 1 / PAYMENTS_PER_USER, "RegisterFunction", api=True, bearer=False),
        Step("login", 1 / PAYMENTS_PER_LOGIN, "LoginFunction", api=True, bearer=False),
        Step("refresh", 1 / PAYMENTS_PER_LOGIN, "LoginFunction", api=True, bearer=False),
        Step("list channels", orders, "ChannelsFunction", api=True, bearer=True),
        Step("create order", orders, "OrdersFunction", api=True, bearer=True),
        Step("callback", 1, "CallbacksFunction", api=True, bearer=False),
        Step("sweep per expired order", orders - 1, "SweeperFunction", api=False, bearer=False),
        Step("daily report", 1 / PAYMENTS_PER_DAY, "StatsFunction", api=False, bearer=False),
    ]


def _lambda_cost(ms: float, memory_mb: int, *, invocation: bool = True) -> float:
    """An invocation of ``ms`` (billed per 1 ms), or, ``invocation=False``, a share of one run's duration."""
    billed = math.ceil(ms) if invocation else ms
    request = PRICES["lambda_request"][0] if invocation else 0.0
    return billed / 1000 * memory_mb / 1024 * PRICES["lambda_gb_s_arm"][0] + request


_OTHER = {
    "ses.SendEmail": "ses_email",
    "sesv2.SendEmail": "ses_email",
    "sns.Publish": "sns_publish",
    "events.PutEvents": "events_put",
    "sqs.SendMessage": "sqs_request",
    "sqs.SendMessageBatch": "sqs_request",
    "secretsmanager.GetSecretValue": "secrets_call",
}


def compute() -> dict[str, Any]:
    dynamo, warm = load_figures("dynamo"), load_figures("warm")
    if dynamo is None or warm is None:
        raise SystemExit("cost needs the dynamo and warm sections' results: run them first")
    template = load_template()
    memory = {lid: s.memory for lid, s in functions(template, Resolver(template=template)).items()}
    rows, missing = [], []
    totals = {"rest": 0.0, "http": 0.0}
    auth_ms = warm["rows"].get("authorize", {}).get("handler_p50")
    auth_dynamo = dynamo["rows"].get("authorize", {})
    growth = load_figures("growth") or {}
    # The scheduled jobs are not on the warm path: their durations come from section 3 (small table).
    job_ms = {}
    if "sweep_ms" in growth:
        job_ms["sweep per expired order"] = (growth["sweep_ms"] - growth["empty_sweep_ms"]) / growth["due"]
        job_ms["daily report"] = growth["report_ms"]
    sweep_counts = _sweep_per_order(growth)
    for step in flow():
        counts = dynamo["rows"].get(step.operation, {})
        if step.operation == "sweep per expired order" and sweep_counts and counts:
            counts = {**counts, **sweep_counts}
        ms = warm["rows"].get(step.operation, {}).get("handler_p50", job_ms.get(step.operation))
        if "requests" not in counts or ms is None:
            missing.append(step.operation)
            continue
        per = step.per_payment * 1e6  # per million payments
        per_run = step.operation == "sweep per expired order"  # a share of a run, not an invocation
        lam = _lambda_cost(ms, memory.get(step.function, 512), invocation=not per_run)
        ddb = counts["write_units"] * PRICES["ddb_wru"][0] + counts["read_units"] * PRICES["ddb_rru"][0]
        other = sum(n * PRICES[_OTHER[k]][0] for k, n in counts.get("other", {}).items() if k in _OTHER)
        if step.bearer and auth_ms is not None and "read_units" in auth_dynamo:
            lam += _lambda_cost(auth_ms, memory.get("AuthorizerFunction", 512))
            ddb += auth_dynamo["read_units"] * PRICES["ddb_rru"][0]
        sched = PRICES["scheduler_run"][0] if step.operation == "daily report" else 0.0
        rest = PRICES["rest_api_request"][0] if step.api else 0.0
        http = PRICES["http_api_request"][0] if step.api else 0.0
        row = {
            "operation": step.operation,
            "per_payment": step.per_payment,
            "lambda": lam * per,
            "dynamodb": ddb * per,
            "other": (other + sched) * per,
            "rest_api": rest * per,
            "http_api": http * per,
        }
        row["total_rest"] = row["lambda"] + row["dynamodb"] + row["other"] + row["rest_api"]
        row["total_http"] = row["lambda"] + row["dynamodb"] + row["other"] + row["http_api"]
        totals["rest"] += row["total_rest"]
        totals["http"] += row["total_http"]
        rows.append(row)
    secrets = [r for r in template["Resources"].values() if r["Type"] == "AWS::SecretsManager::Secret"]
    fixed = {"secrets at rest (a month)": len(secrets) * PRICES["secret_month"][0]}
    # The sweeper runs every 5 minutes whatever the volume; an empty run's duration comes from section 3.
    if "empty_sweep_ms" in growth:
        run_cost = PRICES["scheduler_run"][0] + _lambda_cost(
            growth["empty_sweep_ms"], memory.get("SweeperFunction", 512)
        )
        empty = growth.get("rows", {}).get("empty", {})
        # its 17 Queries (the pending index's 16 and the refund reconciler's), read units from section 3
        run_cost += empty.get("small_rru", 0.0) * PRICES["ddb_rru"][0]
        fixed["sweeper runs every 5 min (a month)"] = SWEEPS_PER_DAY * 30 * run_cost
    return {
        "rows": rows,
        "totals": totals,
        "missing": missing,
        "fixed": fixed,
        "prices_checked": PRICES_CHECKED,
        "sweep_per_order": sweep_counts,
    }


def _sweep_per_order(growth: dict[str, Any]) -> dict[str, float] | None:
    """A due order's DynamoDB work from section 3: (a run over the due orders - a run over none) / due,
    on the small table. Section 3's table holds the day's paid traffic, as a live one does, so the
    router's outcome for an expiring order (created before the segment's last success) takes the two
    UpdateItems it takes in steady traffic; section 2's sweep met no later success."""
    rows = growth.get("rows", {})
    sweep, empty = rows.get("sweep", {}), rows.get("empty", {})
    if "small_wru" not in sweep or "small_wru" not in empty or not growth.get("due"):
        return None
    due = growth["due"]
    return {
        "requests": (sweep["small_requests"] - empty["small_requests"]) / due,
        "read_units": (sweep["small_rru"] - empty["small_rru"]) / due,
        "write_units": (sweep["small_wru"] - empty["small_wru"]) / due,
    }


def report(figures: dict[str, Any]) -> str:
    body = [
        [
            r["operation"],
            f"{r['per_payment']:.3g}",
            f"{r['lambda']:.2f}",
            f"{r['dynamodb']:.2f}",
            f"{r['other']:.2f}",
            f"{r['rest_api']:.2f}",
            f"{r['http_api']:.2f}",
            f"{r['total_rest']:.2f}",
            f"{r['total_http']:.2f}",
        ]
        for r in figures["rows"]
    ]
    t = figures["totals"]
    body.append(["**total**", "", "", "", "", "", "", f"**{t['rest']:.2f}**", f"**{t['http']:.2f}**"])
    notes = [
        f"US dollars per million payments, us-east-1 list prices checked {figures['prices_checked']} (sources below), "
        "arm64, the memory template.yaml gives each function, free tiers ignored.",
        "",
        table(
            [
                "operation",
                "per payment",
                "Lambda",
                "DynamoDB",
                "SES/SNS/EventBridge/SQS",
                "REST API",
                "HTTP API",
                "total (REST)",
                "total (HTTP)",
            ],
            body,
            align="lrrrrrrrr",
        ),
        "",
        f"Assumptions: a payer registers once per {PAYMENTS_PER_USER} payments and logs in (and refreshes once) "
        f"per {PAYMENTS_PER_LOGIN}; before each order the client lists the channels (the routing recommendation); "
        f"{EXPIRED_SHARE:.0%} of orders are never paid and are expired by the sweeper; a million payments a month "
        "share the daily report. Every Bearer call runs the "
        "authorizer (no authorizer cache, by design) and is billed with the operation. Lambda duration is the warm "
        "handler p50 of section 4 on this machine (the scheduled jobs': their run times in section 3, on the "
        "smaller table), which overstates an arm64 Lambda's CPU time and puts moto's "
        "in-process latency where DynamoDB's network round trip is; cold starts (billed since Lambda bills the "
        "init phase) are not included. Verification SMS are priced by destination country "
        "(https://aws.amazon.com/sns/sms-pricing/) and left out.",
    ]
    sweep = figures.get("sweep_per_order")
    if sweep:
        notes += [
            "",
            f"The sweep per expired order is priced from section 3 (a run over its due orders less a run over "
            f"none, per order): {sweep['requests']:g} DynamoDB requests, {sweep['read_units']:g} RRU and "
            f"{sweep['write_units']:g} WRU, the router's second UpdateItem included (an expiring order is older "
            "than its segment's last success); its other AWS requests from section 2, its duration from "
            "section 3. The sweeper's runs themselves (17 Queries each, whatever is due: the pending index's 16 "
            "and the refund reconciler's) are among the fixed costs, with their read units.",
        ]
    if figures["missing"]:
        notes += ["", "Not priced yet (their operations were not measured): " + ", ".join(figures["missing"]) + "."]
    notes += [
        "",
        "Fixed monthly costs, whatever the volume: "
        + "; ".join(f"{k}: ${v:.2f}" for k, v in figures["fixed"].items())
        + ". Secrets Manager reads are cached 300 s per container (a few thousand calls a month per warm container, "
        "cents).",
        "",
        "Prices:",
        "",
        *[f"- {name}: {value:.10g} — {source}" for name, (value, source) in PRICES.items()],
        "",
        "Reproduce (after the dynamo and warm sections):",
        "",
        command("PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only cost"),
    ]
    return "\n".join(notes)


def run(quick: bool) -> Section:
    figures = compute()
    return Section("cost", "5. Cost per million payments", report(figures), figures)

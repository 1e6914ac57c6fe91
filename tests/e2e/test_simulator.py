"""The transaction simulator against a local stack of its own (started once for this module): the
smoke scenario holds every invariant, and faults injected on purpose afterwards are caught, with
the CLI exiting non-zero.

The smoke run takes ~20-40 s on this machine (most of it argon2 at registration and login, and
the webhooks settling); `docs/simulator.md` has the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.launch import LocalStackProcess
from tests.e2e.conftest import start_local_stack
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 240  # seconds: a bound on a hung run, far above what smoke takes

# A tiny scenario whose outcome is certain (every Pay succeeds, every paid order is refunded in
# part, no webhook noise), so the faults below always find an order to break.
FAULT_SCENARIO = """
name = "fault-target"
[clock]
wall_seconds = 2
settle_seconds = 30
[traffic]
users = 1
orders_per_user = [2, 2]
currencies = { CNY = 1 }
amounts = { CNY = [1000, 5000] }
channels = { sandbox = 1 }
payer = { pay = 1 }
refunds = { partial = 1 }
[channels.sandbox]
success = 1.0
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    # not the session's shared stack: the run's report counters must only see the simulator's orders
    process = start_local_stack(tmp_path_factory.mktemp("simulator-stack"))
    yield process
    process.stop()


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "paycore"), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "bench.simulator", "--no-progress", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def test_the_smoke_scenario_holds_every_invariant(stack: LocalStackProcess, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    started = time.monotonic()
    run = simulate("--base-url", stack.api_url, "--scenario", "smoke", "--seed", "1", "--json", str(report))
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert "RESULT: every invariant holds" in run.stdout
    data = json.loads(report.read_text())
    assert data["ok"] is True
    assert data["violations"] == []
    assert data["plan_digest"] == simulate("--scenario", "smoke", "--seed", "1", "--plan-only").stdout.split()[
        5
    ].rstrip(",")
    # every order reached a final state, and the daily report counted what the run did
    assert "pending" not in data["outcomes"]
    assert sum(data["outcomes"].values()) == data["planned_orders"]
    assert data["stats_expected"] == data["stats_observed"]
    assert {row["endpoint"] for row in data["latency"]} >= {
        "POST /orders",
        "POST /sandbox/checkout/{payment_id}",
        "POST /orders/{order_id}/refunds",
    }
    assert time.monotonic() - started < RUN_TIMEOUT


@pytest.fixture(scope="module")
def saved_run(stack: LocalStackProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("fault-run")
    (workdir / "fault.toml").write_text(FAULT_SCENARIO)
    saved = workdir / "run.json"
    run = simulate("--base-url", stack.api_url, "--scenario", str(workdir / "fault.toml"), "--save", str(saved))
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    return saved


@pytest.fixture
def paycore_at(stack: LocalStackProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This test process's paycore pointed at the stack's moto server (to break things on purpose)."""
    from bench.simulator.backend import Target
    from paycore.aws import reset_clients
    from paycore.config import reset_settings

    for key, value in Target.open(stack.api_url).paycore_environment().items():
        monkeypatch.setenv(key, value)
    reset_settings()
    reset_clients()
    yield
    reset_settings()
    reset_clients()


def _orders(saved: Path) -> list[dict[str, Any]]:
    return [o for o in json.loads(saved.read_text())["observations"] if o["created"]]


def test_a_rechecked_untouched_run_still_holds(saved_run: Path) -> None:
    run = simulate("--recheck", str(saved_run))
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"


@pytest.mark.usefixtures("paycore_at")
def test_a_refund_callback_applied_twice_is_caught(saved_run: Path, tmp_path: Path) -> None:
    """Given a refund whose webhook was applied once, when the same refund's transaction runs again
    through a path with its dedupe removed (no event marker, no refund-status or order-status
    condition), then the checker reports it and the CLI exits 1."""
    from paycore.data import orders as store

    target = _orders(saved_run)[0]
    order = store.get_order(target["order_id"])
    assert order is not None
    assert order.status == "partially_refunded"
    refund = next(r for r in store.list_refunds(order.order_id) if r.status == "succeeded")
    now = time.time()
    history = store.HistoryItem(
        order.pk, store.history_sk(now, "refund_succeeded#replayed"), kind="refund_succeeded", at=int(now)
    )
    applied = store.apply_change(
        store.OrderChange(
            order=order,
            history=history,
            add_fields={"refunded_amount": int(refund.amount)},
            counters={"refunded_count": 1, "refunded_amount": int(refund.amount)},
            at=now,
        )
    )
    assert applied

    report = tmp_path / "report.json"
    run = simulate("--recheck", str(saved_run), "--json", str(report))
    assert run.returncode == 1, run.stdout
    broken = {v["invariant"] for v in json.loads(report.read_text())["violations"]}
    assert {"money_matches_provider", "stats_match"} <= broken
    assert "FAIL  money_matches_provider" in run.stdout


@pytest.mark.usefixtures("paycore_at")
def test_a_corrupted_provider_record_is_caught(saved_run: Path, tmp_path: Path) -> None:
    """Given a paid order, when the provider's record of it says it kept more money than it did,
    then the checker reports the disagreement and the CLI exits 1."""
    from paycore.data import sandbox as store

    target = _orders(saved_run)[1]
    payment_id = store.payment_id_for_order(target["order_id"])
    assert payment_id is not None
    store.SandboxPayment(store.payment_pk(payment_id), store.PAYMENT_SK).update(
        actions=[store.SandboxPayment.refundable.add(100)]
    )
    report = tmp_path / "report.json"
    run = simulate("--recheck", str(saved_run), "--json", str(report))
    assert run.returncode == 1, run.stdout
    violations = json.loads(report.read_text())["violations"]
    assert any(v["invariant"] == "money_matches_provider" and v["subject"] == target["key"] for v in violations)

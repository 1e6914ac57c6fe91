"""Off-policy evaluation from decision logs: IPS and SNIPS recover a policy's true value."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from paycore.routing.offline import (
    DECISION_KEY,
    OUTCOME_KEY,
    estimate,
    read_log,
    router_target,
    static_target,
    uniform_target,
)
from paycore.routing.policy import Arm, ArmState, RouterConfig, evaluate

pytestmark = pytest.mark.unit

RATES = {"a": 0.9, "b": 0.7, "c": 0.5}


def _log_lines(n: int, seed: int, probabilities: dict[str, float]) -> list[str]:
    """A logging policy that draws from ``probabilities``; outcomes drawn from RATES; JSON lines
    shaped like the service's (Powertools puts ``extra`` keys at the top level)."""
    rng = random.Random(seed)
    lines = []
    ids = list(probabilities)
    for i in range(n):
        chosen = rng.choices(ids, [probabilities[c] for c in ids])[0]
        decision = {
            "decision_id": f"order-{i}",
            "segment": "CNY#1e1",
            "amount": 1000,
            "currency": "CNY",
            "eligible": ids,
            "fees": {"a": 60, "b": 0, "c": 0},
            "state": {c: [0, 0, 0] for c in ids},
            "chosen": chosen,
            "propensity": probabilities[chosen],
            "policy": "logging",
        }
        lines.append(json.dumps({"level": "INFO", "message": "routing decision", DECISION_KEY: decision}))
        if i % 10 != 9:  # every tenth decision is still pending: no outcome yet
            paid = rng.random() < RATES[chosen]
            outcome = {"decision_id": f"order-{i}", "channel": chosen, "outcome": "paid" if paid else "failed"}
            lines.append("2026-11-20T10:00:00Z " + json.dumps({"message": "routing outcome", OUTCOME_KEY: outcome}))
    lines.append("not json at all")
    return lines


def test_ips_and_snips_recover_each_static_policy_from_uniform_logs() -> None:
    # Given 6,000 decisions logged by a uniform policy, When a static policy is evaluated offline,
    # Then both estimates are within 3 standard errors of its true success rate
    samples, pending = read_log(_log_lines(6000, seed=11, probabilities=dict.fromkeys(RATES, 1 / 3)))
    assert pending == 600
    assert len(samples) == 5400
    for channel, rate in RATES.items():
        result = estimate(samples, static_target(channel))
        assert abs(result.ips - rate) < 3 * result.ips_se
        assert abs(result.snips - rate) < 3 * result.snips_se
        assert result.effective_sample_size == pytest.approx(len(samples) / 3, rel=0.1)
    uniform = estimate(samples, uniform_target)
    assert uniform.ips == pytest.approx(uniform.logged_value)  # on-policy: every weight is 1
    assert uniform.effective_sample_size == pytest.approx(len(samples))


def test_a_skewed_logging_policy_is_corrected_by_the_propensities() -> None:
    # the logging policy mostly used the worst channel; its own average is far from a's value
    samples, _ = read_log(_log_lines(8000, seed=5, probabilities={"a": 0.1, "b": 0.2, "c": 0.7}))
    result = estimate(samples, static_target("a"))
    assert result.logged_value < 0.65
    assert abs(result.snips - RATES["a"]) < 3 * result.snips_se
    assert abs(result.ips - RATES["a"]) < 3 * result.ips_se


def test_net_value_reward_takes_the_fee_off() -> None:
    samples, _ = read_log(_log_lines(3000, seed=3, probabilities=dict.fromkeys(RATES, 1 / 3)))
    by_success = estimate(samples, static_target("a"), reward="success")
    by_value = estimate(samples, static_target("a"), reward="net_value")
    assert by_value.snips == pytest.approx(by_success.snips * (1 - 60 / 10_000))


def test_router_target_recomputes_the_logged_propensity() -> None:
    # Given a decision logged by the router, When the same configuration is the target, Then its
    # probability for the chosen channel is the logged propensity (weights of exactly 1)
    config = RouterConfig()
    # every memory logged: a recomputation chooses the same memory (here the 30-minute one, as
    # "b" has fallen in the last half hour) and another memory_z may choose another
    state = {"a": ArmState(50, 5, 0, ((200, 22), (800, 90))), "b": ArmState(20, 20, 0, ((190, 60), (780, 210)))}
    view = evaluate([Arm("a", 60, state["a"]), Arm("b", 0, state["b"])], config)
    chosen = view.choose(0.3)
    record = {
        "decision_id": "d1",
        "segment": "CNY#1e1",
        "amount": 1000,
        "currency": "CNY",
        "eligible": ["a", "b"],
        "fees": {"a": 60, "b": 0},
        "state": {c: s.as_list() for c, s in state.items()},
        "chosen": chosen.channel_id,
        "propensity": chosen.probability,
        "policy": view.version,
    }
    outcome = {"decision_id": "d1", "channel": chosen.channel_id, "outcome": "paid"}
    samples, _ = read_log([json.dumps({DECISION_KEY: record}), json.dumps({OUTCOME_KEY: outcome})])
    assert view.half_life == 1800.0
    same = router_target(config)(samples[0].decision)
    assert same[chosen.channel_id] == pytest.approx(chosen.probability, rel=1e-9)
    assert estimate(samples, router_target(config)).ips == pytest.approx(1.0)


def test_a_zero_propensity_or_no_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="no decision"):
        estimate([], uniform_target)
    lines = _log_lines(5, seed=1, probabilities={"a": 1.0, "b": 0.0, "c": 0.0})
    broken = [line.replace('"propensity": 1.0', '"propensity": 0.0') for line in lines]
    samples, _ = read_log(broken)
    with pytest.raises(ValueError, match="propensity 0"):
        estimate(samples, uniform_target)


def test_the_command_line_evaluator_reads_exported_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.routing.ips import main

    log = tmp_path / "export.log"
    log.write_text("\n".join(_log_lines(600, seed=2, probabilities=dict.fromkeys(RATES, 1 / 3))), encoding="utf-8")
    assert main([str(log), "--epsilon", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "540 decisions with an outcome, 60 pending; logged by: logging" in out
    assert "always a" in out
    assert "router dts3:h=1800,7200,28800:z=2.5:eps=0.05" in out
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n", encoding="utf-8")
    assert main([str(empty)]) == 1

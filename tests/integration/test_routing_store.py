"""The router's state in DynamoDB (moto, the template's table): the same arithmetic as the
in-memory store, one read per decision, one atomic update per outcome, rebases, and the service's
decision and outcome logs."""

from __future__ import annotations

import io
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from pynamodb.connection.base import Connection

from paycore.data import routing as store
from paycore.routing import service
from paycore.routing.decay import EPOCH_HALF_LIVES, epoch_for
from paycore.routing.offline import estimate, read_log, router_target
from paycore.routing.state import MemoryStateStore
from tests.conftest import AwsStack

pytestmark = pytest.mark.integration

HOUR = 3600.0
T0 = 1_764_000_000.0  # 2025-11-24, an arbitrary fixed moment
SEGMENT = "CNY#1e1"


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every DynamoDB operation PynamoDB sends, by name."""
    seen: Counter[str] = Counter()
    original = Connection._make_api_call

    def counting(self: Connection, operation_name: str, operation_kwargs: dict) -> dict:
        seen[operation_name] += 1
        return original(self, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", counting)
    return seen


MEMORIES = (1800.0, 7200.0, 28800.0)


@pytest.mark.parametrize("half_lives", [(HOUR,), MEMORIES])
def test_dynamodb_state_matches_the_in_memory_store(aws: AwsStack, half_lives: tuple[float, ...]) -> None:
    # Given the same 120 outcomes on three channels, When one goes to DynamoDB and one to memory,
    # Then the decayed counts of every memory and the failure runs read back agree
    rng = random.Random(3)
    memory = MemoryStateStore(*half_lives)
    t = T0
    for _ in range(120):
        t += rng.uniform(1, 120)
        channel = rng.choice(["a", "b", "c"])
        outcome = rng.choice(["paid", "paid", "paid", "failed", "expired"])
        created = t - rng.uniform(5, 900)  # outcomes arrive out of the order payments were created
        store.record_outcome(SEGMENT, channel, outcome, t, half_lives, created_at=created)
        memory.record(SEGMENT, channel, outcome == "paid", t, created_at=created)
    now = t + 600
    stored = store.read_states(SEGMENT, ["a", "b", "c", "d"], now)
    expected = memory.read(SEGMENT, ["a", "b", "c", "d"], now)
    assert set(stored) == set(expected) == {"a", "b", "c"}
    for channel, state in expected.items():
        assert stored[channel].levels == state.levels == len(half_lives)
        for j in range(len(half_lives)):
            assert stored[channel].counts(j) == pytest.approx(state.counts(j), rel=1e-6)
        assert stored[channel].failure_run == state.failure_run


def test_a_decision_reads_one_batch_of_the_eligible_keys(aws: AwsStack, requests: Counter[str]) -> None:
    for channel in ("a", "b", "c"):
        store.record_outcome(SEGMENT, channel, "paid", T0, HOUR)
    requests.clear()
    states = store.read_states(SEGMENT, ["a", "b", "c"], T0 + 1)
    assert len(states) == 3
    assert dict(requests) == {"BatchGetItem": 1}
    assert store.read_states(SEGMENT, [], T0) == {}


def test_an_outcome_is_one_update_and_totals_are_kept(aws: AwsStack, requests: Counter[str]) -> None:
    assert store.record_outcome(SEGMENT, "a", "paid", T0, HOUR) == 1
    assert store.record_outcome(SEGMENT, "a", "expired", T0 + 5, HOUR) == 1
    assert store.record_outcome(SEGMENT, "a", "failed", T0 + 9, HOUR) == 1
    assert dict(requests) == {"UpdateItem": 3}
    item = store.RouterStateItem.get(SEGMENT, "a")
    assert (item.paid, item.failed, item.expired, item.run) == (1, 1, 1, 2)
    assert item.expire_at == int(T0 + 9) + store.STATE_TTL_SECONDS
    assert item.epoch == epoch_for(T0, HOUR)


def test_every_memory_is_added_in_the_same_single_update(aws: AwsStack, requests: Counter[str]) -> None:
    # three memories: still one UpdateItem per outcome (three ADDs in it), one BatchGetItem per read
    assert store.record_outcome(SEGMENT, "a", "paid", T0, MEMORIES) == 1
    assert store.record_outcome(SEGMENT, "a", "failed", T0 + 7200, MEMORIES) == 1
    assert dict(requests) == {"UpdateItem": 2}
    item = store.RouterStateItem.get(SEGMENT, "a")
    assert (item.half_life, item.half_lives, item.epoch) == (1800, "1800,7200,28800", epoch_for(T0, 1800.0))
    requests.clear()
    state = store.read_states(SEGMENT, ["a"], T0 + 7200)["a"]
    assert dict(requests) == {"BatchGetItem": 1}
    assert state.counts(0) == pytest.approx((2**-4, 1.0), rel=1e-6)
    assert state.counts(1) == pytest.approx((0.5, 1.0), rel=1e-6)
    assert state.counts(2) == pytest.approx((2**-0.25, 1.0), rel=1e-6)


def test_an_item_of_one_half_life_becomes_several_at_its_next_outcome(aws: AwsStack, requests: Counter[str]) -> None:
    # Given an item written by dts2 (one half-life of 2 h, no half_lives), When the first outcome
    # with three memories arrives, Then the item is read and rebased once, and every memory starts
    # from the old counts of that moment
    old_epoch = epoch_for(T0, 2 * HOUR)
    aws.client("dynamodb").put_item(
        TableName=aws.name("RouterStateTable"),
        Item={
            "pk": {"S": SEGMENT},
            "sk": {"S": "a"},
            "epoch": {"N": str(old_epoch)},
            "half_life": {"N": "7200"},
            "s": {"N": repr(2 ** ((T0 - old_epoch) / 7200))},  # one success at T0
            "f": {"N": "0"},
            "version": {"N": "1"},
        },
    )
    assert store.record_outcome(SEGMENT, "a", "failed", T0 + 2 * HOUR, MEMORIES) == 5
    assert dict(requests) == {"UpdateItem": 4, "GetItem": 1}
    state = store.read_states(SEGMENT, ["a"], T0 + 2 * HOUR)["a"]
    assert [state.counts(j) for j in range(3)] == [pytest.approx((0.5, 1.0), rel=1e-6)] * 3
    assert store.record_outcome(SEGMENT, "a", "paid", T0 + 2 * HOUR + 1, MEMORIES) == 1


def test_the_failure_run_counts_in_creation_order_with_conditional_updates(
    aws: AwsStack, requests: Counter[str]
) -> None:
    # Given a channel that fails after its last success, When a success of a payment made before
    # the failure arrives late, Then the run stands: the update's run part is conditional, fails,
    # and a second UpdateItem adds the success to the counts alone (no read)
    assert store.record_outcome(SEGMENT, "a", "paid", T0 + 100, HOUR, created_at=T0 + 90) == 1
    assert store.record_outcome(SEGMENT, "a", "failed", T0 + 205, HOUR, created_at=T0 + 200) == 1
    assert store.record_outcome(SEGMENT, "a", "failed", T0 + 206, HOUR, created_at=T0 + 201) == 1
    assert store.record_outcome(SEGMENT, "a", "paid", T0 + 260, HOUR, created_at=T0 + 150) == 2
    assert store.record_outcome(SEGMENT, "a", "expired", T0 + 980, HOUR, created_at=T0 + 80) == 2
    assert dict(requests) == {"UpdateItem": 7}
    item = store.RouterStateItem.get(SEGMENT, "a")
    assert (item.run, item.run_from, item.ok_at) == (2, T0 + 200, T0 + 90)
    assert (item.paid, item.failed, item.expired) == (2, 2, 1)  # every outcome counted once
    state = store.read_states(SEGMENT, ["a"], T0 + 980)["a"]
    assert state.failure_run == 2
    # a success of a payment made after the failure ends the run
    assert store.record_outcome(SEGMENT, "a", "paid", T0 + 300, HOUR, created_at=T0 + 220) == 1
    item = store.RouterStateItem.get(SEGMENT, "a")
    assert (item.run, item.run_from, item.ok_at) == (0, None, T0 + 220)


def test_a_new_epoch_rebases_the_item_once(aws: AwsStack, requests: Counter[str]) -> None:
    half_life = 60.0
    store.record_outcome(SEGMENT, "a", "paid", T0, half_life)
    later = epoch_for(T0, half_life) + EPOCH_HALF_LIVES * half_life + 30  # in the next epoch
    requests.clear()
    # the conditional ADD fails (with and without its failure-run part), the item is read, rebased
    # (conditional on its version), ADD again
    assert store.record_outcome(SEGMENT, "a", "paid", later, half_life) == 5
    assert dict(requests) == {"UpdateItem": 4, "GetItem": 1}
    assert store.record_outcome(SEGMENT, "a", "paid", later + 1, half_life) == 1
    state = store.read_states(SEGMENT, ["a"], later + 1)["a"]
    expected = 2 ** (-(later + 1 - T0) / half_life) + 2 ** (-1 / half_life) + 1
    assert state.successes == pytest.approx(expected, rel=1e-6)
    # an outcome from before the rebase arrives late: it is weighed against the new epoch (and,
    # created before the last success, leaves the failure run alone: one more UpdateItem)
    assert store.record_outcome(SEGMENT, "a", "failed", later - 40, half_life) == 5
    late = store.read_states(SEGMENT, ["a"], later + 1)["a"]
    assert late.failures == pytest.approx(2 ** (-41 / half_life), rel=1e-6)


def test_a_new_epoch_rebases_every_memory_together(aws: AwsStack, requests: Counter[str]) -> None:
    lives = (60.0, 240.0)
    store.record_outcome(SEGMENT, "a", "paid", T0, lives)
    later = epoch_for(T0, 60.0) + EPOCH_HALF_LIVES * 60.0 + 30  # the shortest half-life's next epoch
    requests.clear()
    assert store.record_outcome(SEGMENT, "a", "paid", later, lives) == 5
    assert dict(requests) == {"UpdateItem": 4, "GetItem": 1}
    assert store.RouterStateItem.get(SEGMENT, "a").epoch == epoch_for(later, 60.0)
    state = store.read_states(SEGMENT, ["a"], later)["a"]
    for j, h in enumerate(lives):
        assert state.counts(j)[0] == pytest.approx(2 ** (-(later - T0) / h) + 1, rel=1e-6)


def test_a_new_half_life_converts_the_counts_of_the_moment(aws: AwsStack) -> None:
    store.record_outcome(SEGMENT, "a", "paid", T0, HOUR)
    store.record_outcome(SEGMENT, "a", "paid", T0 + HOUR, 2 * HOUR)  # a deployment changed it
    item = store.RouterStateItem.get(SEGMENT, "a")
    assert item.half_life == 2 * HOUR
    state = store.read_states(SEGMENT, ["a"], T0 + 3 * HOUR)["a"]
    assert state.successes == pytest.approx((0.5 + 1.0) * 0.5, rel=1e-6)  # then halving every 2 h


def test_outcomes_commute_so_concurrent_writers_need_no_read(aws: AwsStack, requests: Counter[str]) -> None:
    # Given the same 60 outcomes applied in two different orders (as concurrent callbacks would
    # land), Then both items' counts end identical, and no write read anything first: each outcome
    # is one UpdateItem whose ADDs DynamoDB applies atomically to the item, or two when it arrived
    # out of order (the failure-run part's condition fails; the second adds the counts alone)
    rng = random.Random(9)
    outcomes = [(T0 + rng.uniform(0, 600), rng.choice(["paid", "paid", "failed"])) for _ in range(60)]
    shuffled = outcomes[:]
    rng.shuffle(shuffled)
    for at, outcome in outcomes:
        store.record_outcome("CNY#1e1", "hot", outcome, at, HOUR)
    for at, outcome in shuffled:
        store.record_outcome("CNY#1e2", "hot", outcome, at, HOUR)
    assert set(requests) == {"UpdateItem"}
    assert 120 <= requests["UpdateItem"] <= 240
    one = store.RouterStateItem.get("CNY#1e1", "hot")
    two = store.RouterStateItem.get("CNY#1e2", "hot")
    assert (one.paid, one.failed, one.version) == (two.paid, two.failed, two.version)
    assert one.s == pytest.approx(two.s, rel=1e-12)
    assert one.f == pytest.approx(two.f, rel=1e-12)


def test_concurrent_writers_lose_nothing(aws: AwsStack) -> None:
    # 8 threads x 10 outcomes on one hot item at once (moto serialises each request, as DynamoDB
    # applies each UpdateItem atomically): every ADD lands, with no retry and no read
    def writer(k: int) -> None:
        for i in range(10):
            store.record_outcome(SEGMENT, "hot", "paid", T0 + k + i / 100, HOUR)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    item = store.RouterStateItem.get(SEGMENT, "hot")
    assert (item.paid, item.version) == (80, 80)
    now = T0 + 20
    expected = sum(2 ** (-(now - (T0 + k + i / 100)) / HOUR) for k in range(8) for i in range(10))
    assert store.read_states(SEGMENT, ["hot"], now)["hot"].successes == pytest.approx(expected, rel=1e-6)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """What the service logs, as the JSON lines (redacting formatter included) that reach CloudWatch."""
    from paycore.observability import logger

    handler = logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    handler.setStream(previous)  # type: ignore[attr-defined]


def test_decisions_and_outcomes_are_logged_for_offline_evaluation(
    seeded_channels: AwsStack, log_stream: io.StringIO
) -> None:
    # Given some history, When the service routes 30 orders and learns their outcomes, Then the
    # log holds each decision with its propensity and each outcome with the decision id, and the
    # router's own configuration, evaluated offline from that log, has importance weights of 1
    from paycore import channels

    for i in range(20):
        service.observe(
            order_id=f"seed-{i}", channel_id="sandbox", amount=1000, currency="CNY", outcome="paid", at=T0 + i
        )
    available = [c for c in channels.eligible_channels(1000, "CNY") if c.available]
    for i in range(30):
        routed = service.route(available, 1000, "CNY", decision_id=f"order-{i}", now=T0 + 100 + i)
        assert routed.segment == SEGMENT
        assert 0 < routed.propensity <= 1
        service.observe(
            order_id=f"order-{i}",
            channel_id=routed.channel_id,
            amount=1000,
            currency="CNY",
            outcome="paid" if i % 4 else "expired",
            at=T0 + 200 + i,
        )
    assert (
        service.observe(order_id="x", channel_id="sandbox", amount=1000, currency="CNY", outcome="cancelled", at=T0)
        is False
    )
    lines = log_stream.getvalue().splitlines()
    decisions = [json.loads(line)["routing_decision"] for line in lines if "routing_decision" in line]
    assert len(decisions) == 30
    first = decisions[0]
    assert first["eligible"] == ["sandbox", "sandbox_slow"]
    assert first["propensity"] == pytest.approx(first["probabilities"][first["chosen"]], abs=1e-6)
    assert first["state"]["sandbox"][0] > 0  # the 20 seeded successes, decayed
    assert first["policy"] == service.policy_config().version
    samples, pending = read_log(lines)
    assert (len(samples), pending) == (30, 0)
    same = estimate(samples, router_target(service.policy_config()))
    assert same.effective_sample_size == pytest.approx(30, rel=1e-3)


def test_a_failed_update_is_counted_and_never_raised(aws: AwsStack, log_stream: io.StringIO) -> None:
    aws.client("dynamodb").delete_table(TableName=aws.name("RouterStateTable"))
    recorded = service.observe(order_id="o1", channel_id="sandbox", amount=1000, currency="CNY", outcome="paid", at=T0)
    assert recorded is False
    from paycore.observability import metrics

    assert "router outcome not recorded" in log_stream.getvalue()
    assert "RouterUpdateFailed" in metrics.metric_set  # flushed as EMF by the handler's log_metrics
    metrics.clear_metrics()

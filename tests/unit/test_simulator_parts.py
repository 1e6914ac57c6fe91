"""The simulator's pure parts: scenario files, the seeded plan, the client's request signature,
the mapping of channel behaviour onto sandbox knobs, and the report's percentiles."""

from __future__ import annotations

import math

import pytest

from bench.simulator import plan, scenario
from bench.simulator.client import sign, signing_key
from bench.simulator.ledger import channel_knobs
from bench.simulator.report import percentile

pytestmark = pytest.mark.unit

MINIMAL = {
    "traffic": {
        "currencies": {"CNY": 1},
        "amounts": {"CNY": [100, 1000]},
        "channels": {"auto": 1},
        "payer": {"pay": 1},
    }
}


@pytest.mark.parametrize("name", ["smoke", "busy-day", "channel-outage", "webhook-chaos"])
def test_every_shipped_scenario_loads(name: str) -> None:
    loaded = scenario.load(name)
    assert loaded.name == name
    assert loaded.traffic.users >= 1
    assert name in scenario.shipped()


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    smoke = scenario.load("smoke")
    first, again, other = plan.build(smoke, 7), plan.build(smoke, 7), plan.build(smoke, 8)
    assert first == again
    assert first.digest() == again.digest()
    assert first.digest() != other.digest()
    # more users add to the plan without changing what the first ones do
    assert plan.build(smoke, 7, users=2).users == first.users[:2]


def test_planned_refunds_never_exceed_the_amount_and_partial_ones_leave_some() -> None:
    import random

    rng = random.Random(3)
    for amount in (1, 2, 3, 10, 999, 123_456):
        for _ in range(200):
            partial = plan.refund_amounts(rng, "partial", amount)
            full = plan.refund_amounts(rng, "full", amount)
            assert all(a > 0 for a in partial + full)
            assert sum(partial) < amount or partial == ()
            assert sum(full) == amount
    assert plan.refund_amounts(rng, "partial", 1) == ()


def test_a_channel_draw_falls_on_the_channels_offered() -> None:
    weights = {"auto": 1.0, "sandbox": 1.0, "sandbox_slow": 2.0}
    assert plan.choose_channel(0.1, weights, ["sandbox", "sandbox_slow"]) == "auto"
    assert plan.choose_channel(0.3, weights, ["sandbox", "sandbox_slow"]) == "sandbox"
    assert plan.choose_channel(0.9, weights, ["sandbox", "sandbox_slow"]) == "sandbox_slow"
    # sandbox_slow does not take JPY: its share goes to what is offered
    assert plan.choose_channel(0.9, weights, ["sandbox"]) == "sandbox"
    assert plan.choose_channel(0.5, {"sandbox_slow": 1.0}, []) == "auto"


def test_the_client_signs_as_the_contract_s_worked_example() -> None:
    """docs/orders.md, "X-Signature": the same numbers the server's unit test holds."""
    body = (
        b'{"order_id":"0b7f9c1e-2d4a-4f6b-8c3e-5a1d9e7f2b60","amount":1000,"currency":"CNY",'
        b'"channel":"auto","subject":"Coffee beans"}'
    )
    key = signing_key("c2lnbmluZy1rZXktb2YtdGhpcy1zZXNzaW9uLTMyYnk")
    assert key == b"signing-key-of-this-session-32by"
    assert sign(key, 1795635000, "Xk4vQ2mB9sLp7RwZ", "POST", "/orders", body) == (
        "t=1795635000,n=Xk4vQ2mB9sLp7RwZ,v1=b95dbd9335b37713efe60e4675db70f972ae3c2bac08db1411a5863f75acc843"
    )


def test_rate_shapes_follow_simulated_time() -> None:
    wave = scenario.rate({"shape": "wave", "mean": 0.9, "amplitude": 0.05, "period": "24h"}, "w")
    assert wave(0) == pytest.approx(0.9)
    assert wave(6 * 3600) == pytest.approx(0.95)
    ramp = scenario.rate({"shape": "ramp", "start": 0.9, "end": 0.5, "from": "1h", "to": "3h"}, "r")
    assert (ramp(0), ramp(2 * 3600), ramp(5 * 3600)) == pytest.approx((0.9, 0.7, 0.5))
    outage = scenario.rate({"shape": "outage", "base": 0.95, "start": "4h", "end": "5h", "during": 0.02}, "o")
    assert (outage(3.9 * 3600), outage(4.5 * 3600), outage(5 * 3600)) == (0.95, 0.02, 0.95)
    both = scenario.rate({"shape": "plus", "parts": [0.5, {"shape": "constant", "p": 0.7}]}, "p")
    assert both(0) == 1.0  # clipped to a probability


def test_channel_behaviour_becomes_per_channel_sandbox_knobs() -> None:
    loaded = scenario.load("channel-outage")
    sandbox = loaded.channels["sandbox"]
    assert channel_knobs(sandbox, 3600) == {"decline_rate_bps": 600, "payment_error_rate_bps": 0, "latency_ms": 0}
    assert channel_knobs(sandbox, 5 * 3600) == {
        "decline_rate_bps": 9800,
        "payment_error_rate_bps": 10_000,
        "latency_ms": 0,
    }
    # 60 s of wall time play 12 simulated hours: the outage runs from 20 s to 40 s into the traffic
    assert loaded.simulated_time(20.0) == pytest.approx(4 * 3600)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"traffic": {**MINIMAL["traffic"], "payer": {"pay": 1, "dance": 1}}}, "unknown key 'dance'"),
        ({"traffic": {**MINIMAL["traffic"], "amounts": {}}}, "no amount range for CNY"),
        ({"traffic": {**MINIMAL["traffic"], "amounts": {"CNY": [10, 1]}}}, "low <= high"),
        ({"channels": {"x": {"success": 1.5}}}, "not a probability"),
        ({"channels": {"x": {"success": {"shape": "zigzag"}}}}, "unknown shape 'zigzag'"),
        ({"channels": {"x": {"down": [["2h", "1h"]]}}}, "end must be after start"),
        ({"webhooks": {"duplicate_rate_bps": 20_000}}, "at most 10000"),
        ({"webhooks": {"volume": 3}}, "unknown knob 'volume'"),
        ({"faults": {"replay_create": 2}}, "not a probability"),
        ({"expiry": {"expires_in": 30}}, "60 to 86400"),
        ({"expiry": {"mode": "teleport"}}, "expiry.mode"),
        ({"clock": {"wall_seconds": "soon"}}, "not a duration"),
        ({"colour": "blue"}, "unknown keys ['colour']"),
    ],
)
def test_a_scenario_that_does_not_say_what_it_means_is_refused(patch: dict[str, object], message: str) -> None:
    with pytest.raises(scenario.ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        scenario.parse({**MINIMAL, **patch})


def test_durations() -> None:
    assert [scenario.seconds(v, "d") for v in (90, "90s", "15m", "4h", "1.5d", "250ms")] == [
        90.0,
        90.0,
        900.0,
        14_400.0,
        129_600.0,
        0.25,
    ]


def test_nearest_rank_percentiles() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert (percentile(samples, 50), percentile(samples, 95), percentile(samples, 99)) == (50.0, 95.0, 99.0)
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) == 0.0
    assert math.isclose(percentile([0.2, 0.1], 50), 0.1)


class _Answer:
    def __init__(self, status: int, body: dict[str, object]):
        self.status_code = status
        self._body = body
        self.headers: dict[str, str] = {}

    def json(self) -> dict[str, object]:
        return self._body


def test_an_expired_access_token_is_refreshed_once_and_the_request_signed_again() -> None:
    """Given two connections of one user whose access token has expired, when both call the API,
    then one refresh rotates the tokens and each request is sent again with the new token."""
    from bench.simulator.client import Api, Recorder, Tokens

    sent: list[tuple[str, dict[str, str]]] = []
    refreshed = {"access_token": "new", "signing_key": "bmV3LWtleQ", "refresh_token": "r2"}

    def transport(method: str, url: str, **kwargs: object) -> _Answer:
        headers = dict(kwargs["headers"])  # type: ignore[call-overload]
        sent.append((url, headers))
        if url.endswith("/auth/refresh"):
            return _Answer(200, refreshed)
        if headers.get("Authorization") == "Bearer old":
            return _Answer(401, {"error": {"code": "unauthorized", "message": "expired"}})
        return _Answer(201, {})

    tokens = Tokens(bearer="old", key=b"old-key", refresh_token="r1")
    first = Api("http://127.0.0.1:9", Recorder(), tokens=tokens)
    second = first.twin()
    for api in (first, second):
        api.session.request = transport  # type: ignore[method-assign]
    assert first.call("POST", "/orders", "POST /orders", payload={}, signed=True).status_code == 201  # type: ignore[union-attr]
    assert second.call("GET", "/orders/x", "GET /orders/{order_id}").status_code == 201  # type: ignore[union-attr]

    refreshes = [h for url, h in sent if url.endswith("/auth/refresh")]
    assert len(refreshes) == 1
    assert (tokens.bearer, tokens.key, tokens.refresh_token) == ("new", b"new-key", "r2")
    retried = [h for url, h in sent if url.endswith("/orders")]
    assert [h["Authorization"] for h in retried] == ["Bearer old", "Bearer new"]
    assert retried[0]["X-Signature"] != retried[1]["X-Signature"]

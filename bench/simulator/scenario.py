"""Scenario files (``bench/simulator/scenarios/<name>.toml``): the traffic mix, each channel's
behaviour over time, the sandbox's webhook knobs, injected client faults and how orders expire.

TOML because Python 3.11+ reads it with the standard library (``tomllib``), so a scenario needs no
extra dependency and no CloudFormation-tag-aware YAML loader. The format is documented in
docs/simulator.md; :func:`load` checks every field and names the one that is wrong.

Time in a scenario is *simulated* time: ``[clock] simulated`` (e.g. ``"24h"``) is squeezed into
``wall_seconds`` of real time, and every time in a channel's ``success`` shape (``period``,
``start``, ...) is simulated time, so a "busy day" with a lunchtime peak and an evening outage runs
in two minutes. The success-rate shapes are the routing evaluation's (``bench/routing``:
constant, wave, ramp, plus, outage), written as TOML tables.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
RateFn = Callable[[float], float]  # simulated seconds since the start -> probability that Pay succeeds

PAYER_ACTIONS = ("pay", "decline", "abandon", "cancel")
REFUND_PLANS = ("none", "partial", "full")
EXPIRY_MODES = ("advance", "wait")
# The sandbox's own knobs that apply to every channel (docs/orders.md, "Behaviour knobs").
WEBHOOK_KNOBS = (
    "delivery_delay_seconds",
    "duplicate_rate_bps",
    "out_of_order_rate_bps",
    "out_of_order_delay_seconds",
    "late_payment_grace_seconds",
    "refund_failure_rate_bps",
)
CLIENT_FAULTS = ("replay_create", "concurrent_create", "replay_refund", "concurrent_refund", "cancel_after_pay")


class ScenarioError(ValueError):
    """A scenario file that does not say what it means."""


# ---------------------------------------------------------------------- durations and shapes


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def seconds(value: Any, where: str) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"4h"``, ``"1.5d"`` → seconds."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: {value!r} is not a duration")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ScenarioError(f"{where}: {value!r} is not a duration (like 90, '90s', '15m', '4h')")
    return float(match.group(1)) * _UNIT[match.group(2)]


def _clip(p: float) -> float:
    return min(1.0, max(0.0, p))


def _probability(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ScenarioError(f"{where}: {value!r} is not a probability between 0 and 1")
    return float(value)


def rate(spec: Any, where: str) -> RateFn:
    """A success-rate shape: a number (constant), or a table with ``shape`` and its parameters."""
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        p = _probability(spec, where)
        return lambda t: p
    if not isinstance(spec, Mapping) or "shape" not in spec:
        raise ScenarioError(f"{where}: a success rate is a probability or a table with a 'shape'")
    shape = spec["shape"]
    known = {
        "constant": {"shape", "p"},
        "wave": {"shape", "mean", "amplitude", "period", "phase"},
        "ramp": {"shape", "start", "end", "from", "to"},
        "outage": {"shape", "base", "start", "end", "during"},
        "plus": {"shape", "parts"},
    }
    if shape not in known:
        raise ScenarioError(f"{where}: unknown shape {shape!r} (one of {', '.join(known)})")
    extra = set(spec) - known[shape]
    if extra:
        raise ScenarioError(f"{where}: {shape} does not take {sorted(extra)}")
    try:
        if shape == "constant":
            p = _probability(spec["p"], f"{where}.p")
            return lambda t: p
        if shape == "wave":
            mean = float(spec["mean"])
            amplitude = float(spec["amplitude"])
            period = seconds(spec["period"], f"{where}.period")
            phase = float(spec.get("phase", 0.0))
            return lambda t: _clip(mean + amplitude * math.sin(2.0 * math.pi * t / period + phase))
        if shape == "ramp":
            start, end = _probability(spec["start"], f"{where}.start"), _probability(spec["end"], f"{where}.end")
            t0, t1 = seconds(spec["from"], f"{where}.from"), seconds(spec["to"], f"{where}.to")
            if t1 <= t0:
                raise ScenarioError(f"{where}: 'to' must be after 'from'")
            return lambda t: start if t <= t0 else end if t >= t1 else start + (end - start) * (t - t0) / (t1 - t0)
        if shape == "outage":
            base = rate(spec["base"], f"{where}.base")
            begin = seconds(spec["start"], f"{where}.start")
            stop = seconds(spec["end"], f"{where}.end") if "end" in spec else math.inf
            during = _probability(spec.get("during", 0.0), f"{where}.during")
            return lambda t: during if begin <= t < stop else base(t)
        parts = [rate(part, f"{where}.parts[{i}]") for i, part in enumerate(spec["parts"])]
        return lambda t: _clip(sum(part(t) for part in parts))
    except KeyError as exc:
        raise ScenarioError(f"{where}: {shape} needs {exc.args[0]!r}") from exc


# ---------------------------------------------------------------------- the scenario


@dataclass(frozen=True)
class Window:
    """A span of simulated time, ``[start, end)`` in seconds."""

    start: float
    end: float

    def __contains__(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class ChannelBehaviour:
    """One channel at the sandbox provider: how often Pay succeeds over time, when the provider
    refuses to create payments (outages), and how slow its API is."""

    name: str
    success: RateFn
    down: tuple[Window, ...] = ()
    latency_ms: int = 0

    def success_at(self, t: float) -> float:
        return self.success(t)

    def is_down(self, t: float) -> bool:
        return any(t in window for window in self.down)


@dataclass(frozen=True)
class Traffic:
    users: int
    orders_per_user: tuple[int, int]
    currencies: Mapping[str, float]
    amounts: Mapping[str, tuple[int, int]]
    channels: Mapping[str, float]
    payer: Mapping[str, float]
    refunds: Mapping[str, float]
    think_seconds: tuple[float, float]  # a payer's pause between seeing the QR code and acting


@dataclass(frozen=True)
class Expiry:
    mode: str  # advance: sweep with the clock moved past every expiry; wait: short expiries, real sweeps
    expires_in: int | None  # seconds sent with each order (None: the stack's default)
    sweep_every_seconds: float | None  # real sweeps (POST /_local/schedules/sweeper) during the traffic


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    traffic: Traffic
    simulated_seconds: float
    wall_seconds: float
    channels: Mapping[str, ChannelBehaviour]
    webhooks: Mapping[str, int]
    faults: Mapping[str, float]
    expiry: Expiry
    settle_seconds: float  # how long to wait for webhooks to settle before checking
    source: str = field(default="", compare=False)

    def simulated_time(self, wall_elapsed: float) -> float:
        return wall_elapsed * self.simulated_seconds / self.wall_seconds


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where}.{key} must be a table")
    return value


def _weights(data: Mapping[str, Any], where: str, allowed: tuple[str, ...] | None = None) -> dict[str, float]:
    if not data:
        raise ScenarioError(f"{where} needs at least one weight")
    out = {}
    for key, value in data.items():
        if allowed is not None and key not in allowed:
            raise ScenarioError(f"{where}: unknown key {key!r} (one of {', '.join(allowed)})")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ScenarioError(f"{where}.{key}: a weight is a non-negative number")
        out[str(key)] = float(value)
    if sum(out.values()) <= 0:
        raise ScenarioError(f"{where}: the weights add up to nothing")
    return out


def _int_range(value: Any, where: str, minimum: int = 0) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not minimum <= value[0] <= value[1]
    ):
        raise ScenarioError(f"{where}: expected [low, high] integers with {minimum} <= low <= high")
    return int(value[0]), int(value[1])


def _known(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = set(data) - allowed
    if extra:
        raise ScenarioError(f"{where}: unknown keys {sorted(extra)}")


def parse(data: Mapping[str, Any], source: str = "<memory>") -> Scenario:
    _known(data, {"name", "description", "clock", "traffic", "channels", "webhooks", "faults", "expiry"}, "scenario")
    clock = _table(data, "clock", "scenario")
    _known(clock, {"simulated", "wall_seconds", "settle_seconds"}, "clock")
    wall = seconds(clock.get("wall_seconds", 10), "clock.wall_seconds")
    simulated = seconds(clock.get("simulated", wall), "clock.simulated")
    if wall <= 0 or simulated <= 0:
        raise ScenarioError("clock: durations must be positive")

    t = _table(data, "traffic", "scenario")
    _known(
        t,
        {"users", "orders_per_user", "currencies", "amounts", "channels", "payer", "refunds", "think_seconds"},
        "traffic",
    )
    currencies = _weights(_table(t, "currencies", "traffic"), "traffic.currencies")
    amounts_table = _table(t, "amounts", "traffic")
    amounts = {}
    for currency in currencies:
        if currency not in amounts_table:
            raise ScenarioError(f"traffic.amounts: no amount range for {currency}")
        amounts[currency] = _int_range(amounts_table[currency], f"traffic.amounts.{currency}", minimum=1)
    think = t.get("think_seconds", [0.0, 0.0])
    if not (isinstance(think, list) and len(think) == 2 and 0 <= think[0] <= think[1]):
        raise ScenarioError("traffic.think_seconds: expected [low, high] seconds")
    users = t.get("users", 1)
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise ScenarioError("traffic.users: a positive integer")
    traffic = Traffic(
        users=users,
        orders_per_user=_int_range(t.get("orders_per_user", [1, 1]), "traffic.orders_per_user", minimum=1),
        currencies=currencies,
        amounts=amounts,
        channels=_weights(_table(t, "channels", "traffic"), "traffic.channels"),
        payer=_weights(_table(t, "payer", "traffic"), "traffic.payer", PAYER_ACTIONS),
        refunds=_weights(_table(t, "refunds", "traffic") or {"none": 1}, "traffic.refunds", REFUND_PLANS),
        think_seconds=(float(think[0]), float(think[1])),
    )

    channels = {}
    for name, spec in _table(data, "channels", "scenario").items():
        where = f"channels.{name}"
        if not isinstance(spec, Mapping):
            raise ScenarioError(f"{where} must be a table")
        _known(spec, {"success", "down", "latency_ms"}, where)
        down = []
        for i, window in enumerate(spec.get("down", [])):
            if not isinstance(window, list) or len(window) != 2:
                raise ScenarioError(f"{where}.down[{i}]: expected [start, end] in simulated time")
            start, end = seconds(window[0], f"{where}.down[{i}]"), seconds(window[1], f"{where}.down[{i}]")
            if end <= start:
                raise ScenarioError(f"{where}.down[{i}]: end must be after start")
            down.append(Window(start, end))
        latency = spec.get("latency_ms", 0)
        if isinstance(latency, bool) or not isinstance(latency, int) or not 0 <= latency <= 5000:
            raise ScenarioError(f"{where}.latency_ms: an integer from 0 to 5000")
        channels[name] = ChannelBehaviour(
            name=name, success=rate(spec.get("success", 1.0), f"{where}.success"), down=tuple(down), latency_ms=latency
        )

    webhooks = {}
    for key, value in _table(data, "webhooks", "scenario").items():
        if key not in WEBHOOK_KNOBS:
            raise ScenarioError(f"webhooks: unknown knob {key!r} (one of {', '.join(WEBHOOK_KNOBS)})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ScenarioError(f"webhooks.{key}: a non-negative integer")
        if key.endswith("_bps") and value > 10_000:
            raise ScenarioError(f"webhooks.{key}: basis points, at most 10000")
        webhooks[key] = value

    faults = {}
    for key, value in _table(data, "faults", "scenario").items():
        if key not in CLIENT_FAULTS:
            raise ScenarioError(f"faults: unknown fault {key!r} (one of {', '.join(CLIENT_FAULTS)})")
        faults[key] = _probability(value, f"faults.{key}")

    e = _table(data, "expiry", "scenario")
    _known(e, {"mode", "expires_in", "sweep_every"}, "expiry")
    mode = e.get("mode", "advance")
    if mode not in EXPIRY_MODES:
        raise ScenarioError(f"expiry.mode: one of {', '.join(EXPIRY_MODES)}")
    expires_in = e.get("expires_in")
    if expires_in is not None:
        expires_in = int(seconds(expires_in, "expiry.expires_in"))
        if not 60 <= expires_in <= 86_400:
            raise ScenarioError("expiry.expires_in: the API accepts 60 to 86400 seconds")
    sweep_every = seconds(e["sweep_every"], "expiry.sweep_every") if "sweep_every" in e else None

    return Scenario(
        name=str(data.get("name") or Path(source).stem),
        description=str(data.get("description", "")),
        traffic=traffic,
        simulated_seconds=simulated,
        wall_seconds=wall,
        channels=channels,
        webhooks=webhooks,
        faults=faults,
        expiry=Expiry(mode=mode, expires_in=expires_in, sweep_every_seconds=sweep_every),
        settle_seconds=seconds(clock.get("settle_seconds", 60), "clock.settle_seconds"),
        source=source,
    )


def path_of(name_or_path: str) -> Path:
    """A shipped scenario's name (``smoke``) or a path to a file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        return candidate
    return SCENARIOS_DIR / f"{name_or_path}.toml"


def load(name_or_path: str) -> Scenario:
    path = path_of(name_or_path)
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in SCENARIOS_DIR.glob("*.toml")))
        raise ScenarioError(f"no scenario {name_or_path!r} (shipped: {shipped})")
    with path.open("rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{path}: {exc}") from exc
    return parse(data, str(path))


def shipped() -> list[str]:
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.toml"))

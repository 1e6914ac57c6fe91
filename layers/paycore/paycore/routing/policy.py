"""The routing policy: discounted Thompson sampling with an exploration floor and collapse detection.

Pure logic (no AWS, no I/O): given what the router knows about each eligible channel of a segment,
:func:`evaluate` returns the probability with which each channel is chosen now, and
:meth:`PolicyView.choose` picks one from a uniform number. docs/routing.md explains the choices.

The policy, for the eligible channels ``E`` (currency, limits and ``available`` already applied) of
one segment, ``K = |E|``:

1. **Posteriors.** Channel ``i`` has decayed counts ``S_i`` and ``F_i`` (:mod:`paycore.routing.decay`)
   at each of a few half-lives (*memories*, shortest first: 30 minutes, 2 and 8 hours), and the
   posterior ``Beta(a0 + k S_i, b0 + k F_i)`` on its success rate ``theta_i`` from one of them: the
   longest memory whose estimate agrees with every shorter one in every channel of the segment
   (:func:`segment_memory`, Lepski's method). Nothing moving: the longest memory, narrow posteriors,
   little exploration. A channel's rate moving: a shorter memory for the whole segment, so the
   old outcomes of the channels not in use are forgotten too and they are explored again.
2. **Objective.** ``value_i = 1`` (success rate) or ``value_i = 1 - fee_bps_i / 10000`` (expected
   net value: ``theta_i * (amount - fee_i) = amount * theta_i * value_i``; the amount is the same
   for every channel, so it drops out of the comparison).
3. **Collapse.** A channel whose last ``n_i`` outcomes were all failures is *eliminated*, where
   ``n_i`` is the smallest run a healthy channel would produce with probability below
   ``collapse_alpha``: ``(1 - p_i) ** n_i < collapse_alpha`` with ``p_i`` its posterior mean without
   the run (clamped to ``[min_failure_run, max_failure_run]``). The test counts outcomes, not
   seconds, so it reacts after the same number of failures at any traffic rate; the decayed
   posterior alone forgets in time and needs ``rate * H`` failures to turn.
4. **Thompson sampling** over the channels that are not eliminated (if every one is: over those whose
   failure run is the least unlikely for a healthy channel, :func:`_least_implausible`):
   the probability that channel ``i`` has the largest ``value_i * theta_i`` under the posteriors,
   computed by quadrature (:func:`win_probabilities`) rather than by one posterior draw, so the
   probability of the choice is known exactly.
5. **Exploration floor.** ``pi_i = epsilon / K + (1 - epsilon) * TS_i``: every eligible channel keeps
   at least ``epsilon / K``. For an eliminated channel that floor is its recovery probe: the first
   success ends the failure run and readmits it.

The choice is drawn from ``pi`` itself, so the propensity logged with a decision is the true
probability of that choice under the policy (exact by construction; the quadrature's small error
only makes ``pi`` a slightly different valid policy than ideal Thompson sampling, see
``test_win_probabilities_agree_with_monte_carlo``). Thompson sampling *is* sampling each arm with
its posterior probability of being optimal (probability matching; D. Russo et al., "A tutorial on
Thompson sampling", Foundations and Trends in ML 11(1), 2018, section 3), so drawing from ``pi``
is the same policy as drawing posterior samples and taking the largest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Objective = Literal["success_rate", "net_value"]
OBJECTIVES: tuple[Objective, ...] = ("success_rate", "net_value")
# bump when the policy's logic (not only a parameter) changes; dts2: the failure run in creation order,
# and with every channel eliminated the least implausible run stays active; dts3: several memories,
# the segment's posteriors from the longest one consistent with the shorter ones
POLICY_FAMILY = "dts3"
MAX_MEMORIES = 4  # the store keeps at most this many pairs of sums per item


@dataclass(frozen=True)
class RouterConfig:
    """The policy's parameters; docs/routing.md ("Offline evaluation") says how the defaults were chosen."""

    half_life_seconds: float = 1800.0  # the shortest memory's; the others are memory_ratio times longer each
    memories: int = 3
    memory_ratio: float = 4.0
    memory_z: float = 2.5  # a memory is consistent with a shorter one within memory_z standard deviations
    epsilon: float = 0.02
    prior_successes: float = 1.0
    prior_failures: float = 1.0
    sharpness: float = 2.0  # counts weigh this much in the posterior (1 = the plain Beta posterior)
    objective: Objective = "success_rate"
    collapse_alpha: float = 1e-3
    min_failure_run: int = 3
    max_failure_run: int = 30
    quadrature_points: int = 64

    def __post_init__(self) -> None:
        if self.half_life_seconds <= 0:
            raise ValueError("half_life_seconds must be positive")
        if not 1 <= self.memories <= MAX_MEMORIES:
            raise ValueError(f"memories must be in [1, {MAX_MEMORIES}]")
        if self.memory_ratio <= 1.0:
            raise ValueError("memory_ratio must be > 1")
        if self.memory_z <= 0.0:
            raise ValueError("memory_z must be positive")
        if not 0.0 <= self.epsilon < 1.0:
            raise ValueError("epsilon must be in [0, 1)")
        if self.prior_successes < 1.0 or self.prior_failures < 1.0:
            # a, b >= 1 keeps every Beta density bounded, which the quadrature relies on
            raise ValueError("prior counts must be >= 1")
        if self.sharpness < 1.0:
            raise ValueError("sharpness must be >= 1")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}")
        if not 0.0 < self.collapse_alpha < 1.0:
            raise ValueError("collapse_alpha must be in (0, 1)")
        if not 1 <= self.min_failure_run <= self.max_failure_run:
            raise ValueError("need 1 <= min_failure_run <= max_failure_run")
        if self.quadrature_points < 8:
            raise ValueError("quadrature_points must be >= 8")

    @property
    def half_lives(self) -> tuple[float, ...]:
        """Every memory's half-life in seconds, shortest first."""
        return tuple(self.half_life_seconds * self.memory_ratio**j for j in range(self.memories))

    @property
    def version(self) -> str:
        """Names the policy in every decision log, so logs of different policies are told apart."""
        return (
            f"{POLICY_FAMILY}:h={','.join(f'{h:g}' for h in self.half_lives)}:z={self.memory_z:g}:eps={self.epsilon:g}"
            f":prior={self.prior_successes:g}/{self.prior_failures:g}:k={self.sharpness:g}:obj={self.objective}"
            f":alpha={self.collapse_alpha:g}:run={self.min_failure_run}-{self.max_failure_run}"
        )


@dataclass(frozen=True)
class ArmState:
    """What the router knows about one channel in one segment at the time of a decision."""

    successes: float = 0.0  # decayed to the decision time, the shortest memory
    failures: float = 0.0
    failure_run: int = 0  # consecutive failures, most recent outcomes
    longer: tuple[tuple[float, float], ...] = ()  # (successes, failures) of the longer memories, in order

    @property
    def levels(self) -> int:
        """How many memories this state holds (1: a single half-life, e.g. a ``dts2`` log)."""
        return 1 + len(self.longer)

    def counts(self, memory: int) -> tuple[float, float]:
        """(successes, failures) of memory ``memory`` (the longest held where there are fewer)."""
        if memory <= 0 or not self.longer:
            return self.successes, self.failures
        return self.longer[min(memory, len(self.longer)) - 1]

    def in_memory(self, memory: int) -> ArmState:
        """This state as a single memory: the counts of ``memory`` and the failure run."""
        successes, failures = self.counts(memory)
        return ArmState(successes, failures, self.failure_run)

    def as_list(self) -> list[float]:
        """``[S, F, run, S_1, F_1, ...]``: the shortest memory, the run, then the longer memories."""
        longer = [round(v, 6) for pair in self.longer for v in pair]
        return [round(self.successes, 6), round(self.failures, 6), self.failure_run, *longer]

    @classmethod
    def from_list(cls, raw: Sequence[float]) -> ArmState:
        rest = [float(v) for v in raw[3:]]
        longer = tuple((rest[i], rest[i + 1]) for i in range(0, len(rest) - 1, 2))
        return cls(successes=float(raw[0]), failures=float(raw[1]), failure_run=int(raw[2]), longer=longer)


@dataclass(frozen=True)
class Arm:
    """An eligible channel as the policy sees it."""

    channel_id: str
    fee_bps: int = 0
    state: ArmState = field(default_factory=ArmState)


@dataclass(frozen=True)
class ArmScore:
    channel_id: str
    probability: float  # of being chosen now, floor included
    mean: float  # posterior mean success rate
    value: float  # value of one success relative to the amount (1 for the success-rate objective)
    eliminated: bool
    failure_run_limit: int


@dataclass(frozen=True)
class PolicyView:
    """The policy's distribution over the eligible channels of one decision."""

    arms: tuple[ArmScore, ...]
    version: str
    half_life: float = 0.0  # the memory the posteriors came from (seconds)

    def probability(self, channel_id: str) -> float:
        for arm in self.arms:
            if arm.channel_id == channel_id:
                return arm.probability
        return 0.0

    def ranked(self) -> list[ArmScore]:
        """Highest probability first; ties keep the input (priority) order."""
        return sorted(self.arms, key=lambda a: -a.probability)

    def choose(self, u: float) -> ArmScore:
        """The channel that a uniform ``u`` in [0, 1) selects (inverse of the cumulative distribution)."""
        if not self.arms:
            raise ValueError("no eligible channel to choose from")
        cumulative = 0.0
        for arm in self.arms:
            cumulative += arm.probability
            if u < cumulative:
                return arm
        return next(a for a in reversed(self.arms) if a.probability > 0)


def posterior(state: ArmState, config: RouterConfig) -> tuple[float, float]:
    k = config.sharpness
    return config.prior_successes + k * state.successes, config.prior_failures + k * state.failures


def healthy_failure_probability(state: ArmState, config: RouterConfig) -> float:
    """The channel's failure probability from its posterior mean without the current failure run."""
    healthy_failures = max(0.0, state.failures - state.failure_run)
    a = config.prior_successes + state.successes
    b = config.prior_failures + healthy_failures
    return b / (a + b)


def failure_run_limit(state: ArmState, config: RouterConfig) -> int:
    """The failure run that marks this channel as collapsed (see the module docstring, step 3)."""
    fail_p = healthy_failure_probability(state, config)
    if fail_p <= 0.0:
        return config.min_failure_run
    if fail_p >= 1.0:
        return config.max_failure_run
    needed = math.ceil(math.log(config.collapse_alpha) / math.log(fail_p))
    return max(config.min_failure_run, min(config.max_failure_run, needed))


def evaluate(arms: Sequence[Arm], config: RouterConfig) -> PolicyView:
    """The policy's probabilities for the eligible ``arms`` of one decision (in their order)."""
    k = len(arms)
    if k == 0:
        return PolicyView(arms=(), version=config.version)
    values = [1.0 - arm.fee_bps / 10_000 if config.objective == "net_value" else 1.0 for arm in arms]
    memory = segment_memory([arm.state for arm in arms], config)
    states = [arm.state.in_memory(memory) for arm in arms]
    params = [posterior(state, config) for state in states]
    limits = [failure_run_limit(state, config) for state in states]
    eliminated = [state.failure_run >= limit for state, limit in zip(states, limits, strict=True)]
    active = [i for i in range(k) if not eliminated[i]] or _least_implausible(states, config)
    wins = win_probabilities([(*params[i], values[i]) for i in active], config.quadrature_points)
    ts = [0.0] * k
    for i, p in zip(active, wins, strict=True):
        ts[i] = p
    floor = config.epsilon / k
    scores = tuple(
        ArmScore(
            channel_id=arm.channel_id,
            probability=floor + (1.0 - config.epsilon) * ts[i],
            mean=params[i][0] / (params[i][0] + params[i][1]),
            value=values[i],
            eliminated=eliminated[i],
            failure_run_limit=limits[i],
        )
        for i, arm in enumerate(arms)
    )
    return PolicyView(arms=scores, version=config.version, half_life=config.half_lives[memory])


def consistent_memory(state: ArmState, config: RouterConfig) -> int:
    """The longest memory of one channel whose estimate agrees with every shorter memory's.

    Lepski's method (O. V. Lepski, "On a problem of adaptive estimation in Gaussian white noise",
    Theory Probab. Appl. 35(3), 1990): take the largest window whose estimate stays within a
    confidence band of every smaller window's. Here the estimates are ``m_j = (1 + S_j) / (2 + n_j)``
    with ``n_j = S_j + F_j``; memory ``j`` is consistent with a shorter ``i`` when
    ``|m_i - m_j| <= memory_z * sd(m_i - m_j)``. The two estimates share their recent outcomes,
    so the difference varies much less than each one: with outcomes arriving at a steady rate and
    decay rates ``l = ln 2 / H``, an exponentially weighted mean over ``n`` (decayed) outcomes has
    variance ``p (1 - p) / (2 n)`` and ``var(m_i - m_j) = p (1 - p) rho (1 / (2 n_i) + 1 / (2 n_j))``
    with ``rho = ((l_i - l_j) / (l_i + l_j)) ** 2`` (0.36 for half-lives 4 times apart); ``p = m_j``,
    and ``2 n + 2`` in place of ``2 n`` keeps an empty memory finite.
    """
    levels = min(config.memories, state.levels)
    rates = [math.log(2.0) / h for h in config.half_lives]
    estimates = []
    for j in range(levels):
        successes, failures = state.counts(j)
        n = successes + failures
        estimates.append(((1.0 + successes) / (2.0 + n), n))
    best = 0
    for j in range(1, levels):
        m_j, n_j = estimates[j]
        for i in range(j):
            m_i, n_i = estimates[i]
            rho = ((rates[i] - rates[j]) / (rates[i] + rates[j])) ** 2
            variance = m_j * (1.0 - m_j) * rho * (1.0 / (2.0 * n_i + 2.0) + 1.0 / (2.0 * n_j + 2.0))
            if abs(m_i - m_j) > config.memory_z * math.sqrt(variance):
                return best
        best = j
    return best


def segment_memory(states: Sequence[ArmState], config: RouterConfig) -> int:
    """The memory for every channel of a decision: the shortest of their :func:`consistent_memory`.

    One memory for the whole segment rather than one per channel: a channel that is not in use has
    only old outcomes, so nothing can show that its rate moved, and its own longest memory would
    keep it from being explored just when the channel in use changed. On the tuning seeds
    (docs/routing.md, "What was tried") a memory per channel was 0.1 point behind on the drifting
    scenario and level elsewhere (router - oracle: stationary -0.35 against -0.38, drifting -0.89
    against -0.79). Channels without any outcome have no say.
    """
    votes = [
        consistent_memory(state, config)
        for state in states
        if state.successes + state.failures > 0 or any(s + f > 0 for s, f in state.longer)
    ]
    return min(votes, default=config.memories - 1)


def _least_implausible(arms: Sequence[ArmState], config: RouterConfig) -> list[int]:
    """When every channel is eliminated: the ones whose failure run is the least unlikely for a
    healthy channel (largest ``(1 - p) ** run``), e.g. a channel 3 failures into a run rather than
    one 15 into it. Thompson sampling over all of them would hand traffic back to the channel that
    failed longest, whose posterior still remembers its good hours."""
    scores = [arm.failure_run * math.log(max(healthy_failure_probability(arm, config), 1e-12)) for arm in arms]
    best = max(scores)
    return [i for i, score in enumerate(scores) if score >= best - 1e-9]


# ------------------------------------------------------------------ quadrature

_SPREAD = 10.0  # standard deviations either side of an arm's mean that its grid covers


def _log_kernel(x: float, a: float, b: float) -> float:
    """log of x**(a-1) * (1-x)**(b-1) (the Beta density without its constant); -inf outside [0, 1]."""
    if x < 0.0 or x > 1.0:
        return -math.inf
    left = 0.0 if a == 1.0 else ((a - 1.0) * math.log(x) if x > 0.0 else -math.inf)
    right = 0.0 if b == 1.0 else ((b - 1.0) * math.log1p(-x) if x < 1.0 else -math.inf)
    return left + right


def win_probabilities(params: Sequence[tuple[float, float, float]], points: int = 64) -> list[float]:
    """P(value_i * theta_i is the largest) for independent ``theta_i ~ Beta(a_i, b_i)``.

    ``params`` holds ``(a_i, b_i, value_i)`` with ``a_i, b_i >= 1`` and ``value_i > 0``. Computed as
    ``integral f_i(y) * prod_{j != i} F_j(y) dy`` over ``y = value * theta``, with the trapezoid rule
    on the union of one grid per arm (``points`` nodes over its mean +- 10 standard deviations), so
    a sharp posterior is resolved by its own nodes however wide another one is. Densities and CDFs
    are normalised numerically on that grid, and the result is normalised to sum to 1.
    """
    k = len(params)
    if k == 1:
        return [1.0]
    nodes: set[float] = set()
    for a, b, value in params:
        mean = a / (a + b)
        sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
        lo, hi = max(0.0, mean - _SPREAD * sd), min(1.0, mean + _SPREAD * sd)
        half = 0.5 * (hi - lo)
        # Chebyshev-Lobatto spacing: nodes gather at the ends, where a density clipped at 0 or 1
        # (a success rate near 0 or 1, with a or b near 1) bends sharply
        nodes.update(value * (lo + half * (1.0 - math.cos(math.pi * n / (points - 1)))) for n in range(points))
    ys = sorted(nodes)
    gaps = [ys[n] - ys[n - 1] for n in range(1, len(ys))]

    densities: list[list[float]] = []
    cdfs: list[list[float]] = []
    for a, b, value in params:
        logs = [_log_kernel(y / value, a, b) for y in ys]
        top = max(logs)
        dens = [math.exp(v - top) if v != -math.inf else 0.0 for v in logs]
        cdf = [0.0]
        acc = 0.0
        for n, gap in enumerate(gaps, start=1):
            acc += 0.5 * (dens[n] + dens[n - 1]) * gap
            cdf.append(acc)
        densities.append([d / acc for d in dens])
        cdfs.append([c / acc for c in cdf])

    wins: list[float] = []
    for i in range(k):
        integrand = list(densities[i])
        for j in range(k):
            if j != i:
                cdf_j = cdfs[j]
                integrand = [g * c for g, c in zip(integrand, cdf_j, strict=True)]
        wins.append(sum(0.5 * (integrand[n] + integrand[n - 1]) * gap for n, gap in enumerate(gaps, start=1)))
    total = sum(wins)
    return [w / total for w in wins] if total > 0 else [1.0 / k] * k

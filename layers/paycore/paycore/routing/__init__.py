"""Smart channel routing: a non-stationary Thompson-sampling bandit per (segment, channel).

- :mod:`paycore.routing.segments`: currency x amount band.
- :mod:`paycore.routing.decay`: time-decayed counts kept with atomic ADDs.
- :mod:`paycore.routing.policy`: the policy (pure; probabilities, choice, collapse detection).
- :mod:`paycore.routing.state`: the store interface and an in-memory store.
- :mod:`paycore.routing.offline`: IPS/SNIPS evaluation of other policies from decision logs.

docs/routing.md describes the design, the storage and the offline evaluation.
"""

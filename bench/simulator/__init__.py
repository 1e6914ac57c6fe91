"""The transaction simulator: virtual users drive the whole payment flow over HTTP, then the money is
checked (docs/simulator.md).

``python -m bench.simulator --help``; ``make simulate SCENARIO=busy-day``.
"""

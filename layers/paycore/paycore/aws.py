"""boto3 clients, created once per container and resettable in tests.

Only data-access and delivery modules call :func:`client`. The endpoint comes from
:class:`paycore.config.AwsSettings` (``AWS_ENDPOINT_URL`` on the local stack and in tests), so
every client of a process points at the same place.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from paycore.config import aws_settings

_RESETTERS: list[Callable[[], None]] = []


@cache
def _client(service: str, region: str, endpoint_url: str | None) -> Any:
    import boto3  # imported on first use: most functions need it only after init
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    session: Any = boto3.session.Session()
    return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)


def client(service: str) -> Any:
    settings = aws_settings()
    return _client(service, settings.region, settings.endpoint_url)


def on_reset(func: Callable[[], None]) -> Callable[[], None]:
    """Register a function that drops a cached client or connection; used as a decorator."""
    _RESETTERS.append(func)
    return func


def reset_clients() -> None:
    """Drop every cached client, PynamoDB connection and Powertools parameter cache."""
    _client.cache_clear()
    for func in _RESETTERS:
        func()

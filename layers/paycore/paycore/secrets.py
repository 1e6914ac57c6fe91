"""Secret values from Secrets Manager, through Powertools parameters with a per-container cache.

Secrets never travel in environment variables: the environment names the secret (its ARN), and
:func:`get_json` reads the value with the same boto3 client (and endpoint) as every other AWS
call, keeping it for ``max_age`` seconds. Values are never logged.
"""

from __future__ import annotations

from typing import Any

from paycore.aws import client, on_reset
from paycore.errors import ConfigurationError

_PROVIDERS: list[Any] = []


def _provider() -> Any:
    if not _PROVIDERS:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        _PROVIDERS.append(SecretsProvider(boto3_client=client("secretsmanager")))
    return _PROVIDERS[0]


def get_json(secret_id: str, *, max_age: int) -> dict[str, Any]:
    """The secret's JSON object, read at most once per ``max_age`` seconds per container."""
    value = _provider().get(secret_id, transform="json", max_age=max_age)
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret {secret_id} does not hold a JSON object")
    return value


@on_reset
def reset_secrets() -> None:
    """Drop the provider and its cache (tests, and a changed endpoint)."""
    _PROVIDERS.clear()

"""Which merchant account a provider adapter uses: channel configuration plus a secret.

A real provider's channels (``provider`` = ``stripe``, ``alipay`` or ``wechatpay``) name the
Secrets Manager secret that holds the account's keys (``credentials_secret``), the base URL of the
provider's API (``api_base``; absent means the provider's production endpoint) and provider
options (``options``). All channels of one provider share one account: the same secret and base
URL (checked here), because a callback (``/callbacks/{provider}``), a query, a close or a refund
names the provider, not the channel. Channels may differ in their options (Stripe: the payment
method) and limits. See docs/providers.md.

Secrets are read through Powertools parameters (``get_secret(..., transform="json", max_age=...)``),
cached per container for ``PROVIDER_SECRETS_MAX_AGE`` seconds, and never logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from paycore.aws import on_reset
from paycore.config import provider_settings
from paycore.errors import ConfigurationError
from paycore.providers.base import ProviderError


@dataclass(frozen=True)
class ProviderAccount:
    """One merchant account at a provider: where its API is and the keys to use it."""

    provider: str
    secret_name: str
    api_base: str
    credentials: Mapping[str, Any] = field(repr=False)  # never printed: it holds keys

    def credential(self, key: str) -> Any:
        """A required field of the secret; a missing one is a deployment error, not a 4xx."""
        value = self.credentials.get(key)
        if value in (None, "", [], {}):
            raise ConfigurationError(f"secret {self.secret_name!r} has no {key!r} (see docs/providers.md)")
        return value


class AccountSource(Protocol):
    """Where an adapter finds its account; the default reads channels and Secrets Manager."""

    def account(self) -> ProviderAccount: ...


def load_json_secret(name: str) -> dict[str, Any]:
    """The JSON secret ``name`` through the Powertools parameters cache."""
    from aws_lambda_powertools.utilities.parameters import get_secret
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

    try:
        value = get_secret(name, transform="json", max_age=provider_settings().secrets_max_age)
    except (GetParameterError, TransformParameterError) as exc:
        # The message names the secret and the failure, never the value.
        raise ProviderError(f"cannot read secret {name!r}: {type(exc).__name__}", provider="secrets") from exc
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret {name!r} must hold a JSON object")
    return value


@on_reset
def _reset_secret_cache() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]  # drops cached values and the providers (with their boto3 clients)


class ChannelAccounts:
    """The account of ``provider``, found through the configured channels of that provider."""

    def __init__(
        self,
        provider: str,
        default_api_base: str,
        *,
        channels: Callable[[], list[Mapping[str, Any]]] | None = None,
        secrets: Callable[[str], Mapping[str, Any]] = load_json_secret,
    ):
        self.provider = provider
        self.default_api_base = default_api_base
        self._channels = channels or _configured_channels
        self._secrets = secrets

    def account(self) -> ProviderAccount:
        mine = [c for c in self._channels() if c.get("provider") == self.provider]
        secrets = {c.get("credentials_secret") for c in mine}
        bases = {c.get("api_base") or self.default_api_base for c in mine}
        if not mine:
            raise ConfigurationError(f"no channel is configured for provider {self.provider!r}")
        if None in secrets or "" in secrets:
            raise ConfigurationError(f"a {self.provider} channel has no credentials_secret")
        if len(secrets) != 1 or len(bases) != 1:
            raise ConfigurationError(
                f"the {self.provider} channels must share one credentials_secret and api_base "
                f"(found {len(secrets)} secrets, {len(bases)} base URLs)"
            )
        secret_name = str(secrets.pop())
        return ProviderAccount(
            provider=self.provider,
            secret_name=secret_name,
            api_base=str(bases.pop()).rstrip("/"),
            credentials=self._secrets(secret_name),
        )


def _configured_channels() -> list[Mapping[str, Any]]:
    from dataclasses import asdict

    from paycore.channels import load_channels

    return [asdict(c) for c in load_channels()]


@dataclass(frozen=True)
class StaticAccount:
    """An account given directly (tests, tools): the same interface as :class:`ChannelAccounts`."""

    value: ProviderAccount

    def account(self) -> ProviderAccount:
        return self.value

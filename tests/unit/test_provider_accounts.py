"""Which account a provider adapter uses, and the seed rules that keep it unambiguous."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.seed.channels import PROVIDERS_EXAMPLE_FILE, SEED_FILE, load_seed
from paycore.errors import ConfigurationError
from paycore.providers import get_provider, known_providers
from paycore.providers.accounts import ChannelAccounts

pytestmark = pytest.mark.unit


def channel(**fields: Any) -> dict[str, Any]:
    return {"id": "c", "provider": "alipay", "credentials_secret": "s/alipay", "api_base": None, **fields}


def accounts(*channels: dict[str, Any]) -> ChannelAccounts:
    return ChannelAccounts(
        "alipay",
        "https://openapi.alipay.com/gateway.do",
        channels=lambda: list(channels),
        secrets=lambda n: {"private_key": f"SECRET-OF-{n}"},
    )


def test_the_providers_channels_name_one_account() -> None:
    account = accounts(channel(), channel(id="d"), channel(provider="stripe", credentials_secret="s/stripe")).account()
    assert (account.secret_name, account.api_base) == ("s/alipay", "https://openapi.alipay.com/gateway.do")
    assert account.credentials == {"private_key": "SECRET-OF-s/alipay"}
    assert "SECRET-OF" not in repr(account)  # credentials never printed


@pytest.mark.parametrize(
    "channels",
    [
        [],
        [channel(credentials_secret=None)],
        [channel(), channel(id="d", credentials_secret="s/other")],
        [channel(), channel(id="d", api_base="http://127.0.0.1:1")],
    ],
)
def test_missing_or_ambiguous_accounts_are_configuration_errors(channels: list[dict[str, Any]]) -> None:
    with pytest.raises(ConfigurationError):
        accounts(*channels).account()


def test_registry_knows_the_real_providers() -> None:
    assert {"stripe", "alipay", "wechatpay"} <= set(known_providers())
    assert get_provider("alipay").name == "alipay"


def test_example_provider_channels_pass_the_seed_rules_and_are_not_in_the_local_seed() -> None:
    example = load_seed(PROVIDERS_EXAMPLE_FILE)
    assert {c["provider"] for c in example} == {"stripe", "alipay", "wechatpay"}
    assert not {c["provider"] for c in load_seed(SEED_FILE)} & {"stripe", "alipay", "wechatpay"}


@pytest.mark.parametrize(
    "change",
    [
        {"credentials_secret": None},
        {"api_base": "http://127.0.0.1:1"},
        {"credentials_secret": "serverless-payments/dev/providers/other"},
        {"options": {"payment_method": "bitcoin"}},
    ],
)
def test_seed_refuses_provider_channels_without_one_clear_account(change: dict[str, Any], tmp_path: Path) -> None:
    channels = json.loads(PROVIDERS_EXAMPLE_FILE.read_text(encoding="utf-8"))
    channels[1].update(change)  # the second Stripe channel
    path = tmp_path / "channels.json"
    path.write_text(json.dumps(channels), encoding="utf-8")
    with pytest.raises(ValueError, match="channel stripe_wechat_pay"):
        load_seed(path)

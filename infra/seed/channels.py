"""Write the channel configuration in infra/seed/channels.json to a stage's channels table.

Used by the local stack at start and by ``make seed STAGE=dev`` on a deployed stage (with the
caller's AWS credentials). Each channel is validated before anything is written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SEED_FILE = Path(__file__).with_name("channels.json")
# Real providers' example channels: not loaded by the local stack (they need real credentials).
PROVIDERS_EXAMPLE_FILE = Path(__file__).with_name("channels.providers.example.json")
REAL_PROVIDERS = ("stripe", "alipay", "wechatpay")
STRIPE_METHODS = ("card", "wechat_pay", "alipay")


def load_seed(path: Path = SEED_FILE) -> list[dict[str, Any]]:
    from paycore import money

    channels = json.loads(path.read_text(encoding="utf-8"))
    for channel in channels:
        for currency in channel["currencies"]:
            if not money.is_currency(currency):
                raise ValueError(f"channel {channel['id']}: {currency} is not an ISO 4217 code")
        for currency, limits in channel.get("limits", {}).items():
            if currency not in channel["currencies"]:
                raise ValueError(f"channel {channel['id']}: limits for {currency}, which it does not accept")
            if not (
                isinstance(limits["min"], int) and isinstance(limits["max"], int) and 0 < limits["min"] <= limits["max"]
            ):
                raise ValueError(f"channel {channel['id']}: limits for {currency} must be integers 0 < min <= max")
    _check_provider_accounts(channels)
    return channels


def _check_provider_accounts(channels: list[dict[str, Any]]) -> None:
    """A real provider's channels name their credentials secret, and share one account
    (secret and base URL): callbacks, queries and refunds name the provider, not the channel."""
    accounts: dict[str, tuple[Any, Any]] = {}
    for channel in channels:
        provider = channel["provider"]
        if provider not in REAL_PROVIDERS:
            continue
        secret = channel.get("credentials_secret")
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"channel {channel['id']}: provider {provider} needs a credentials_secret")
        account = (secret, channel.get("api_base"))
        if accounts.setdefault(provider, account) != account:
            raise ValueError(
                f"channel {channel['id']}: all {provider} channels must share credentials_secret and api_base"
            )
        method = (channel.get("options") or {}).get("payment_method", "card")
        if provider == "stripe" and method not in STRIPE_METHODS:
            raise ValueError(
                f"channel {channel['id']}: Stripe payment_method must be one of {', '.join(STRIPE_METHODS)}"
            )


def seed_channels(path: Path = SEED_FILE) -> int:
    """Write every channel of ``path`` through the data layer; returns how many were written."""
    from paycore.data.channels import put_channel_item

    channels = load_seed(path)
    for channel in channels:
        put_channel_item(channel)
    return len(channels)


def main() -> None:
    parser = argparse.ArgumentParser(description="Seed a stage's channels table from infra/seed/channels.json")
    parser.add_argument("--table", required=True, help="the ChannelsTableName output of the stack")
    parser.add_argument("--file", type=Path, default=SEED_FILE)
    args = parser.parse_args()
    import os

    os.environ["CHANNELS_TABLE"] = args.table
    print(f"wrote {seed_channels(args.file)} channels to {args.table}")


if __name__ == "__main__":
    main()

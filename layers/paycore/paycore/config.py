"""Typed configuration, read from the environment at invoke time.

Handlers call :func:`get_settings` inside the handler, never at import. A missing required
variable raises :class:`ConfigurationError` naming it: there are no silent defaults for table
names, keys or URLs. Tests call :func:`reset_settings` after changing the environment.

Each concern's settings are an immutable ``NamedTuple`` rather than a frozen dataclass: every
function imports this module at init, and Python builds a dataclass's methods by compiling source
text, which for these eleven classes took 5 ms of a cold start against under 2 ms
(docs/performance.md, section 1).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from paycore.errors import ConfigurationError


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is required and not set")
    return value


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"environment variable {name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigurationError(f"environment variable {name} must be >= {minimum}, got {value}")
    return value


class AwsSettings(NamedTuple):
    """Where AWS clients connect. ``endpoint_url`` is set only on the local stack and in tests."""

    region: str
    endpoint_url: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AwsSettings:
        region = _optional(env, "AWS_REGION") or _optional(env, "AWS_DEFAULT_REGION")
        if region is None:
            raise ConfigurationError("environment variable AWS_REGION (or AWS_DEFAULT_REGION) is required")
        return cls(region=region, endpoint_url=_optional(env, "AWS_ENDPOINT_URL"))


class ChannelSettings(NamedTuple):
    table: str
    cache_seconds: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChannelSettings:
        return cls(
            table=_required(env, "CHANNELS_TABLE"),
            cache_seconds=_int(env, "CHANNELS_CACHE_SECONDS", 30),
        )


class ProviderSettings(NamedTuple):
    """How payment provider adapters read their credentials and talk to the providers' APIs.

    ``secrets_max_age``: seconds a container keeps a provider's credentials (Powertools parameters
    cache) before reading the secret again, so a rotated key is picked up without a deployment.
    ``http_timeout``: seconds for one call to a provider's API (connect and read), well inside
    the functions' 10 s timeout.
    """

    secrets_max_age: int
    http_timeout: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProviderSettings:
        return cls(
            secrets_max_age=_int(env, "PROVIDER_SECRETS_MAX_AGE", 300),
            http_timeout=float(_int(env, "PROVIDER_HTTP_TIMEOUT", 6, minimum=1)),
        )


class IdentitySettings(NamedTuple):
    """Where identity state lives and how tokens are named (names and ARNs only; no secret values).

    The secrets' values are read from Secrets Manager through Powertools parameters and cached for
    ``secrets_cache_seconds`` per container (see docs/identity.md, "Key rotation").
    """

    users_table: str
    claims_table: str
    sessions_table: str
    refresh_tokens_table: str
    throttle_table: str
    jwt_keys_secret: str
    hmac_secret: str
    issuer: str
    audience: str
    secrets_cache_seconds: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IdentitySettings:
        return cls(
            users_table=_required(env, "USERS_TABLE"),
            claims_table=_required(env, "USER_CLAIMS_TABLE"),
            sessions_table=_required(env, "SESSIONS_TABLE"),
            refresh_tokens_table=_required(env, "REFRESH_TOKENS_TABLE"),
            throttle_table=_required(env, "AUTH_THROTTLE_TABLE"),
            jwt_keys_secret=_required(env, "JWT_KEYS_SECRET_ARN"),
            hmac_secret=_required(env, "IDENTITY_HMAC_SECRET_ARN"),
            issuer=_required(env, "TOKEN_ISSUER"),
            audience=_required(env, "TOKEN_AUDIENCE"),
            secrets_cache_seconds=_int(env, "SECRETS_CACHE_SECONDS", 300),
        )


class DeliverySettings(NamedTuple):
    """How verification codes leave: the SES sender identity and the SNS SMS type."""

    sender_email: str
    sms_type: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeliverySettings:
        sms_type = _required(env, "SMS_TYPE")
        if sms_type not in ("Transactional", "Promotional"):
            raise ConfigurationError(
                f"environment variable SMS_TYPE must be Transactional or Promotional, got {sms_type!r}"
            )
        return cls(sender_email=_required(env, "SES_SENDER_ADDRESS"), sms_type=sms_type)


def _csv_ints(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError as exc:
        raise ConfigurationError(f"environment variable {name} must be comma-separated integers, got {raw!r}") from exc
    if not values or any(v < 0 for v in values):
        raise ConfigurationError(f"environment variable {name} must list non-negative integers, got {raw!r}")
    return values


class OrderSettings(NamedTuple):
    """The orders and callbacks functions: where orders live and where their events go."""

    table: str
    idempotency_table: str
    event_bus: str
    ops_topic_arn: str
    default_expires_in: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OrderSettings:
        return cls(
            table=_required(env, "ORDERS_TABLE"),
            idempotency_table=_required(env, "IDEMPOTENCY_TABLE"),
            event_bus=_required(env, "EVENT_BUS_NAME"),
            ops_topic_arn=_required(env, "OPS_TOPIC_ARN"),
            default_expires_in=_int(env, "ORDER_DEFAULT_EXPIRES_IN", 900, minimum=60),
        )


class NonceSettings(NamedTuple):
    """Where each X-Signature nonce is claimed once per session."""

    table: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NonceSettings:
        return cls(table=_required(env, "NONCES_TABLE"))


# Stripe-like: retried with exponential back-off for up to about three days (docs/orders.md).
DEFAULT_WEBHOOK_RETRY_SCHEDULE = (60, 300, 900, 3600, 10800, 21600, 43200, 86400, 86400)


class SandboxSettings(NamedTuple):
    """The sandbox provider: its payments table, webhook secret, delivery queue and behaviour defaults."""

    table: str
    webhook_secret_id: str
    webhook_queue_url: str
    retry_schedule: tuple[int, ...]
    decline_rate_bps: int
    delivery_delay_seconds: int
    duplicate_rate_bps: int
    out_of_order_rate_bps: int
    out_of_order_delay_seconds: int
    late_payment_grace_seconds: int
    refund_failure_rate_bps: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SandboxSettings:
        return cls(
            table=_required(env, "SANDBOX_TABLE"),
            webhook_secret_id=_required(env, "SANDBOX_WEBHOOK_SECRET_ID"),
            webhook_queue_url=_required(env, "SANDBOX_WEBHOOK_QUEUE_URL"),
            retry_schedule=_csv_ints(env, "SANDBOX_WEBHOOK_RETRY_SCHEDULE", DEFAULT_WEBHOOK_RETRY_SCHEDULE),
            decline_rate_bps=_int(env, "SANDBOX_DECLINE_RATE_BPS", 0),
            delivery_delay_seconds=_int(env, "SANDBOX_DELIVERY_DELAY_SECONDS", 0),
            duplicate_rate_bps=_int(env, "SANDBOX_DUPLICATE_RATE_BPS", 0),
            out_of_order_rate_bps=_int(env, "SANDBOX_OUT_OF_ORDER_RATE_BPS", 0),
            out_of_order_delay_seconds=_int(env, "SANDBOX_OUT_OF_ORDER_DELAY_SECONDS", 5),
            late_payment_grace_seconds=_int(env, "SANDBOX_LATE_PAYMENT_GRACE_SECONDS", 0),
            refund_failure_rate_bps=_int(env, "SANDBOX_REFUND_FAILURE_RATE_BPS", 0),
        )


class SweeperSettings(NamedTuple):
    """The sweeper's budget and its overdue-notification check (docs/scheduled-jobs.md)."""

    page_size: int  # orders per index Query page
    reserve_ms: int  # stop taking new orders when less than this is left of the invocation
    overdue_after_seconds: int  # a pending order this old gets its provider asked (no webhook yet?)
    overdue_max_queries: int  # provider queries per run for that check (0 turns it off)
    overdue_scan_limit: int  # index items read per shard for that check
    refund_grace_seconds: int  # a refund pending this long without a provider id is submitted again
    refund_max_per_run: int  # refunds the reconciler submits per run (0 turns it off)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SweeperSettings:
        return cls(
            page_size=_int(env, "SWEEPER_PAGE_SIZE", 50, minimum=1),
            reserve_ms=_int(env, "SWEEPER_RESERVE_MS", 20_000, minimum=0),
            overdue_after_seconds=_int(env, "SWEEPER_OVERDUE_AFTER_SECONDS", 600, minimum=60),
            overdue_max_queries=_int(env, "SWEEPER_OVERDUE_MAX_QUERIES", 50),
            overdue_scan_limit=_int(env, "SWEEPER_OVERDUE_SCAN_LIMIT", 100, minimum=1),
            # longer than any function's timeout (120 s), so a submission still in flight has ended
            refund_grace_seconds=_int(env, "SWEEPER_REFUND_GRACE_SECONDS", 300, minimum=180),
            refund_max_per_run=_int(env, "SWEEPER_REFUND_MAX_PER_RUN", 25),
        )


class ReportSettings(NamedTuple):
    """The daily report: the counters it reads, where it keeps reports, where it sends them."""

    orders_table: str
    reports_table: str
    ops_topic_arn: str
    timezone: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReportSettings:
        return cls(
            orders_table=_required(env, "ORDERS_TABLE"),
            reports_table=_required(env, "REPORTS_TABLE"),
            ops_topic_arn=_required(env, "OPS_TOPIC_ARN"),
            timezone=_required(env, "REPORT_TIMEZONE"),
        )


@lru_cache(maxsize=1)
def sweeper_settings() -> SweeperSettings:
    return SweeperSettings.from_env(os.environ)


@lru_cache(maxsize=1)
def report_settings() -> ReportSettings:
    return ReportSettings.from_env(os.environ)


@lru_cache(maxsize=1)
def order_settings() -> OrderSettings:
    return OrderSettings.from_env(os.environ)


@lru_cache(maxsize=1)
def nonce_settings() -> NonceSettings:
    return NonceSettings.from_env(os.environ)


@lru_cache(maxsize=1)
def sandbox_settings() -> SandboxSettings:
    return SandboxSettings.from_env(os.environ)


def sandbox_callback_base_url() -> str:
    """Where the sandbox posts its webhooks (``<base>/callbacks/sandbox``): the only outbound HTTP target."""
    return _required(os.environ, "SANDBOX_CALLBACK_BASE_URL").rstrip("/")


class RouterSettings(NamedTuple):
    """The channel router (docs/routing.md): its state table and the policy's tunable parameters.

    The defaults are :class:`paycore.routing.policy.RouterConfig`'s (chosen by the offline
    evaluation, docs/routing-tuning.md); a stage overrides them through template parameters.
    """

    table: str
    half_life_seconds: int  # the shortest memory's (RouterConfig.half_lives)
    epsilon: float  # from ROUTER_EPSILON_PERMILLE: an integer, as CloudFormation can range-check it
    objective: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RouterSettings:
        from paycore.routing.policy import OBJECTIVES, RouterConfig

        defaults = RouterConfig()
        objective = _optional(env, "ROUTER_OBJECTIVE") or defaults.objective
        if objective not in OBJECTIVES:
            raise ConfigurationError(f"environment variable ROUTER_OBJECTIVE must be one of {', '.join(OBJECTIVES)}")
        permille = _int(env, "ROUTER_EPSILON_PERMILLE", round(defaults.epsilon * 1000))
        if permille > 500:
            raise ConfigurationError("environment variable ROUTER_EPSILON_PERMILLE must be <= 500")
        return cls(
            table=_required(env, "ROUTER_TABLE"),
            half_life_seconds=_int(env, "ROUTER_HALF_LIFE_SECONDS", int(defaults.half_life_seconds), minimum=60),
            epsilon=permille / 1000,
            objective=objective,
        )


@lru_cache(maxsize=1)
def aws_settings() -> AwsSettings:
    return AwsSettings.from_env(os.environ)


@lru_cache(maxsize=1)
def channel_settings() -> ChannelSettings:
    return ChannelSettings.from_env(os.environ)


@lru_cache(maxsize=1)
def provider_settings() -> ProviderSettings:
    return ProviderSettings.from_env(os.environ)


@lru_cache(maxsize=1)
def identity_settings() -> IdentitySettings:
    return IdentitySettings.from_env(os.environ)


@lru_cache(maxsize=1)
def delivery_settings() -> DeliverySettings:
    return DeliverySettings.from_env(os.environ)


def stage() -> str:
    return _required(os.environ, "STAGE")


_CACHED = [aws_settings, channel_settings]


def register_cached(func: object) -> None:
    """Register another ``lru_cache``d settings reader so that :func:`reset_settings` clears it."""
    _CACHED.append(func)  # type: ignore[arg-type]


def reset_settings() -> None:
    """Forget every cached settings object (tests change the environment between cases)."""
    for func in _CACHED:
        func.cache_clear()  # type: ignore[attr-defined]


register_cached(provider_settings)
register_cached(identity_settings)
register_cached(delivery_settings)
for _reader in (order_settings, nonce_settings, sandbox_settings, sweeper_settings, report_settings):
    register_cached(_reader)


@lru_cache(maxsize=1)
def router_settings() -> RouterSettings:
    return RouterSettings.from_env(os.environ)


register_cached(router_settings)

"""Logger, metrics and tracer: created once per container, shared by every module.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` (set per function in template.yaml).
Log records pass through :class:`RedactingFormatter`, which masks any value whose key names a
secret (passwords, codes, tokens, keys, signatures) and, inside free text, anything shaped like a
secret: JWTs, Bearer credentials, signature headers (``v1=<hex>``, ``signature="..."``), secret
fields of JSON or form bodies carried as strings, verification codes in message text, provider
key prefixes (``sk_live_``, ``whsec_``) and PEM private keys. The tracer never captures responses.

Metric names live in :class:`Metric`, the one list of what the functions emit (template.yaml's
alarms and dashboard name the same metrics; a unit test holds them together). :func:`count`
emits one: the per-service series every alarm watches, and where a channel (or provider) is known
a second series with that dimension for the dashboard. :func:`log_keys` puts the user, session or
order an invocation works on into every log line (and the trace's annotations) while it runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit

REDACTED = "***"

# Keys whose values never reach a log line, matched case-insensitively on the whole key or a suffix.
_HIDDEN_WORDS = (
    r"password|passwd|secret|token|code|otp|signing_key|private_key|api_key|signature|"
    r"authorization|cookie|refresh|jwt|credential|x-signature|sandbox-signature|stripe-signature"
)
_SECRET_KEY = re.compile(rf"({_HIDDEN_WORDS})$", re.IGNORECASE)
# Short names that are secrets only as the whole key (Alipay signs its bodies in `sign`).
_SECRET_EXACT_KEYS = frozenset({"sign", "key", "apikey", "pem"})
# Keys that end like a secret key but carry no secret.
_SAFE_KEYS = frozenset({"error_code", "status_code", "currency_code", "code_location", "token_type", "error"})

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
# Inside free text: `"refresh_token": "..."` (a JSON body carried as a string), `password=...`
# (form or query), `signature="..."` (WeChat Pay's Authorization header) and the like.
_SECRET_FIELD = re.compile(
    rf"""(?ix)
    (?P<name>["']?[\w-]*(?:{_HIDDEN_WORDS}|\bsign)["']?\s*[:=]\s*)
    (?P<value>"(?:[^"\\]|\\.)+"|'[^']+'|[^\s"',&;}}\]]+)
    """
)
# Stripe-style and X-Signature headers: t=<unix>,n=<nonce>,v1=<hex HMAC>.
_SIGNATURE_PART = re.compile(r"(?i)\b(v[01]|sig)=[0-9a-f]{16,}")
# "Your verification code is 123456": a code next to the word code/OTP/passcode.
_CODE_IN_TEXT = re.compile(r"(?i)\b(code|otp|passcode|pin)\b(\D{0,24}?)\b\d{4,8}\b")
# Provider API keys and webhook secrets with their documented prefixes (Stripe: sk_, rk_, whsec_).
_PROVIDER_KEY = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{8,}|\bwhsec_[A-Za-z0-9+/=]{8,}")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL)


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if lowered in _SAFE_KEYS:
        return False
    return lowered in _SECRET_EXACT_KEYS or bool(_SECRET_KEY.search(lowered))


def _mask_field(match: re.Match[str]) -> str:
    name = match.group("name")
    bare = name.strip().strip("\"':= ").strip("\"'")
    if bare.lower() in _SAFE_KEYS:
        return match.group(0)
    return name + REDACTED


def redact_text(text: str) -> str:
    """Mask what looks like a secret inside free text (messages, bodies and headers as strings)."""
    text = _PEM.sub(REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub("Bearer " + REDACTED, text)
    text = _SECRET_FIELD.sub(_mask_field, text)
    text = _SIGNATURE_PART.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _CODE_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _PROVIDER_KEY.sub(REDACTED, text)


def redact(value: Any, key: str | None = None) -> Any:
    """Return a copy of ``value`` with secrets masked (recursing into dicts, lists and strings)."""
    if key is not None and _is_secret_key(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter with secret masking applied to the whole record.

    ``service`` is read from the environment per record: on Lambda it is the one the logger was
    created with; on the local stack, where every function shares this process and its logger,
    it is the function that is running (each sees its own environment)."""

    def serialize(self, log: Any) -> str:
        record = dict(log)
        record["service"] = os.environ.get("POWERTOOLS_SERVICE_NAME") or record.get("service")
        return super().serialize(redact(record))


logger = Logger(logger_formatter=RedactingFormatter(), utc=True)
metrics = Metrics()
# Patched at init: botocore and PynamoDB, the clients every function calls AWS through. Tracer()
# would patch every library X-Ray supports that is installed, and so import `requests` (and
# sqlite3) into every function's cold start: about a fifth of a second of compiling on Lambda, where
# the layer has no bytecode (docs/performance.md). `requests` is patched where it is used, when the
# Stripe adapter imports its library (paycore.providers.stripe_provider).
tracer = Tracer(patch_modules=("botocore", "pynamodb"))


class Metric(StrEnum):
    """Every metric the functions emit, namespace ``ServerlessPayments`` (POWERTOOLS_METRICS_NAMESPACE)."""

    # business metrics: alarms and the dashboard (template.yaml) read these
    ORDERS_CREATED = "OrdersCreated"
    PAYMENTS_SUCCEEDED = "PaymentsSucceeded"
    PAYMENTS_FAILED = "PaymentsFailed"
    CALLBACK_SIGNATURE_FAILURES = "CallbackSignatureFailures"
    ANOMALIES = "Anomalies"
    # orders, callbacks and the sandbox provider
    LATE_PAYMENT_REFUNDED = "LatePaymentRefunded"
    DOMAIN_EVENT_PUBLISH_FAILED = "DomainEventPublishFailed"
    SANDBOX_WEBHOOK_GIVEN_UP = "SandboxWebhookGivenUp"
    # scheduled jobs (OrdersExpired and ReportSent are business metrics too)
    ORDERS_EXPIRED = "OrdersExpired"
    REPORT_SENT = "ReportSent"
    SWEEPER_HEARTBEAT = "SweeperHeartbeat"
    SWEEPER_PAID_AT_EXPIRY = "SweeperPaidAtExpiry"
    SWEEPER_ERRORS = "SweeperErrors"
    OVERDUE_PAYMENTS_APPLIED = "OverduePaymentsApplied"
    SWEEPER_BACKLOG_LEFT = "SweeperBacklogLeft"
    REFUNDS_RESUBMITTED = "RefundsResubmitted"  # the sweeper's refund reconciler
    # the channel router (docs/routing.md)
    ROUTER_UPDATE_FAILED = "RouterUpdateFailed"
    # identity
    USER_REGISTERED = "UserRegistered"
    USER_VERIFIED = "UserVerified"
    VERIFICATION_DELIVERY_FAILED = "VerificationDeliveryFailed"
    SESSION_STARTED = "SessionStarted"
    SESSION_ENDED = "SessionEnded"
    REFRESH_TOKEN_REUSED = "RefreshTokenReused"  # noqa: S105  # nosec B105  # a metric name
    LOGIN_FAILED = "LoginFailed"
    LOGIN_THROTTLED = "LoginThrottled"
    AUTHORIZER_DENIED = "AuthorizerDenied"


def count(metric: Metric, value: int = 1, **dimensions: str | None) -> None:
    """Count ``value`` of ``metric``.

    Always into the invocation's metrics (dimensions ``service`` and ``stage``, flushed by
    ``log_metrics``): the series alarms watch. With a dimension given (``channel=...``,
    ``provider=...``) also as its own EMF record with ``service``, ``stage`` and that dimension: the
    series the dashboard shows by channel. A dimension that is None or empty is left out (the
    channel of an unknown order, say). ``stage`` (the STAGE variable every function has) keeps two
    stages deployed in one account and region apart in the shared namespace.
    """
    stage = os.environ.get("STAGE")
    if stage:
        metrics.add_dimension(name="stage", value=stage)
    service = os.environ.get("POWERTOOLS_SERVICE_NAME")
    if service:  # as the formatter does: the running function's, where functions share a process
        metrics.add_dimension(name="service", value=service)
    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)
    known = {name: str(v) for name, v in dimensions.items() if v}
    if known:
        with single_metric(
            name=metric.value,
            unit=MetricUnit.Count,
            value=value,
            default_dimensions={"stage": stage} if stage else None,
        ) as one:
            for name, v in known.items():
                one.add_dimension(name=name, value=v)


# Keys that name what an invocation works on; :func:`log_keys` accepts only these.
CONTEXT_KEYS = ("user_id", "session_id", "order_id", "provider")


@contextmanager
def log_keys(**keys: str | None) -> Iterator[None]:
    """Add ``user_id``/``order_id``/... to every log line written inside the block, and to the trace.

    Thread-safe keys (a ContextVar): a local stack serving two requests at once on two threads
    keeps them apart. On exit the keys from before the block come back, so a loop over orders
    (the sweeper) never carries one order's id into the next one's lines.
    """
    unknown = set(keys) - set(CONTEXT_KEYS)
    if unknown:
        raise ValueError(f"log_keys takes only {CONTEXT_KEYS}, not {sorted(unknown)}")
    known = {name: value for name, value in keys.items() if value}
    before = dict(logger.thread_safe_get_current_keys())
    logger.thread_safe_append_keys(**known)
    for name, value in known.items():
        tracer.put_annotation(key=name, value=value)
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()
        if before:
            logger.thread_safe_append_keys(**before)

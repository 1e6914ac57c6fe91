"""Logger, metrics and tracer: created once per container, shared by every module.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` (set per function in template.yaml).
Log records pass through :class:`RedactingFormatter`, which masks any value whose key names a
secret (passwords, codes, tokens, keys, signatures) and anything shaped like a JWT or a Bearer
credential, wherever it appears in the record. The tracer never captures responses.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

REDACTED = "***"

# Keys whose values never reach a log line, matched case-insensitively on the whole key or a suffix.
_SECRET_KEY = re.compile(
    r"(password|passwd|secret|token|code|otp|signing_key|private_key|api_key|signature|"
    r"authorization|cookie|refresh|jwt|credential|x-signature|sandbox-signature|stripe-signature)$",
    re.IGNORECASE,
)
# Keys that end like a secret key but carry no secret.
_SAFE_KEYS = frozenset({"error_code", "status_code", "currency_code", "code_location", "token_type", "error"})
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered not in _SAFE_KEYS and bool(_SECRET_KEY.search(lowered))


def redact(value: Any, key: str | None = None) -> Any:
    """Return a copy of ``value`` with secrets masked (recursing into dicts, lists and strings)."""
    if key is not None and _is_secret_key(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _BEARER.sub("Bearer " + REDACTED, _JWT.sub(REDACTED, value))
    return value


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter with secret masking applied to the whole record."""

    def serialize(self, log: Any) -> str:
        return super().serialize(redact(dict(log)))


logger = Logger(logger_formatter=RedactingFormatter(), utc=True)
metrics = Metrics()
tracer = Tracer()

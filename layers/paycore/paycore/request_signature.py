"""The client's request signature (``X-Signature``) on every state-changing order call.

The scheme of the API contract (docs/orders.md has a worked example)::

    X-Signature: t=<unix seconds>,n=<nonce>,v1=<hex HMAC-SHA256(key, message)>
    key     = base64url-decoded signing_key from login (one per session)
    message = "<t>\\n<n>\\n<METHOD>\\n<path>\\n<hex SHA-256 of the raw body>"

:func:`verify` is a pure function of the key, the header, the request and the clock; the only
state it needs is a :class:`NonceStore` that claims a nonce once per session (a conditional put
on DynamoDB in production, see ``paycore.data.nonces``). Every failure is the same 401
``invalid_signature`` so a caller learns nothing about which part was wrong; the reason goes to
the log only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Protocol

from paycore.errors import Unauthorized
from paycore.observability import logger

HEADER = "X-Signature"
TOLERANCE_SECONDS = 300  # |now - t| <= 300 s, the contract's window (the same as Stripe's default)
# A nonce is kept as long as a request carrying it could still be inside the window.
NONCE_TTL_SECONDS = 2 * TOLERANCE_SECONDS

_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class NonceStore(Protocol):
    def claim(self, session_id: str, nonce: str, expires_at: int) -> bool:
        """Record ``nonce`` for the session; False when it was already used."""


@dataclass(frozen=True)
class ParsedSignature:
    timestamp: int
    nonce: str
    v1: str


def _refuse(reason: str) -> Unauthorized:
    logger.info("request signature refused", extra={"reason": reason})
    return Unauthorized("The request signature is missing or invalid.", code="invalid_signature")


def parse_header(header: str | None) -> ParsedSignature:
    """Split ``t=..,n=..,v1=..``; anything else (missing, garbled, repeated keys) is refused."""
    if not header or len(header) > 512:
        raise _refuse("missing or oversized header")
    fields: dict[str, str] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or key in fields:
            raise _refuse("garbled header")
        fields[key] = value
    if set(fields) != {"t", "n", "v1"}:
        raise _refuse("header fields are not exactly t, n, v1")
    if not fields["t"].isdigit() or len(fields["t"]) > 12:
        raise _refuse("timestamp is not unix seconds")
    if not _NONCE.match(fields["n"]):
        raise _refuse("nonce is not 8-128 url-safe characters")
    if not _HEX64.match(fields["v1"]):
        raise _refuse("v1 is not a lowercase hex SHA-256 HMAC")
    return ParsedSignature(timestamp=int(fields["t"]), nonce=fields["n"], v1=fields["v1"])


def message(timestamp: int, nonce: str, method: str, path: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n{body_hash}".encode()


def sign(key: bytes, timestamp: int, nonce: str, method: str, path: str, body: bytes) -> str:
    """The header value a client sends (used by tests, the e2e suite and docs' worked example)."""
    digest = hmac.new(key, message(timestamp, nonce, method, path, body), hashlib.sha256).hexdigest()
    return f"t={timestamp},n={nonce},v1={digest}"


def verify(
    *,
    key: bytes,
    header: str | None,
    method: str,
    path: str,
    body: bytes,
    now: float,
    session_id: str,
    nonces: NonceStore,
) -> None:
    """Accept the request or raise 401 ``invalid_signature``.

    The nonce is claimed last, only for a request whose signature is valid, so a forged request
    cannot burn a client's nonce.
    """
    parsed = parse_header(header)
    if abs(now - parsed.timestamp) > TOLERANCE_SECONDS:
        raise _refuse("timestamp outside the tolerance window")
    expected = hmac.new(key, message(parsed.timestamp, parsed.nonce, method, path, body), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parsed.v1):
        raise _refuse("signature does not match")
    if not nonces.claim(session_id, parsed.nonce, parsed.timestamp + NONCE_TTL_SECONDS):
        raise _refuse("nonce already used in this session")

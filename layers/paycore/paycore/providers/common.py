"""Helpers shared by the provider adapters: headers, merchant references, amounts, signatures, HTTP.

Everything here is provider-neutral and deterministic; each adapter cites the provider's own
documentation for the scheme it builds from these parts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from paycore.providers.base import InvalidCallback, ProviderError

if TYPE_CHECKING:  # cryptography is imported where keys are used, not at import
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A request header by name, ignoring case (API Gateway keeps the client's spelling)."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


# ---------------------------------------------------------------- merchant references

_SAFE_REF = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def merchant_ref(our_id: str) -> str:
    """Our id as a merchant reference that Alipay and WeChat Pay accept.

    Alipay's out_trade_no allows letters, digits and underscores (64 max); WeChat Pay's allows
    letters, digits and ``_-|*`` (6 to 32). A UUID in canonical form (our order and refund ids:
    lower case, hyphenated) becomes its 32 hex digits; an id already in the common alphabet is sent
    as it is; anything else (including 32 bare hex digits, which would come back as a UUID) is refused.
    """
    try:
        parsed = uuid.UUID(our_id)
    except ValueError:
        parsed = None
    if parsed is not None and str(parsed) == our_id:
        return parsed.hex
    if _SAFE_REF.match(our_id) and not _HEX32.match(our_id):
        return our_id
    raise ProviderError(f"id {our_id!r} cannot be sent as a merchant reference", provider="common", retryable=False)


def our_id(ref: str) -> str:
    """The inverse of :func:`merchant_ref`: 32 hex digits are a UUID in its canonical form."""
    return str(uuid.UUID(ref)) if _HEX32.match(ref) else ref


# ---------------------------------------------------------------- amounts

_YUAN = re.compile(r"^(0|[1-9][0-9]{0,12})\.([0-9]{2})$")


def yuan_to_fen(text: Any) -> int:
    """A yuan amount with exactly two decimals ("10.50") as integer fen; anything else is refused.

    No float ever touches the value: "10.5", "1e2", "10", " 10.00", "-1.00" and full-width digits are all
    refused rather than guessed, since a callback's amount must match the order exactly.
    """
    if not isinstance(text, str) or not text.isascii():
        raise InvalidCallback("amount is not a yuan string with two decimals")
    match = _YUAN.match(text)
    if match is None:
        raise InvalidCallback("amount is not a yuan string with two decimals")
    return int(match.group(1)) * 100 + int(match.group(2))


def fen_to_yuan(fen: int) -> str:
    """Integer fen as the yuan string Alipay expects ("0.01", "10.50")."""
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise ValueError(f"amount must be a non-negative integer of fen, got {fen!r}")
    return f"{fen // 100}.{fen % 100:02d}"


# ---------------------------------------------------------------- timestamped HMAC (Stripe's scheme)


def verify_timestamped_hmac(
    header_value: str | None, raw_body: bytes, secrets: Iterable[str], *, now: float, tolerance: int = 300
) -> int:
    """Verify ``t=<unix>,v1=<hex>[,v1=<hex>...]`` over ``"<t>.<raw body>"`` with HMAC-SHA256.

    This is Stripe's webhook scheme (docs.stripe.com/webhooks#verify-manually): any ``v1`` may
    match any of ``secrets`` (endpoint secret rotation sends several), compared in constant time,
    and ``|now - t|`` must be within ``tolerance`` seconds. Returns ``t``; raises InvalidCallback.
    """
    if not header_value:
        raise InvalidCallback("signature header missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header_value.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not value.isdigit() or timestamp is not None:
                raise InvalidCallback("signature header has a malformed timestamp")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value.strip())
    if timestamp is None or not signatures:
        raise InvalidCallback("signature header lacks t= or v1=")
    signed = str(timestamp).encode() + b"." + raw_body
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets if s]
    if not expected:
        raise ProviderError("no webhook secret configured", provider="common", retryable=False)
    # Every pair is compared so the time taken does not depend on which one matched.
    matched = False
    for candidate in signatures:
        for digest in expected:
            matched |= hmac.compare_digest(candidate.encode(), digest.encode())
    if not matched:
        raise InvalidCallback("signature does not match")
    if abs(now - timestamp) > tolerance:
        raise InvalidCallback("signature timestamp outside the tolerance")
    return timestamp


# ---------------------------------------------------------------- RSA (SHA256withRSA, PKCS#1 v1.5)


def _pem(text: str, kind: str) -> bytes:
    """Accept a PEM block or the bare base64 body that consoles show (Alipay's key tool does)."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "".join(text.split())
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n".encode()


@lru_cache(maxsize=16)
def load_private_key(text: str) -> RSAPrivateKey:
    """An RSA private key from PKCS#8 or PKCS#1 PEM, or a bare base64 PKCS#8/PKCS#1 body."""
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    last: Exception | None = None
    candidates = [_pem(text, "PRIVATE KEY")]
    if not text.strip().startswith("-----BEGIN"):
        candidates.append(_pem(text, "RSA PRIVATE KEY"))
    for pem in candidates:
        try:
            key = load_pem_private_key(pem, password=None)
        except ValueError as exc:
            last = exc
            continue
        if isinstance(key, RSAPrivateKey):
            return key
    raise ValueError("not an RSA private key") from last


@lru_cache(maxsize=32)
def load_public_key(text: str) -> RSAPublicKey:
    """An RSA public key from a SubjectPublicKeyInfo PEM, a bare base64 body, or an X.509 certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    stripped = text.strip()
    if stripped.startswith("-----BEGIN CERTIFICATE"):
        key: Any = x509.load_pem_x509_certificate(stripped.encode()).public_key()
    else:
        key = load_pem_public_key(_pem(stripped, "PUBLIC KEY"))
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def rsa_sign(private_key_text: str, message: bytes) -> str:
    """Base64 SHA256withRSA (PKCS#1 v1.5) signature of ``message``."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = load_private_key(private_key_text).sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def rsa_verify(public_key_text: str, message: bytes, signature_b64: str | None) -> bool:
    """True when ``signature_b64`` is a valid SHA256withRSA signature of ``message``."""
    import base64
    import binascii

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    if not signature_b64:
        return False
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        load_public_key(public_key_text).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# ---------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return header(self.headers, name)


def http_request(
    method: str,
    url: str,
    *,
    provider: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float,
) -> HttpResponse:
    """One HTTP exchange with a provider's API. Every status comes back as a response (the
    adapters read the providers' error bodies); only a failure to exchange raises ProviderError."""
    import urllib.error
    import urllib.request

    if not url.startswith(("https://", "http://")):
        raise ProviderError(f"refusing a non-HTTP URL for {provider}", provider=provider, retryable=False)
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310  # scheme checked above
            return HttpResponse(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpResponse(exc.code, dict(exc.headers.items()), exc.read())
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ProviderError(f"{provider} could not be reached: {type(exc).__name__}", provider=provider) from exc

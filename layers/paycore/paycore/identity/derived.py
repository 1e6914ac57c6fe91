"""Keys derived from the identity HMAC secret: session signing keys and the verification-code pepper.

The secret (``IdentityHmacSecret`` in template.yaml) is a JSON object of versions and a pointer to
the current one::

    {"current": "v2", "v1": "<64 random characters>", "v2": "<64 random characters>"}

Everything derived from it records the version it used (a session stores ``key_version``), so
adding a version and making it current changes what new sessions get while live sessions keep
deriving the key they were given. HKDF-SHA256 (RFC 5869) turns a version's value into a 256-bit
key per purpose and context; the purpose label keeps the uses apart. See docs/identity.md,
"Session signing keys: derived, not stored".
"""

from __future__ import annotations

import secrets
import string
from typing import Any, Final

from paycore.config import identity_settings
from paycore.errors import ConfigurationError

KEY_BYTES: Final = 32
SESSION_SIGNING_KEY: Final = b"serverless-payments/session-signing-key/1"
VERIFICATION_CODE_PEPPER: Final = b"serverless-payments/verification-code-pepper/1"

# A version's value: 64 characters from [A-Za-z0-9] carry 64 * log2(62) ~ 381 bits.
VALUE_LENGTH: Final = 64
_ALPHABET: Final = string.ascii_letters + string.digits


class UnknownKeyVersion(Exception):
    """The secret no longer holds a version that a stored record refers to."""


def new_value() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(VALUE_LENGTH))


def new_secret() -> dict[str, str]:
    """A fresh secret value with one version, ``v1``, current."""
    return {"current": "v1", "v1": new_value()}


def add_version(secret: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A copy of ``secret`` with a new version made current; returns it and the new version name."""
    numbers = [int(k[1:]) for k in secret if k.startswith("v") and k[1:].isdigit()]
    version = f"v{max(numbers, default=0) + 1}"
    return {**secret, version: new_value(), "current": version}, version


def remove_version(secret: dict[str, Any], version: str) -> dict[str, Any]:
    if secret.get("current") == version:
        raise ValueError(f"{version} is the current version; add another before removing it")
    if version not in secret:
        raise ValueError(f"no version {version!r} in the secret")
    return {k: v for k, v in secret.items() if k != version}


def derive(root: str, purpose: bytes, context: bytes) -> bytes:
    """HKDF-SHA256 of a version's value, for one purpose and context; 32 bytes."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose + b"\x00" + context).derive(
        root.encode("utf-8")
    )


def _secret() -> dict[str, Any]:
    from paycore import secrets as secret_store

    settings = identity_settings()
    value = secret_store.get_json(settings.hmac_secret, max_age=settings.secrets_cache_seconds)
    if not isinstance(value.get("current"), str) or not isinstance(value.get(value["current"]), str):
        raise ConfigurationError("the identity HMAC secret has no current version (run `make keys`)")
    return value


def current_version() -> str:
    return str(_secret()["current"])


def key_for(version: str, purpose: bytes, context: bytes) -> bytes:
    """The key for ``purpose``/``context`` under ``version``; raises UnknownKeyVersion when that
    version has been removed from the secret."""
    root = _secret().get(version)
    if not isinstance(root, str):
        raise UnknownKeyVersion(version)
    return derive(root, purpose, context)

"""The server's Ed25519 signing keys: access tokens, detached signatures and the JWKS.

The private keys live in Secrets Manager (``JwtSigningKeysSecret``) as a JSON object::

    {"active": "<kid>", "keys": {"<kid>": "<PKCS#8 PEM of an Ed25519 private key>", ...}}

Every key in ``keys`` is published at ``/.well-known/jwks.json`` and accepted by verifiers; only
``active`` signs. A ``kid`` is the key's RFC 7638 JWK thumbprint (SHA-256, base64url), so anyone can
recompute it from the published key. Rotation (docs/identity.md, "Key rotation"): ``add`` a key
(published, not yet signing), wait out the caches, ``activate`` it, wait until nothing signed by
the old key needs checking, ``retire`` the old one. The functions that edit the secret value are pure, so
``infra/keys.py`` (deployed stages) and ``infra/local/secrets.py`` (local stack, tests) share them.

Algorithm: EdDSA over Ed25519 (RFC 8037), pinned on both sides: a verifier here accepts no other
``alg``, so ``none`` and HMAC-with-the-public-key tokens are refused before any key is used.

``cryptography`` and ``jwt`` are imported on first use, by the functions that sign or verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from paycore.config import identity_settings
from paycore.errors import ConfigurationError

ALGORITHM: Final = "EdDSA"
ALGORITHMS: Final = [ALGORITHM]  # the only algorithm any verifier here accepts


class BadSignature(Exception):
    """A detached signature that does not verify with any published key."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_jwk(public_key: Any) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, no white space."""
    members = {k: jwk[k] for k in ("crv", "kty", "x")}
    return b64url(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def new_private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode("ascii")


def _load_private(pem: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError("a JWT signing key is not an Ed25519 private key")
    return key


def kid_of(pem: str) -> str:
    return thumbprint(_public_jwk(_load_private(pem).public_key()))


# ---------------------------------------------------------------- editing the secret value (pure)
def add_key(secret: dict[str, Any] | None, *, activate: bool = False) -> tuple[dict[str, Any], str]:
    """A copy of ``secret`` with a new key (published at once; active only if ``activate`` or if it is
    the first key). Returns the new value and the new kid."""
    current = dict(secret or {})
    keys = dict(current.get("keys") or {})
    pem = new_private_key_pem()
    kid = kid_of(pem)
    keys[kid] = pem
    active = kid if activate or not current.get("active") else current["active"]
    return {"active": active, "keys": keys}, kid


def activate_key(secret: dict[str, Any], kid: str) -> dict[str, Any]:
    if kid not in (secret.get("keys") or {}):
        raise ValueError(f"no key {kid!r} in the secret")
    return {**secret, "active": kid}


def retire_key(secret: dict[str, Any], kid: str) -> dict[str, Any]:
    if secret.get("active") == kid:
        raise ValueError(f"{kid} is the active key; activate another one first")
    keys = dict(secret.get("keys") or {})
    if kid not in keys:
        raise ValueError(f"no key {kid!r} in the secret")
    del keys[kid]
    return {**secret, "keys": keys}


# ---------------------------------------------------------------- the loaded key set
@dataclass(frozen=True)
class KeySet:
    active_kid: str
    private_keys: dict[str, Any]  # kid -> Ed25519PrivateKey
    public_keys: dict[str, Any]  # kid -> Ed25519PublicKey

    @classmethod
    def from_secret(cls, secret: dict[str, Any]) -> KeySet:
        pems = secret.get("keys") or {}
        active = secret.get("active")
        if not pems or active not in pems:
            raise ConfigurationError("the JWT signing key secret has no active key (run `make keys`)")
        private = {kid: _load_private(pem) for kid, pem in pems.items()}
        return cls(
            active_kid=str(active),
            private_keys=private,
            public_keys={kid: key.public_key() for kid, key in private.items()},
        )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        keys = []
        for kid, public_key in self.public_keys.items():
            keys.append({**_public_jwk(public_key), "kid": kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": keys}

    def sign_detached(self, payload: bytes) -> str:
        import jwt

        return jwt.api_jws.PyJWS().encode(
            payload,
            self.private_keys[self.active_kid],
            algorithm=ALGORITHM,
            headers={"kid": self.active_kid, "typ": None},
            is_payload_detached=True,
        )

    def verify_detached(self, signature: str, payload: bytes) -> dict[str, Any]:
        import jwt

        try:
            header = jwt.get_unverified_header(signature)
            key = self.public_keys.get(str(header.get("kid")))
            if key is None or header.get("alg") != ALGORITHM:
                raise BadSignature("unknown key or algorithm")
            jwt.api_jws.PyJWS().decode_complete(signature, key, algorithms=ALGORITHMS, detached_payload=payload)
        except jwt.PyJWTError as exc:
            raise BadSignature(str(exc)) from exc
        return dict(header)


@lru_cache(maxsize=4)
def _parse(raw: str) -> KeySet:
    return KeySet.from_secret(json.loads(raw))


def current_key_set() -> KeySet:
    """The key set in Secrets Manager, re-read at most every ``SECRETS_CACHE_SECONDS``; keys are
    parsed once per distinct secret value."""
    from paycore import secrets as secret_store

    settings = identity_settings()
    value = secret_store.get_json(settings.jwt_keys_secret, max_age=settings.secrets_cache_seconds)
    return _parse(json.dumps(value))  # insertion order kept: the JWKS lists keys as the secret does


def jwks() -> dict[str, list[dict[str, str]]]:
    return current_key_set().jwks()


def sign_detached(payload: bytes) -> str:
    """A compact JWS over ``payload`` with the payload detached and unencoded (RFC 7515 appendix F
    with RFC 7797 ``b64: false``): ``<base64url(header)>..<base64url(signature)>``, the header being
    ``{"alg":"EdDSA","b64":false,"crit":["b64"],"kid":"<kid>"}``. The signing input is
    ``base64url(header) + "." + payload``; verify it with the key of that kid in the JWKS."""
    return current_key_set().sign_detached(payload)


def verify_detached(signature: str, payload: bytes) -> dict[str, Any]:
    """The protected header when ``signature`` is a valid :func:`sign_detached` signature over
    ``payload`` by a published key; raises :class:`BadSignature` otherwise."""
    return current_key_set().verify_detached(signature, payload)

"""Access tokens: short-lived JWTs signed with the active Ed25519 key.

Header ``{"alg": "EdDSA", "kid": <kid>, "typ": "at+jwt"}`` (RFC 9068 names the type); claims
``iss``, ``aud``, ``sub`` (user id), ``sid`` (session id), ``iat``, ``exp`` (15 minutes later),
``jti`` (unique per token) and ``token_use: "access"``. Refresh tokens are not JWTs at all (opaque
random strings, see :mod:`paycore.identity.sessions`), and any JWT whose ``token_use`` or ``typ``
is not the access type is refused, so neither can stand in for an access token.

:func:`decode_access_token` checks, in order: the header parses, ``alg`` is exactly EdDSA, ``typ``
is ``at+jwt``, the ``kid`` is a published key, the signature verifies with that key (PyJWT with
``algorithms=["EdDSA"]``), every claim above is present, ``iss`` and ``aud`` match, ``token_use``
is ``access``, and ``iat <= now < exp`` (30 s leeway on ``iat`` only, for clock skew between
containers). The clock is a parameter so the tests can freeze it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from paycore.identity.keys import ALGORITHM, ALGORITHMS, KeySet

ACCESS_TOKEN_SECONDS: Final = 15 * 60
TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 - a type name, not a secret
TOKEN_USE: Final = "access"  # noqa: S105 - a type name, not a secret
IAT_LEEWAY_SECONDS: Final = 30
REQUIRED_CLAIMS: Final = ("iss", "aud", "sub", "sid", "iat", "exp", "jti", "token_use")


class InvalidToken(Exception):
    """The token is refused; ``reason`` is a short label for logs and metrics (never the token)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    token_id: str
    expires_at: int


def encode_access_token(keys: KeySet, *, issuer: str, audience: str, user_id: str, session_id: str, now: int) -> str:
    import jwt

    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": user_id,
        "sid": session_id,
        "iat": now,
        "exp": now + ACCESS_TOKEN_SECONDS,
        "jti": uuid.uuid4().hex,
        "token_use": TOKEN_USE,
    }
    headers = {"kid": keys.active_kid, "typ": TOKEN_TYPE}
    return jwt.encode(claims, keys.private_keys[keys.active_kid], algorithm=ALGORITHM, headers=headers)


def decode_access_token(
    token: str, keys: KeySet, *, issuer: str, audience: str, now: int | None = None
) -> AccessClaims:
    """The claims of a valid access token; raises :class:`InvalidToken` for anything else."""
    import jwt

    now = int(time.time()) if now is None else now
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken("malformed") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("algorithm")
    if header.get("typ") != TOKEN_TYPE:
        raise InvalidToken("token_type")
    key = keys.public_keys.get(str(header.get("kid")))
    if key is None:
        raise InvalidToken("unknown_kid")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=audience,
            issuer=issuer,
            # Time is checked below against ``now``; PyJWT checks signature, iss, aud and presence.
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.InvalidAudienceError as exc:
        raise InvalidToken("audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise InvalidToken("issuer") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken("missing_claim") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("signature") from exc
    if claims.get("token_use") != TOKEN_USE:
        raise InvalidToken("token_type")
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int) or not isinstance(iat, int):
        raise InvalidToken("malformed")
    if now >= exp:
        raise InvalidToken("expired")
    if iat > now + IAT_LEEWAY_SECONDS:
        raise InvalidToken("not_yet_valid")
    if not isinstance(claims["sub"], str) or not isinstance(claims["sid"], str):
        raise InvalidToken("malformed")
    return AccessClaims(user_id=claims["sub"], session_id=claims["sid"], token_id=str(claims["jti"]), expires_at=exp)

"""Real key material and a verified sender for a fresh moto (local stack and tests).

``provision()`` creates the template's secrets empty (values are never in template.yaml). Right
after it, :func:`seed_secrets` generates an Ed25519 JWT signing key and a random identity HMAC
secret, exactly as ``make keys`` does on a deployed stage, and puts them in; and
:func:`verify_ses_sender` verifies the register function's sender address, since moto, like SES,
rejects mail from an unverified sender. :func:`prepare_identity` does both (the tests' ``aws``
fixture calls it); :func:`seed_identity_keys` is the same seeding in the no-argument form of the
local stack's start-up seeders.
"""

from __future__ import annotations

import json
from typing import Any

from infra.local.template import Resolver


def put_fresh_keys(secrets_client: Any, *, jwt_keys_secret: str, hmac_secret: str) -> str:
    """Put a new active JWT signing key and a new HMAC secret (version v1) into the two secrets;
    returns the kid (never key material)."""
    from paycore.identity import derived, keys

    jwt_value, kid = keys.add_key(None, activate=True)
    secrets_client.put_secret_value(SecretId=jwt_keys_secret, SecretString=json.dumps(jwt_value))
    secrets_client.put_secret_value(SecretId=hmac_secret, SecretString=json.dumps(derived.new_secret()))
    return kid


def seed_secrets(session: Any, resolver: Resolver, *, endpoint_url: str | None = None) -> dict[str, str]:
    """Fill the template's ``JwtSigningKeysSecret`` and ``IdentityHmacSecret`` as ``provision()``
    created them with ``session``; returns the active kid."""
    client = session.client("secretsmanager", region_name=resolver.region, endpoint_url=endpoint_url)
    kid = put_fresh_keys(
        client,
        jwt_keys_secret=str(resolver.ref("JwtSigningKeysSecret")),
        hmac_secret=str(resolver.ref("IdentityHmacSecret")),
    )
    return {"jwt_active_kid": kid}


def verify_ses_sender(session: Any, resolver: Resolver, *, endpoint_url: str | None = None) -> str:
    """Mark the register function's sender (the SesSenderAddress parameter) verified in SES."""
    sender = str(resolver.ref("SesSenderAddress"))
    ses = session.client("ses", region_name=resolver.region, endpoint_url=endpoint_url)
    ses.verify_email_identity(EmailAddress=sender)
    return sender


def prepare_identity(session: Any, resolver: Resolver, *, endpoint_url: str | None = None) -> dict[str, str]:
    """Everything identity needs in a freshly provisioned moto: keys, and a sender SES accepts."""
    seeded = seed_secrets(session, resolver, endpoint_url=endpoint_url)
    seeded["ses_sender"] = verify_ses_sender(session, resolver, endpoint_url=endpoint_url)
    return seeded


def seed_identity_keys() -> str:
    """:func:`seed_secrets` as a no-argument seeder: run with the stage's Globals environment, it
    fills the secrets ``JWT_KEYS_SECRET_ARN`` and ``IDENTITY_HMAC_SECRET_ARN`` name, through
    paycore's client (so at ``AWS_ENDPOINT_URL``). Returns the start-up summary line."""
    from paycore.aws import client
    from paycore.config import identity_settings

    settings = identity_settings()
    kid = put_fresh_keys(
        client("secretsmanager"), jwt_keys_secret=settings.jwt_keys_secret, hmac_secret=settings.hmac_secret
    )
    return f"JWT signing key {kid} (active) and identity HMAC secret v1"

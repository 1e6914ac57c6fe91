"""Real key material and a verified sender for a fresh moto (local stack and tests).

``provision()`` creates the template's secrets empty (values are never in template.yaml). Call
:func:`seed_secrets` right after it: it generates an Ed25519 JWT signing key and a random identity
HMAC secret, exactly as ``make keys`` does on a deployed stage, and puts them in. Call
:func:`verify_ses_sender` too: moto, like SES, rejects mail from an unverified sender.
"""

from __future__ import annotations

import json
from typing import Any

from infra.local.template import Resolver


def _client(session: Any, resolver: Resolver, service: str, endpoint_url: str | None) -> Any:
    return session.client(service, region_name=resolver.region, endpoint_url=endpoint_url)


def seed_secrets(session: Any, resolver: Resolver, *, endpoint_url: str | None = None) -> dict[str, str]:
    """Put fresh key material into ``JwtSigningKeysSecret`` and ``IdentityHmacSecret``; returns the
    active JWT kid and the HMAC version (never the values)."""
    from paycore.identity import derived, keys

    secrets = _client(session, resolver, "secretsmanager", endpoint_url)
    jwt_value, kid = keys.add_key(None, activate=True)
    secrets.put_secret_value(SecretId=resolver.ref("JwtSigningKeysSecret"), SecretString=json.dumps(jwt_value))
    hmac_value = derived.new_secret()
    secrets.put_secret_value(SecretId=resolver.ref("IdentityHmacSecret"), SecretString=json.dumps(hmac_value))
    return {"jwt_active_kid": kid, "hmac_current_version": hmac_value["current"]}


def ses_sender(resolver: Resolver) -> str:
    """The verification emails' From address, as the template gives it to the register function."""
    return str(resolver.ref("SesSenderAddress"))


def verify_ses_sender(session: Any, resolver: Resolver, *, endpoint_url: str | None = None) -> str:
    """Mark the configured sender address verified in moto's SES; returns the address."""
    sender = ses_sender(resolver)
    _client(session, resolver, "ses", endpoint_url).verify_email_identity(EmailAddress=sender)
    return sender


def prepare_identity(session: Any, resolver: Resolver, *, endpoint_url: str | None = None) -> dict[str, str]:
    """Everything identity needs in a freshly provisioned moto: keys, and a sender SES accepts."""
    seeded = seed_secrets(session, resolver, endpoint_url=endpoint_url)
    seeded["ses_sender"] = verify_ses_sender(session, resolver, endpoint_url=endpoint_url)
    return seeded

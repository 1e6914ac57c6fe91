"""The API Gateway Lambda authorizer's decision: an IAM policy that allows or denies one call.

Per call (the authorizer result is not cached: ``ReauthorizeEvery: 0`` in template.yaml), it
checks the ``Authorization: Bearer <jwt>`` header, the JWT as :func:`paycore.identity.tokens.
decode_access_token` describes (pinned EdDSA, published ``kid``, signature, ``iss``, ``aud``,
``exp``, ``iat``, ``token_use``), and then reads the session (one consistent GetItem): it must
exist, belong to the token's ``sub``, be active and unexpired, so a logout or a revocation refuses
the very next call. A refused token is a Deny (API Gateway answers 401 through the ACCESS_DENIED
gateway response), never an exception; an outage of DynamoDB or Secrets Manager raises, so the
call fails closed (500) and the function's error alarm sees it.

Allow carries ``principalId`` = the user id and ``context = {"user_id", "session_id",
"key_version"}``, which backends read at ``event["requestContext"]["authorizer"]``
(:func:`paycore.api.caller`). ``key_version`` is the session's signing-key version (not a secret:
a version label of the HMAC secret): the order routes derive the session's ``X-Signature`` key from
it instead of reading the session a second time in the same request.
Accepts both TOKEN events (``authorizationToken``) and REQUEST events (``headers``).
"""

from __future__ import annotations

import time
from typing import Any

from paycore.config import identity_settings
from paycore.identity import keys, sessions, tokens
from paycore.observability import Metric, count, logger

ANONYMOUS = "anonymous"


def bearer_token(event: dict[str, Any]) -> str | None:
    raw = event.get("authorizationToken")
    if raw is None:
        headers = event.get("headers") or {}
        raw = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if not isinstance(raw, str):
        return None
    scheme, _, token = raw.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def policy(effect: str, principal_id: str, method_arn: str, context: dict[str, str] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
        },
    }
    if context is not None:
        result["context"] = context
    return result


def _deny(method_arn: str, reason: str) -> dict[str, Any]:
    logger.info("access denied", extra={"deny_reason": reason})
    count(Metric.AUTHORIZER_DENIED)
    return policy("Deny", ANONYMOUS, method_arn)


def authorize(event: dict[str, Any], *, now: int | None = None) -> dict[str, Any]:
    now = int(time.time()) if now is None else now
    method_arn = str(event.get("methodArn", "*"))
    token = bearer_token(event)
    if token is None:
        return _deny(method_arn, "no_bearer_token")
    settings = identity_settings()
    try:
        claims = tokens.decode_access_token(
            token, keys.current_key_set(), issuer=settings.issuer, audience=settings.audience, now=now
        )
    except tokens.InvalidToken as exc:
        return _deny(method_arn, exc.reason)
    key_version = sessions.active_key_version(claims.session_id, claims.user_id, now=now)
    if key_version is None:
        return _deny(method_arn, "session_inactive")
    context = {"user_id": claims.user_id, "session_id": claims.session_id, "key_version": key_version}
    return policy("Allow", claims.user_id, method_arn, context=context)

"""Who is calling, and whether their request is signed (``X-Signature``).

The caller comes from the Lambda authorizer's context (``user_id``, ``session_id``); the signing
key is the session's (``paycore.identity.sessions.signing_key_for``), which also refuses a
session that has ended.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paycore import request_signature
from paycore.data.nonces import DynamoNonceStore
from paycore.errors import Unauthorized
from paycore.providers.common import header as find_header


@dataclass(frozen=True)
class Caller:
    user_id: str
    session_id: str


def caller_from_event(event: Mapping[str, Any]) -> Caller:
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    user_id, session_id = context.get("user_id"), context.get("session_id")
    if not user_id or not session_id:
        raise Unauthorized("A valid Bearer access token is required.")
    return Caller(user_id=str(user_id), session_id=str(session_id))


def route_path(event: Mapping[str, Any]) -> str:
    """The contract's ``<path>``: the route as declared with its values filled in (no stage prefix,
    no query string), e.g. ``/orders/3f2…/refunds``."""
    resource = str(event.get("resource") or event.get("path") or "")
    params = event.get("pathParameters") or {}
    return re.sub(r"\{([^}+]+)\+?\}", lambda m: str(params.get(m.group(1), m.group(0))), resource)


def verify_request(caller: Caller, headers: Mapping[str, str], method: str, path: str, body: bytes, now: float) -> None:
    from paycore.identity.sessions import signing_key_for  # type: ignore[import-not-found,unused-ignore]

    header = find_header(headers, request_signature.HEADER)
    # Parse first: a garbled header costs no session lookup.
    request_signature.parse_header(header)
    key: bytes = signing_key_for(caller.session_id)
    request_signature.verify(
        key=key,
        header=header,
        method=method,
        path=path,
        body=body,
        now=now,
        session_id=caller.session_id,
        nonces=DynamoNonceStore(),
    )

"""Whether an order request is signed (``X-Signature``) by the caller's session.

The caller comes from the Lambda authorizer's context (``paycore.api.caller``); the signing key is
the session's (``paycore.identity.sessions.signing_key_for``), derived from the key version the
authorizer passes after its consistent read of the session in this same request (the authorizer
runs on every call, ``ReauthorizeEvery: 0``, so a session that has ended is refused there). Without
a key version in the context, the session is read here and an ended one is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from paycore import request_signature
from paycore.api import Caller
from paycore.data.nonces import DynamoNonceStore
from paycore.providers.common import header as find_header


def route_path(event: Mapping[str, Any]) -> str:
    """The contract's ``<path>``: the route as declared with its values filled in (no stage prefix,
    no query string), e.g. ``/orders/3f2…/refunds``."""
    resource = str(event.get("resource") or event.get("path") or "")
    params = event.get("pathParameters") or {}
    return re.sub(r"\{([^}+]+)\+?\}", lambda m: str(params.get(m.group(1), m.group(0))), resource)


def verify_request(caller: Caller, headers: Mapping[str, str], method: str, path: str, body: bytes, now: float) -> None:
    from paycore.identity.sessions import signing_key_for  # loaded on the first signed request

    header = find_header(headers, request_signature.HEADER)
    # Parse first: a garbled header costs no session lookup.
    request_signature.parse_header(header)
    key: bytes = signing_key_for(caller.session_id, caller.key_version)
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

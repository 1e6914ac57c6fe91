"""schemathesis hooks of the fuzz run (tests/e2e/test_fuzz.py; loaded with SCHEMATHESIS_HOOKS).

Operations whose security names ``requestSignature`` (docs/openapi.json) need an ``X-Signature``
computed over the exact bytes sent. schemathesis serializes the body itself, so the signature is
computed by a ``requests`` auth object, which sees the prepared request (method, path, final body)
just before it goes out. ``before_call`` hands that object to the transport (its ``auth`` keyword).

Only the cases under test are signed: the probes of the ``ignored_auth`` check go straight to the
transport without ``before_call`` and without credentials, and must be refused with 401.

The session's signing key comes from the JSON file named by ``FUZZ_AUTH_FILE`` (written by the
test, never logged): ``{"signing_key": "<base64url from login>"}``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis

SIGNATURE_SCHEME = "requestSignature"


@cache
def _signing_key() -> bytes:
    with open(os.environ["FUZZ_AUTH_FILE"], encoding="utf-8") as fh:
        encoded = json.load(fh)["signing_key"]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


class SignRequest(requests.auth.AuthBase):
    """Adds X-Signature over the prepared request, as a client of docs/orders.md does."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from paycore import request_signature

        body = request.body or b""
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        path = urlsplit(request.url or "").path
        request.headers[request_signature.HEADER] = request_signature.sign(
            _signing_key(), int(time.time()), secrets.token_urlsafe(16), request.method or "GET", path, raw
        )
        return request


def _signed(case: Any) -> bool:
    security = case.operation.definition.raw.get("security") or []
    return any(SIGNATURE_SCHEME in requirement for requirement in security)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if _signed(case):
        kwargs["auth"] = SignRequest()

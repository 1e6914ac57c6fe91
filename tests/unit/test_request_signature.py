"""X-Signature: the contract's scheme as a pure function (keys made here, nonces in memory)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from paycore import request_signature as rs
from paycore.errors import Unauthorized

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
NOW = 1_795_635_000
BODY = b'{"order_id":"0b7f9c1e-2d4a-4f6b-8c3e-5a1d9e7f2b60","amount":1000}'


class MemoryNonces:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def claim(self, session_id: str, nonce: str, expires_at: int) -> bool:
        if (session_id, nonce) in self.seen:
            return False
        self.seen.add((session_id, nonce))
        return True


def _verify(
    header: str | None,
    *,
    method: str = "POST",
    path: str = "/orders",
    body: bytes = BODY,
    now: float = NOW,
    nonces: MemoryNonces | None = None,
    key: bytes = KEY,
    session: str = "s1",
) -> None:
    rs.verify(
        key=key,
        header=header,
        method=method,
        path=path,
        body=body,
        now=now,
        session_id=session,
        nonces=nonces or MemoryNonces(),
    )


def test_the_message_is_the_contracts_five_lines() -> None:
    message = rs.message(NOW, "nonce-123", "post", "/orders", BODY)
    assert message == f"{NOW}\nnonce-123\nPOST\n/orders\n{hashlib.sha256(BODY).hexdigest()}".encode()


def test_a_signed_request_is_accepted_and_its_nonce_only_once() -> None:
    header = rs.sign(KEY, NOW, "nonce-123", "POST", "/orders", BODY)
    assert header == (
        f"t={NOW},n=nonce-123,v1="
        + hmac.new(KEY, rs.message(NOW, "nonce-123", "POST", "/orders", BODY), "sha256").hexdigest()
    )
    nonces = MemoryNonces()
    _verify(header, nonces=nonces)
    with pytest.raises(Unauthorized):
        _verify(header, nonces=nonces)
    _verify(header, nonces=nonces, session="s2")  # nonces are per session


@pytest.mark.parametrize(
    ("change", "kwargs"),
    [
        ("amount", {"body": BODY.replace(b"1000", b"1001")}),
        ("path", {"path": "/orders/0b7f9c1e-2d4a-4f6b-8c3e-5a1d9e7f2b60/cancel"}),
        ("method", {"method": "PUT"}),
        ("key", {"key": bytes(32)}),
        ("stale", {"now": NOW + 301}),
        ("future", {"now": NOW - 301}),
    ],
)
def test_any_change_is_401_invalid_signature(change: str, kwargs: dict) -> None:
    header = rs.sign(KEY, NOW, "nonce-123", "POST", "/orders", BODY)
    with pytest.raises(Unauthorized) as err:
        _verify(header, **kwargs)
    assert err.value.code == "invalid_signature"


def test_the_window_is_inclusive_at_300_seconds() -> None:
    header = rs.sign(KEY, NOW, "nonce-123", "POST", "/orders", BODY)
    _verify(header, now=NOW + 300)
    _verify(header, now=NOW - 300)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "t=1,n=nonce-123",
        f"t={NOW},n=nonce-123,v1=" + "A" * 64,
        f"t={NOW},n=nonce-123,v1=" + "0" * 63,
        f"t={NOW},t={NOW},n=nonce-123,v1=" + "0" * 64,
        "t=-5,n=nonce-123,v1=" + "0" * 64,
        f"t={NOW},n=short,v1=" + "0" * 64,
        f"t={NOW},n=nonce with spaces,v1=" + "0" * 64,
        f"t={NOW},n=nonce-123,v1=" + "0" * 64 + ",extra=1",
        "x" * 600,
    ],
)
def test_missing_or_garbled_headers_are_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        _verify(header)


def test_a_forged_request_does_not_burn_the_nonce() -> None:
    nonces = MemoryNonces()
    forged = f"t={NOW},n=nonce-123,v1=" + "0" * 64
    with pytest.raises(Unauthorized):
        _verify(forged, nonces=nonces)
    _verify(rs.sign(KEY, NOW, "nonce-123", "POST", "/orders", BODY), nonces=nonces)


def test_the_worked_example_in_docs_orders_md() -> None:
    import base64

    from tests.helpers import ROOT

    key = base64.urlsafe_b64decode("c2lnbmluZy1rZXktb2YtdGhpcy1zZXNzaW9uLTMyYnk" + "=")
    body = (
        b'{"order_id":"0b7f9c1e-2d4a-4f6b-8c3e-5a1d9e7f2b60","amount":1000,"currency":"CNY",'
        b'"channel":"auto","subject":"Coffee beans"}'
    )
    header = rs.sign(key, 1795635000, "Xk4vQ2mB9sLp7RwZ", "POST", "/orders", body)
    docs = (ROOT / "docs" / "orders.md").read_text(encoding="utf-8")
    assert hashlib.sha256(body).hexdigest() in docs
    assert f"X-Signature: {header}" in docs


def test_the_sandbox_example_in_docs_orders_md() -> None:
    from paycore.sandbox.webhooks import sign
    from tests.helpers import ROOT, load_event

    raw = load_event("callbacks", "sandbox_payment_succeeded")["body"].encode()
    docs = (ROOT / "docs" / "orders.md").read_text(encoding="utf-8")
    assert sign(b"whsec_example_only", 1795635000, raw) in docs

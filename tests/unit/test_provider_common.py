"""Amounts, merchant references and the signature primitives the adapters share."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

from paycore.providers.base import InvalidCallback, ProviderError
from paycore.providers.common import (
    fen_to_yuan,
    header,
    merchant_ref,
    our_id,
    rsa_sign,
    rsa_verify,
    verify_timestamped_hmac,
    yuan_to_fen,
)
from tests.provider_keys import bare_base64, private_pem, public_pem, sign

pytestmark = pytest.mark.unit

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(("text", "fen"), [("0.01", 1), ("10.50", 1050), ("88.88", 8888), ("100000000.00", 10**10)])
def test_yuan_with_two_decimals_is_exact_fen(text: str, fen: int) -> None:
    assert yuan_to_fen(text) == fen
    assert fen_to_yuan(fen) == text


@pytest.mark.parametrize(
    "text",
    [
        "10.5",
        "1e2",
        "10",
        "10.500",
        " 10.00",
        "10.00 ",
        "-1.00",
        "+1.00",
        "01.00",
        "1,00",
        "",
        None,
        10.5,
        "\uff11\uff10.\uff10\uff10",
    ],
)
def test_anything_but_yuan_with_two_decimals_is_refused(text: object) -> None:
    with pytest.raises(InvalidCallback):
        yuan_to_fen(text)


def test_fen_to_yuan_refuses_negative_and_non_integers() -> None:
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="non-negative integer"):
            fen_to_yuan(bad)  # type: ignore[arg-type]


def test_uuid_ids_become_32_hex_merchant_refs_and_come_back() -> None:
    order_id = str(uuid.uuid4())
    ref = merchant_ref(order_id)
    assert len(ref) == 32
    assert ref.isalnum()
    assert our_id(ref) == order_id
    assert merchant_ref("order_17") == "order_17"
    assert our_id("order_17") == "order_17"


@pytest.mark.parametrize("bad", ["order-17", "a" * 33, "订单", "0123456789abcdef0123456789abcdef"])
def test_ids_that_cannot_travel_as_merchant_refs_are_refused(bad: str) -> None:
    with pytest.raises(ProviderError):
        merchant_ref(bad)


def test_header_lookup_ignores_case() -> None:
    assert header({"stripe-signature": "x"}, "Stripe-Signature") == "x"
    assert header({"Wechatpay-Serial": "y"}, "wechatpay-serial") == "y"
    assert header({}, "x") is None


def _stripe_header(body: bytes, secret: str, t: int) -> str:
    return f"t={t},v1=" + hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def test_timestamped_hmac_accepts_any_matching_v1_and_any_configured_secret() -> None:
    body = b'{"id":"evt_1"}'
    good = _stripe_header(body, "whsec_new", NOW)
    other = _stripe_header(body, "whsec_other", NOW).split(",")[1]
    header_value = f"{good.split(',')[0]},{other},{good.split(',')[1]},v0=deadbeef"
    assert verify_timestamped_hmac(header_value, body, ["whsec_old", "whsec_new"], now=NOW + 299) == NOW


def test_stripe_library_headers_verify_with_our_check() -> None:
    import stripe

    body = '{"id":"evt_lib","object":"event"}'
    header_value = stripe.WebhookSignature.generate_signature_header(body, "whsec_lib", timestamp=NOW)
    assert verify_timestamped_hmac(header_value, body.encode(), ["whsec_lib"], now=NOW) == NOW


@pytest.mark.parametrize(
    ("case", "now"),
    [("wrong_secret", NOW), ("altered_body", NOW), ("stale", NOW + 301), ("future", NOW - 301), ("no_v1", NOW)],
)
def test_timestamped_hmac_refusals(case: str, now: int) -> None:
    body = b'{"id":"evt_1","amount":100}'
    secret = "whsec_other" if case == "wrong_secret" else "whsec_1"
    header_value = _stripe_header(body, secret, NOW)
    if case == "no_v1":
        header_value = f"t={NOW}"
    sent = b'{"id":"evt_1","amount":999}' if case == "altered_body" else body
    with pytest.raises(InvalidCallback):
        verify_timestamped_hmac(header_value, sent, ["whsec_1"], now=now)


@pytest.mark.parametrize("value", [None, "", "v1=abc", "t=abc,v1=abc", "t=1,t=2,v1=abc"])
def test_timestamped_hmac_malformed_headers(value: str | None) -> None:
    with pytest.raises(InvalidCallback):
        verify_timestamped_hmac(value, b"{}", ["whsec_1"], now=NOW)


def test_rsa_sign_and_verify_accept_pem_pkcs1_and_bare_base64_keys() -> None:
    message = "a=1&b=中文".encode()
    for private in (private_pem("common"), private_pem("common", pkcs1=True), bare_base64(private_pem("common"))):
        signature = rsa_sign(private, message)
        assert signature == sign("common", message)  # PKCS#1 v1.5 is deterministic
        assert rsa_verify(public_pem("common"), message, signature)
        assert rsa_verify(bare_base64(public_pem("common")), message, signature)
    assert not rsa_verify(public_pem("someone-else"), message, sign("common", message))
    assert not rsa_verify(public_pem("common"), message + b"x", sign("common", message))
    assert not rsa_verify(public_pem("common"), message, "not base64!")
    assert not rsa_verify(public_pem("common"), message, None)

import io
import json
import logging

import pytest

from paycore.observability import REDACTED, RedactingFormatter, redact

pytestmark = pytest.mark.unit


def test_secret_keys_are_masked_at_any_depth() -> None:
    given = {
        "username": "alice",
        "password": "hunter2hunter2",
        "nested": {"refresh_token": "r-123", "items": [{"code": "123456"}]},
    }
    out = redact(given)
    assert out["username"] == "alice"
    assert out["password"] == REDACTED
    assert out["nested"]["refresh_token"] == REDACTED
    assert out["nested"]["items"][0]["code"] == REDACTED


def test_error_codes_and_status_codes_are_not_masked() -> None:
    assert redact({"error_code": "invalid_state", "status_code": 409}) == {
        "error_code": "invalid_state",
        "status_code": 409,
    }


def test_jwt_and_bearer_values_are_masked_inside_free_text() -> None:
    jwt_like = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
    out = redact({"message": f"header was Bearer abc.def and token {jwt_like}"})
    assert jwt_like not in out["message"]
    assert "abc.def" not in out["message"]


def test_formatter_masks_extra_fields_in_the_emitted_json() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter())
    log = logging.getLogger("redaction-test")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    log.info("login", extra={"signing_key": "c2VjcmV0LWtleQ", "user_id": "u1"})
    line = json.loads(stream.getvalue())
    assert line["signing_key"] == REDACTED
    assert line["user_id"] == "u1"
    assert "c2VjcmV0LWtleQ" not in stream.getvalue()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # the X-Signature of an order request, and Stripe/sandbox webhook signature headers
        ("X-Signature: t=1700000000,n=Zm9vYmFy,v1=" + "ab12" * 16, "ab12" * 16),
        ("sandbox-signature t=1700000000,v1=" + "9f" * 32, "9f" * 32),
        ("Stripe-Signature: t=1,v1=" + "0a" * 32 + ",v0=" + "1b" * 32, "1b" * 32),
        # WeChat Pay's Authorization header
        ('WECHATPAY2-SHA256-RSA2048 mchid="1900",nonce_str="abc",signature="cGF5bWVudHNpZ25hdHVyZQ=="', "cGF5bWVudHNp"),
        # request and response bodies carried as strings
        ('{"refresh_token": "r3fr3sh-T0ken_value", "expires_in": 900}', "r3fr3sh-T0ken_value"),
        ('{"username": "a", "password": "hunter2 with spaces"}', "hunter2 with spaces"),
        ('{"signing_key": "c2VjcmV0LWtleS1ieXRlcw"}', "c2VjcmV0LWtleS1ieXRlcw"),
        ("app_id=2021&sign=QUxJUEFZU0lHTkFUVVJF&sign_type=RSA2", "QUxJUEFZU0lHTkFUVVJF"),
        ("username=bob&password=letmein123", "letmein123"),
        # verification codes in SES/SNS message text
        ("Your serverless-payments verification code is 493817. It expires in 10 minutes.", "493817"),
        ("OTP: 120934", "120934"),
        # provider keys by their documented prefixes, PEM private keys
        ("stripe key sk_live_51Habcdefghijklmnop in use", "sk_live_51Habcdefghijklmnop"),
        ("endpoint secret whsec_AbCdEf0123456789", "whsec_AbCdEf0123456789"),
        ("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIK\n-----END PRIVATE KEY-----", "MC4CAQAwBQYDK2VwBCIEIK"),
    ],
)
def test_secrets_inside_free_text_are_masked(text: str, secret: str) -> None:
    out = redact({"message": text, "detail": [text]})
    assert secret not in out["message"]
    assert secret not in out["detail"][0]
    assert REDACTED in out["message"]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ('{"error": {"code": "x", "message": "The request signature is invalid."}}', "signature is invalid"),
        ("order 3f2a created for 2500 CNY on channel sandbox", "2500 CNY on channel sandbox"),
        ("status_code=409 error_code=invalid_state", "status_code=409 error_code=invalid_state"),
        ("POST /orders -> 201 (user u-1) 42 ms", "POST /orders -> 201 (user u-1) 42 ms"),
        ("paid 2500 at 1700000000 for order 3f2a", "paid 2500 at 1700000000"),
    ],
)
def test_ordinary_text_keeps_what_matters(text: str, kept: str) -> None:
    assert kept in redact({"message": text})["message"]


def test_alipay_sign_key_and_header_style_keys_are_masked() -> None:
    out = redact({"sign": "QUxJUEFZ", "X-Signature": "t=1,n=2,v1=ab", "Wechatpay-Signature": "c2ln", "design": "ok"})
    assert out == {"sign": REDACTED, "X-Signature": REDACTED, "Wechatpay-Signature": REDACTED, "design": "ok"}

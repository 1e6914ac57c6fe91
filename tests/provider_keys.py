"""Keys, certificates and the provider side of each signature scheme, made in the test process.

Every key here is generated when the test session first asks for it; nothing is read from disk or
the network. The functions sign what Alipay and WeChat Pay would sign, so the adapters are checked
against the documented schemes from both sides.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from paycore.providers.accounts import ProviderAccount, StaticAccount


@cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """One 2048-bit RSA key per name for the whole session (generation costs ~0.1 s)."""
    del name  # the name only keys the cache: each name gets its own key
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(name: str, *, pkcs1: bool = False) -> str:
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if pkcs1 else serialization.PrivateFormat.PKCS8
    return rsa_key(name).private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def public_pem(name: str) -> str:
    return (
        rsa_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def bare_base64(pem: str) -> str:
    """The base64 body of a PEM block on one line, as Alipay's console shows keys."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


def sign(name: str, message: bytes) -> str:
    return base64.b64encode(rsa_key(name).sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(name: str, message: bytes, signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        rsa_key(name).public_key().verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


@cache
def certificate(name: str, serial: int, *, start_year: int = 2025, days_valid: int = 3650) -> str:
    """A self-signed certificate for key ``name`` with ``serial`` (a WeChat Pay platform certificate),
    valid from ``start_year`` for ``days_valid`` days: the tests' fixed clock and the real one."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Tenpay.com Root CA test {name}")])
    start = datetime(start_year, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(rsa_key(name).public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days_valid))
        .sign(rsa_key(name), hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


# ---------------------------------------------------------------- Alipay's side

ALIPAY_APP_ID = "2021000000000001"
ALIPAY_SELLER_ID = "2088000000000001"


def alipay_credentials() -> dict[str, Any]:
    return {
        "app_id": ALIPAY_APP_ID,
        "seller_id": ALIPAY_SELLER_ID,
        "app_private_key": bare_base64(private_pem("alipay-app")),  # as the key tool prints it
        "alipay_public_key": bare_base64(public_pem("alipay-platform")),
    }


def alipay_account(api_base: str = "http://127.0.0.1:9/gateway.do") -> StaticAccount:
    return StaticAccount(ProviderAccount("alipay", "test/alipay", api_base, alipay_credentials()))


def alipay_notification(
    params: dict[str, str], *, key: str = "alipay-platform", tamper: dict[str, str] | None = None
) -> bytes:
    """A form body as Alipay posts it: signed over the sorted params without sign/sign_type."""
    fields = {"charset": "utf-8", "sign_type": "RSA2", **params}
    content = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in ("sign", "sign_type") and fields[k])
    fields["sign"] = sign(key, content.encode())
    fields.update(tamper or {})
    return urlencode(fields).encode()


def alipay_answer(method: str, result: dict[str, Any], *, key: str = "alipay-platform") -> str:
    """An Alipay gateway answer: the ``*_response`` JSON text and its signature over that text."""
    member = method.replace(".", "_") + "_response"
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    return '{"' + member + '":' + text + ',"sign":"' + sign(key, text.encode()) + '"}'


# ---------------------------------------------------------------- WeChat Pay's side

WECHAT_MCHID = "1900000109"
WECHAT_APPID = "wxd678efh567hg6787"
WECHAT_APIV3_KEY = "0123456789abcdefghijABCDEFGHIJ01"  # 32 bytes
WECHAT_MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
WECHAT_PLATFORM_SERIAL_INT = 0x3775B6A45ACD588826D15E583A95F5DD
WECHAT_PLATFORM_SERIAL = format(WECHAT_PLATFORM_SERIAL_INT, "X")
WECHAT_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001012025010100000000000001"


def wechat_credentials() -> dict[str, Any]:
    return {
        "mchid": WECHAT_MCHID,
        "appid": WECHAT_APPID,
        "merchant_serial_no": WECHAT_MERCHANT_SERIAL,
        "merchant_private_key": private_pem("wechat-merchant", pkcs1=True),
        "apiv3_key": WECHAT_APIV3_KEY,
        "platform_certificates": [certificate("wechat-platform", WECHAT_PLATFORM_SERIAL_INT)],
        "wechatpay_public_key_id": WECHAT_PUBLIC_KEY_ID,
        "wechatpay_public_key": public_pem("wechat-pubkey"),
    }


def wechat_account(api_base: str = "http://127.0.0.1:9", **overrides: Any) -> StaticAccount:
    return StaticAccount(
        ProviderAccount("wechatpay", "test/wechatpay", api_base, {**wechat_credentials(), **overrides})
    )


def wechat_headers(
    body: bytes, *, timestamp: int, key: str = "wechat-pubkey", serial: str = WECHAT_PUBLIC_KEY_ID
) -> dict[str, str]:
    """The Wechatpay-* headers of a notification or an answer, signed over ts\\nnonce\\nbody\\n."""
    nonce = base64.b16encode(os.urandom(16)).decode()
    message = f"{timestamp}\n{nonce}\n{body.decode()}\n".encode()
    return {
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": sign(key, message),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def wechat_encrypt(
    resource: dict[str, Any], *, key: str = WECHAT_APIV3_KEY, associated_data: str = "transaction"
) -> dict[str, str]:
    nonce = base64.b16encode(os.urandom(6)).decode()  # 12 characters, as WeChat Pay sends
    ciphertext = AESGCM(key.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(), associated_data.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "original_type": associated_data,
        "nonce": nonce,
    }


def wechat_notification(event_type: str, resource: dict[str, Any], **encrypt: Any) -> bytes:
    """A notification envelope shaped like chapter3_4_5 (支付通知) / chapter3_4_11 (退款结果通知)."""
    envelope = {
        "id": "EV-2018022511223320873",
        "create_time": "2015-05-20T13:29:35+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": wechat_encrypt(resource, **encrypt),
    }
    return json.dumps(envelope, ensure_ascii=False).encode()

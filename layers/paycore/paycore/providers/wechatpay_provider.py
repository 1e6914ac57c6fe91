"""WeChat Pay API v3: Native payment (code_url), query, close, refund, notifications.

Written on ``cryptography`` rather than the community ``wechatpayv3`` SDK (docs/providers.md):
that SDK hard-codes the API host, downloads platform certificates over the network when it is
constructed (a cold-start call) and caches them on disk, supports either certificates or the
WeChat Pay public key but not both, and its notification check has no timestamp tolerance.
The documented scheme (pay.weixin.qq.com/wiki/doc/apiv3/wechatpay/wechatpay4_0.shtml 签名生成,
wechatpay4_1.shtml 签名验证, wechatpay4_2.shtml 回调报文解密; the "微信支付公钥" guide for PUB_KEY_ID_):

- Requests: ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",signature="..",
  timestamp="..",serial_no=".."`` where signature = base64 SHA256withRSA (merchant private key)
  over ``METHOD\\nURL path?query\\ntimestamp\\nnonce\\nbody\\n``.
- Answers and notifications: ``Wechatpay-Timestamp``, ``-Nonce``, ``-Signature``, ``-Serial``;
  signature over ``timestamp\\nnonce\\nbody\\n`` with the key that ``Wechatpay-Serial`` names:
  a platform certificate (hex serial) or the WeChat Pay public key (``PUB_KEY_ID_...``), both
  accepted during the migration between them. A timestamp more than 5 minutes from now is refused.
- Notification resource: AEAD_AES_256_GCM with the APIv3 key, ``nonce`` and ``associated_data``.
- Answer to a notification: 200/204 with no body when accepted; on refusal a 4xx with
  ``{"code": "FAIL", "message": "失败"}`` (wiki/doc/apiv3/apis/chapter3_4_5.shtml 支付通知).

APIs: chapter3_4_1 Native下单, chapter3_4_2 查询订单, chapter3_4_3 关闭订单, chapter3_4_9 申请退款,
chapter3_4_11 退款结果通知 (all under pay.weixin.qq.com/wiki/doc/apiv3/apis/).

Amounts are integer fen (CNY) both ways. out_trade_no: our UUID as 32 hex digits (6-32 chars).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from paycore.config import provider_settings
from paycore.errors import ConfigurationError
from paycore.providers.accounts import AccountSource, ChannelAccounts, ProviderAccount
from paycore.providers.base import (
    CallbackAck,
    CreatedPayment,
    EventKind,
    InvalidCallback,
    PaymentRequest,
    PaymentState,
    PaymentStatus,
    ProviderError,
    ProviderEvent,
    RefundResult,
    RefundStatus,
)
from paycore.providers.common import HttpResponse, header, http_request, merchant_ref, our_id, rsa_sign, rsa_verify

NAME = "wechatpay"
WECHATPAY_API = "https://api.mch.weixin.qq.com"
TOLERANCE = 300  # seconds: the 验签 docs tell to refuse a timestamp 5 minutes or more away
SCHEMA = "WECHATPAY2-SHA256-RSA2048"
BEIJING = timezone(timedelta(hours=8))
USER_AGENT = "serverless-payments/1.0"


def signing_message(*parts: str) -> bytes:
    """WeChat Pay's signed text: each part followed by a newline."""
    return "".join(f"{part}\n" for part in parts).encode("utf-8")


def decrypt_resource(apiv3_key: str, resource: Mapping[str, Any]) -> dict[str, Any]:
    """Decrypt a notification's AEAD_AES_256_GCM resource with the APIv3 key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise InvalidCallback("resource is not AEAD_AES_256_GCM")
    key = apiv3_key.encode("utf-8")
    if len(key) != 32:
        raise ConfigurationError("the WeChat Pay APIv3 key must be 32 bytes")
    try:
        nonce = str(resource["nonce"]).encode("utf-8")
        ciphertext = base64.b64decode(str(resource["ciphertext"]), validate=True)
        associated = resource.get("associated_data")
        plain = AESGCM(key).decrypt(nonce, ciphertext, str(associated).encode("utf-8") if associated else None)
        document = json.loads(plain)
    except (KeyError, ValueError, InvalidTag) as exc:
        raise InvalidCallback("resource does not decrypt with the APIv3 key") from exc
    if not isinstance(document, dict):
        raise InvalidCallback("decrypted resource is not an object")
    return document


def verification_keys(account: ProviderAccount, *, now: float) -> dict[str, str]:
    """Serial → public key text: every valid platform certificate and the WeChat Pay public key."""
    from cryptography import x509

    keys: dict[str, str] = {}
    for pem in account.credentials.get("platform_certificates") or []:
        cert = x509.load_pem_x509_certificate(str(pem).encode())
        moment = datetime.fromtimestamp(now, UTC)
        if cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            keys[format(cert.serial_number, "X")] = str(pem)
    key_id, public_key = (
        account.credentials.get("wechatpay_public_key_id"),
        account.credentials.get("wechatpay_public_key"),
    )
    if key_id and public_key:
        keys[str(key_id)] = str(public_key)
    if not keys:
        raise ConfigurationError(
            f"secret {account.secret_name!r} has no valid platform_certificates nor wechatpay_public_key(_id)"
        )
    return keys


def verify_signed(account: ProviderAccount, headers: Mapping[str, str], body: bytes, *, now: float) -> str:
    """Check the Wechatpay-* signature headers over ``body``; returns the serial used.

    Raises InvalidCallback (the caller turns it into ProviderError for API answers).
    """
    timestamp = header(headers, "Wechatpay-Timestamp")
    nonce = header(headers, "Wechatpay-Nonce")
    signature = header(headers, "Wechatpay-Signature")
    serial = header(headers, "Wechatpay-Serial")
    if not (timestamp and nonce and signature and serial):
        raise InvalidCallback("Wechatpay-Timestamp, -Nonce, -Signature and -Serial are required")
    kind = header(headers, "Wechatpay-Signature-Type")
    if kind and kind != SCHEMA:
        raise InvalidCallback(f"unsupported signature type {kind!r}")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE:
        raise InvalidCallback("Wechatpay-Timestamp outside the 5-minute tolerance")
    keys = verification_keys(account, now=now)
    key = keys.get(serial) or keys.get(serial.upper())
    if key is None:
        raise InvalidCallback("Wechatpay-Serial names no known certificate or public key")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidCallback("body is not UTF-8") from exc
    if not rsa_verify(key, signing_message(timestamp, nonce, text), signature):
        raise InvalidCallback("Wechatpay-Signature does not verify")
    return serial


class WechatPayProvider:
    name = NAME

    def __init__(self, accounts: AccountSource | None = None):
        self._accounts: AccountSource = accounts or ChannelAccounts(NAME, WECHATPAY_API)

    # ------------------------------------------------------------ the API

    def authorization(
        self, account: ProviderAccount, method: str, url: str, body: str, *, timestamp: int, nonce: str
    ) -> str:
        """The Authorization header for one request (signed path and query, not the host)."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        signature = rsa_sign(
            str(account.credential("merchant_private_key")), signing_message(method, path, str(timestamp), nonce, body)
        )
        mchid = str(account.credential("mchid"))
        serial = str(account.credential("merchant_serial_no"))
        return (
            f'{SCHEMA} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial}"'
        )

    def _request(
        self, account: ProviderAccount, method: str, path: str, payload: Mapping[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One signed call; the answer's signature is verified before anything in it is believed."""
        url = account.api_base + path
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload is not None else ""
        now = time.time()
        headers = {
            "Authorization": self.authorization(
                account, method, url, body, timestamp=int(now), nonce=secrets.token_hex(16)
            ),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        key_id = account.credentials.get("wechatpay_public_key_id")
        if key_id:
            headers["Wechatpay-Serial"] = str(key_id)  # answers are then signed with the public key's pair
        response = http_request(
            method,
            url,
            provider=NAME,
            body=body.encode("utf-8") if payload is not None else None,
            headers=headers,
            timeout=provider_settings().http_timeout,
        )
        return response.status, self._verified(account, response)

    @staticmethod
    def _verified(account: ProviderAccount, response: HttpResponse) -> dict[str, Any]:
        if response.status >= 500:
            raise ProviderError(f"WeChat Pay answered HTTP {response.status}", provider=NAME)
        try:
            verify_signed(account, response.headers, response.body, now=time.time())
        except InvalidCallback as exc:
            raise ProviderError(f"WeChat Pay's answer is not verified: {exc.message}", provider=NAME) from exc
        if not response.body:
            return {}
        try:
            document = json.loads(response.body)
        except ValueError as exc:
            raise ProviderError("WeChat Pay answered something that is not JSON", provider=NAME) from exc
        if not isinstance(document, dict):
            raise ProviderError("WeChat Pay answered something that is not an object", provider=NAME)
        return document

    @staticmethod
    def _failure(what: str, status: int, document: Mapping[str, Any]) -> ProviderError:
        code = document.get("code")
        retryable = status == 429 or code in ("SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED")
        return ProviderError(f"WeChat Pay {what} failed: HTTP {status} {code}", provider=NAME, retryable=retryable)

    # ------------------------------------------------------------ payments

    def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        if request.currency != "CNY":
            raise ProviderError(f"WeChat Pay Native takes CNY, not {request.currency}", provider=NAME, retryable=False)
        account = self._accounts.account()
        payload = {
            "appid": str(account.credential("appid")),
            "mchid": str(account.credential("mchid")),
            "description": request.subject[:127],
            "out_trade_no": merchant_ref(request.order_id),
            "time_expire": request.expires_at.astimezone(BEIJING).isoformat(timespec="seconds"),
            "notify_url": request.notify_url,
            "amount": {"total": request.amount, "currency": "CNY"},
        }
        status, document = self._request(account, "POST", "/v3/pay/transactions/native", payload)
        if status != 200 or not document.get("code_url"):
            raise self._failure("native order", status, document)
        return CreatedPayment(merchant_ref(request.order_id), str(document["code_url"]), None, request.expires_at)

    def query_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
        account = self._accounts.account()
        return self._query(account, merchant_ref(order_id))

    def _query(self, account: ProviderAccount, out_trade_no: str) -> PaymentState:
        mchid = quote(str(account.credential("mchid")), safe="")
        status, document = self._request(
            account, "GET", f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}?mchid={mchid}"
        )
        if status == 404 or document.get("code") == "ORDER_NOT_EXIST":
            return PaymentState(PaymentStatus.NOT_FOUND, None)
        if status != 200:
            raise self._failure("query", status, document)
        # trade_state (Native 查询订单): REFUND means paid and then (partly) refunded.
        mapped = {
            "SUCCESS": PaymentStatus.PAID,
            "REFUND": PaymentStatus.PAID,
            "NOTPAY": PaymentStatus.PENDING,
            "USERPAYING": PaymentStatus.PENDING,
            "CLOSED": PaymentStatus.CLOSED,
            "REVOKED": PaymentStatus.CLOSED,
            "PAYERROR": PaymentStatus.FAILED,
        }.get(str(document.get("trade_state")))
        if mapped is None:
            raise ProviderError(f"WeChat Pay trade_state {document.get('trade_state')!r} is unknown", provider=NAME)
        amount = document.get("amount") or {}
        total = amount.get("total")
        return PaymentState(
            mapped,
            document.get("transaction_id"),
            amount=total if isinstance(total, int) and not isinstance(total, bool) else None,
            currency=amount.get("currency") or "CNY",
            paid_at=_rfc3339(document.get("success_time")) if mapped is PaymentStatus.PAID else None,
        )

    def close_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
        account = self._accounts.account()
        out_trade_no = merchant_ref(order_id)
        status, _ = self._request(
            account,
            "POST",
            f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/close",
            {"mchid": str(account.credential("mchid"))},
        )
        if status == 204:
            return PaymentState(PaymentStatus.CLOSED, None)
        # Refused (already paid, already closed, unknown): the order's own state says which.
        return self._query(account, out_trade_no)

    def refund(
        self, order_id: str, provider_payment_id: str | None, refund_id: str, amount: int, currency: str, total: int
    ) -> RefundResult:
        if currency != "CNY":
            raise ProviderError(f"WeChat Pay refunds CNY, not {currency}", provider=NAME, retryable=False)
        account = self._accounts.account()
        payload: dict[str, Any] = {
            "out_trade_no": merchant_ref(order_id),
            "out_refund_no": merchant_ref(refund_id),  # the same out_refund_no is the same refund
            "amount": {"refund": amount, "total": total, "currency": "CNY"},
        }
        if provider_payment_id and provider_payment_id.isdigit():
            payload["transaction_id"] = provider_payment_id
            del payload["out_trade_no"]  # one of the two identifies the payment
        notify = account.credentials.get("refund_notify_url")
        if notify:
            payload["notify_url"] = str(notify)
        status, document = self._request(account, "POST", "/v3/refund/domestic/refunds", payload)
        if status != 200:
            error = self._failure("refund", status, document)
            if error.retryable:
                raise error
            return RefundResult(None, RefundStatus.FAILED)
        return RefundResult(document.get("refund_id"), _refund_status(document.get("status")))

    # ------------------------------------------------------------ notifications

    def parse_callback(self, headers: Mapping[str, str], raw_body: bytes, *, now: float) -> list[ProviderEvent]:
        """Verify the headers, decrypt the resource, and read the payment or refund it reports.

        ``TRANSACTION.SUCCESS`` → payment.succeeded; ``REFUND.SUCCESS`` → refund.succeeded;
        ``REFUND.ABNORMAL``/``REFUND.CLOSED`` → refund.failed. The decrypted mchid (and appid for
        payments) must be this account's. Event ids are the transaction or refund id with the
        outcome, so a notification WeChat Pay repeats is the same event.
        """
        account = self._accounts.account()
        verify_signed(account, headers, raw_body, now=now)
        try:
            envelope = json.loads(raw_body)
        except ValueError as exc:
            raise InvalidCallback("notification is not JSON") from exc
        if not isinstance(envelope, dict) or not isinstance(envelope.get("resource"), dict):
            raise InvalidCallback("notification has no resource")
        event_type = str(envelope.get("event_type"))
        resource = decrypt_resource(str(account.credential("apiv3_key")), envelope["resource"])
        if resource.get("mchid") != str(account.credential("mchid")):
            raise InvalidCallback("notification is for another mchid")
        out_trade_no = resource.get("out_trade_no")
        if not out_trade_no:
            raise InvalidCallback("notification lacks out_trade_no")
        amount = resource.get("amount") or {}
        occurred_at = (
            _rfc3339(resource.get("success_time"))
            or _rfc3339(envelope.get("create_time"))
            or datetime.fromtimestamp(now, UTC)
        )
        if event_type == "TRANSACTION.SUCCESS":
            if resource.get("appid") != str(account.credential("appid")):
                raise InvalidCallback("notification is for another appid")
            if resource.get("trade_state") != "SUCCESS":
                return []
            transaction_id = resource.get("transaction_id")
            if not transaction_id:
                raise InvalidCallback("notification lacks transaction_id")
            return [
                ProviderEvent(
                    event_id=f"{transaction_id}:paid",
                    kind=EventKind.PAYMENT_SUCCEEDED,
                    order_id=our_id(str(out_trade_no)),
                    provider_payment_id=str(transaction_id),
                    amount=_fen(amount.get("total")),
                    currency=_cny(amount.get("currency")),
                    occurred_at=occurred_at,
                )
            ]
        if event_type in ("REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"):
            refund_id, out_refund_no = resource.get("refund_id"), resource.get("out_refund_no")
            if not refund_id or not out_refund_no:
                raise InvalidCallback("refund notification lacks refund_id or out_refund_no")
            kind = EventKind.REFUND_SUCCEEDED if event_type == "REFUND.SUCCESS" else EventKind.REFUND_FAILED
            return [
                ProviderEvent(
                    event_id=f"{refund_id}:{event_type}",
                    kind=kind,
                    order_id=our_id(str(out_trade_no)),
                    provider_payment_id=resource.get("transaction_id"),
                    amount=_fen(amount.get("refund")),
                    currency="CNY",
                    occurred_at=occurred_at,
                    refund_id=our_id(str(out_refund_no)),
                    provider_refund_id=str(refund_id),
                )
            ]
        return []

    def ack(self, accepted: bool) -> CallbackAck:
        if accepted:
            return CallbackAck(204)
        return CallbackAck(400, json.dumps({"code": "FAIL", "message": "失败"}, ensure_ascii=False), "application/json")


def _fen(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidCallback("amount is not an integer of fen")
    return value


def _cny(value: Any) -> str:
    if value not in (None, "CNY"):
        raise InvalidCallback(f"unexpected currency {value!r}")
    return "CNY"


def _rfc3339(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _refund_status(status: Any) -> RefundStatus:
    # 申请退款 answer status: SUCCESS, CLOSED, PROCESSING, ABNORMAL
    if status == "SUCCESS":
        return RefundStatus.SUCCEEDED
    if status in ("CLOSED", "ABNORMAL"):
        return RefundStatus.FAILED
    return RefundStatus.PENDING


def factory() -> WechatPayProvider:
    return WechatPayProvider()

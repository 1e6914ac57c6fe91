"""Alipay open platform (当面付, face-to-face QR): precreate, query, close, refund, notifications.

Written on ``cryptography`` rather than an SDK (docs/providers.md weighs them): the official
``alipay-sdk-python`` wheel unpacks to ~121 MB in ~36,600 files and pulls pycryptodome and rsa;
``python-alipay-sdk`` pulls pycryptodomex and pyOpenSSL. The scheme is small and documented:

- Requests (opendocs.alipay.com/common/02kf5q, "自行实现签名"): the common parameters (app_id,
  method, format, charset, sign_type=RSA2, timestamp in GMT+8 ``yyyy-MM-dd HH:mm:ss``, version 1.0,
  notify_url, biz_content as JSON) without ``sign`` and without empty values, sorted by key,
  joined as ``k=v`` with ``&`` (raw values, no URL encoding), signed SHA256withRSA with the app's
  private key, base64.
- Responses (opendocs.alipay.com/common/02mse7, "自行实现验签"): ``sign`` covers the exact JSON text
  of the ``<method with _>_response`` member, verified with the Alipay public key.
- Notifications (opendocs.alipay.com/open/194/103296, 异步通知): a form POST; ``sign`` covers every
  parameter except ``sign`` and ``sign_type`` (and empty ones), sorted, ``k=v`` joined with ``&``,
  after URL decoding; answered with the literal ``success``, anything else makes Alipay retry.

Public-key mode only (not the certificate mode with app_cert_sn). Currency CNY, amounts in yuan
with two decimals converted exactly to fen. A precreated trade does not exist at Alipay until the
payer scans it: ``ACQ.TRADE_NOT_EXIST`` from query or close means "not paid" and is reported as
``NOT_FOUND``; ``time_expire`` makes the QR code itself die at the order's expiry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

from paycore.config import provider_settings
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
from paycore.providers.common import (
    fen_to_yuan,
    http_request,
    merchant_ref,
    our_id,
    rsa_sign,
    rsa_verify,
    yuan_to_fen,
)

NAME = "alipay"
ALIPAY_GATEWAY = "https://openapi.alipay.com/gateway.do"
BEIJING = timezone(timedelta(hours=8), "GMT+8")
SUCCESS = "10000"  # the gateway's "接口调用成功" code
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"


def _beijing(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _parse_beijing(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def sign_content(params: Mapping[str, Any], *, exclude: tuple[str, ...] = ("sign",)) -> str:
    """The string Alipay signs: non-empty parameters but ``exclude``, sorted, ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] not in (None, ""))


def _response_text(body: str, member: str) -> str | None:
    """The exact JSON text of ``member`` in ``body``: Alipay signs those bytes, not a re-encoding."""
    match = re.search(r'"' + re.escape(member) + r'"\s*:\s*', body)
    if match is None:
        return None
    try:
        _, end = json.JSONDecoder().raw_decode(body, match.end())
    except ValueError:
        return None
    return body[match.end() : end]


class AlipayProvider:
    name = NAME

    def __init__(self, accounts: AccountSource | None = None):
        self._accounts: AccountSource = accounts or ChannelAccounts(NAME, ALIPAY_GATEWAY)

    # ------------------------------------------------------------ the gateway

    def _call(
        self, account: ProviderAccount, method: str, biz: Mapping[str, Any], *, notify_url: str | None = None
    ) -> dict[str, Any]:
        """Call ``method`` and return its verified ``*_response`` object (any code)."""
        params: dict[str, str] = {
            "app_id": str(account.credential("app_id")),
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": _beijing(datetime.now(BEIJING)),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        if notify_url:
            params["notify_url"] = notify_url
        params["sign"] = rsa_sign(str(account.credential("app_private_key")), sign_content(params).encode("utf-8"))
        response = http_request(
            "POST",
            account.api_base,
            provider=NAME,
            body=urlencode(params).encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8", "Accept": "application/json"},
            timeout=provider_settings().http_timeout,
        )
        if response.status != 200:
            raise ProviderError(f"Alipay answered HTTP {response.status}", provider=NAME)
        try:
            text = response.body.decode("utf-8")
            document = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProviderError("Alipay answered something that is not JSON", provider=NAME) from exc
        if not isinstance(document, dict):
            raise ProviderError("Alipay answered something that is not a JSON object", provider=NAME)
        member = method.replace(".", "_") + "_response"
        if member not in document and "error_response" in document:
            member = "error_response"
        signed = _response_text(text, member)
        result = document.get(member)
        if signed is None or not isinstance(result, dict):
            raise ProviderError(f"Alipay's answer has no {member}", provider=NAME)
        # Only a verified answer is believed, failures included: TRADE_NOT_EXIST decides "not paid".
        if not rsa_verify(str(account.credential("alipay_public_key")), signed.encode("utf-8"), document.get("sign")):
            raise ProviderError(f"Alipay's answer to {method} failed signature verification", provider=NAME)
        return result

    @staticmethod
    def _failure(method: str, result: Mapping[str, Any]) -> ProviderError:
        code, sub_code = result.get("code"), result.get("sub_code")
        # 20000 (服务不可用) and ACQ.SYSTEM_ERROR are transient; the rest are refusals.
        retryable = code == "20000" or sub_code == "ACQ.SYSTEM_ERROR"
        return ProviderError(f"Alipay {method} failed: {code} {sub_code}", provider=NAME, retryable=retryable)

    # ------------------------------------------------------------ payments

    def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        if request.currency != "CNY":
            raise ProviderError(
                f"Alipay face-to-face takes CNY, not {request.currency}", provider=NAME, retryable=False
            )
        account = self._accounts.account()
        out_trade_no = merchant_ref(request.order_id)
        biz = {
            "out_trade_no": out_trade_no,
            "total_amount": fen_to_yuan(request.amount),
            "subject": request.subject[:256],
            "time_expire": _beijing(request.expires_at),
        }
        result = self._call(account, "alipay.trade.precreate", biz, notify_url=request.notify_url)
        if result.get("code") != SUCCESS or not result.get("qr_code"):
            raise self._failure("alipay.trade.precreate", result)
        if result.get("out_trade_no") not in (None, out_trade_no):
            raise ProviderError("Alipay answered for another out_trade_no", provider=NAME, retryable=False)
        # No trade_no exists before the payer scans: the merchant reference is the payment's id here.
        return CreatedPayment(out_trade_no, str(result["qr_code"]), None, request.expires_at)

    def query_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
        account = self._accounts.account()
        return self._query(account, merchant_ref(order_id))

    def _query(self, account: ProviderAccount, out_trade_no: str) -> PaymentState:
        result = self._call(account, "alipay.trade.query", {"out_trade_no": out_trade_no})
        if result.get("code") != SUCCESS:
            if result.get("sub_code") == TRADE_NOT_EXIST:
                return PaymentState(PaymentStatus.NOT_FOUND, None)
            raise self._failure("alipay.trade.query", result)
        status = {
            "WAIT_BUYER_PAY": PaymentStatus.PENDING,
            "TRADE_SUCCESS": PaymentStatus.PAID,
            "TRADE_FINISHED": PaymentStatus.PAID,
            # Closed unpaid, or closed after a full refund (only paid orders are refunded).
            "TRADE_CLOSED": PaymentStatus.CLOSED,
        }.get(str(result.get("trade_status")))
        if status is None:
            raise ProviderError(f"Alipay trade_status {result.get('trade_status')!r} is unknown", provider=NAME)
        try:
            amount = yuan_to_fen(result.get("total_amount"))
        except InvalidCallback as exc:
            raise ProviderError("Alipay answered a malformed total_amount", provider=NAME, retryable=False) from exc
        return PaymentState(
            status,
            result.get("trade_no"),
            amount=amount,
            currency="CNY",
            paid_at=_parse_beijing(result.get("send_pay_date")) if status is PaymentStatus.PAID else None,
        )

    def close_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
        account = self._accounts.account()
        out_trade_no = merchant_ref(order_id)
        result = self._call(account, "alipay.trade.close", {"out_trade_no": out_trade_no})
        if result.get("code") == SUCCESS:
            return PaymentState(PaymentStatus.CLOSED, result.get("trade_no"))
        if result.get("sub_code") == TRADE_NOT_EXIST:
            # Never scanned: nothing was paid and nothing can be closed. The QR code dies at
            # time_expire (the order's expiry); a payment before then is a late payment.
            return PaymentState(PaymentStatus.NOT_FOUND, None)
        if result.get("sub_code") == "ACQ.TRADE_STATUS_ERROR":
            return self._query(account, out_trade_no)  # paid (or already closed): say which
        raise self._failure("alipay.trade.close", result)

    def refund(
        self, order_id: str, provider_payment_id: str | None, refund_id: str, amount: int, currency: str, total: int
    ) -> RefundResult:
        if currency != "CNY":
            raise ProviderError(f"Alipay refunds CNY, not {currency}", provider=NAME, retryable=False)
        account = self._accounts.account()
        out_trade_no, out_request_no = merchant_ref(order_id), merchant_ref(refund_id)
        result = self._call(
            account,
            "alipay.trade.refund",
            {"out_trade_no": out_trade_no, "refund_amount": fen_to_yuan(amount), "out_request_no": out_request_no},
        )
        if result.get("code") != SUCCESS:
            error = self._failure("alipay.trade.refund", result)
            if error.retryable:
                raise error
            return RefundResult(None, RefundStatus.FAILED)
        if result.get("fund_change") == "Y":
            return RefundResult(out_request_no, RefundStatus.SUCCEEDED)
        # fund_change=N: a repeated out_request_no, or not settled yet. The refund query says which
        # (opendocs: "fund_change=N ... 需调用 alipay.trade.fastpay.refund.query 确认").
        query = self._call(
            account,
            "alipay.trade.fastpay.refund.query",
            {"out_trade_no": out_trade_no, "out_request_no": out_request_no},
        )
        if query.get("code") == SUCCESS and query.get("refund_status") == "REFUND_SUCCESS":
            return RefundResult(out_request_no, RefundStatus.SUCCEEDED)
        return RefundResult(out_request_no, RefundStatus.PENDING)

    # ------------------------------------------------------------ notifications

    def parse_callback(self, headers: Mapping[str, str], raw_body: bytes, *, now: float) -> list[ProviderEvent]:
        """Verify an asynchronous notification and read the trade it reports.

        Checked: RSA2 signature with the Alipay public key; app_id and seller_id are this
        account's; out_trade_no is present; total_amount is yuan with exactly two decimals.
        ``TRADE_SUCCESS``/``TRADE_FINISHED`` → payment.succeeded (one event id for both, so the
        later FINISHED is a repeat); ``TRADE_CLOSED`` of a never-paid trade → payment.failed.
        Refund notifications (``out_biz_no``) carry the trade's *total* refunded ``refund_fee``,
        not this refund's amount, so they are acknowledged without an event: the refund call's
        own answer (``fund_change``) and the refund query settle refunds.
        """
        account = self._accounts.account()
        params, charset = self._form(raw_body)
        if params.get("sign_type") != "RSA2":
            raise InvalidCallback("notification is not signed with RSA2")
        # Alipay signs the text in the notification's own charset (utf-8 unless it says gbk).
        content = sign_content(params, exclude=("sign", "sign_type")).encode(charset)
        if not rsa_verify(str(account.credential("alipay_public_key")), content, params.get("sign")):
            raise InvalidCallback("notification signature does not verify")
        if params.get("app_id") != str(account.credential("app_id")):
            raise InvalidCallback("notification is for another app_id")
        if params.get("seller_id") != str(account.credential("seller_id")):
            raise InvalidCallback("notification is for another seller_id")
        out_trade_no, trade_no = params.get("out_trade_no"), params.get("trade_no")
        if not out_trade_no or not trade_no:
            raise InvalidCallback("notification lacks out_trade_no or trade_no")
        amount = yuan_to_fen(params.get("total_amount"))
        occurred_at = (
            _parse_beijing(params.get("gmt_payment"))
            or _parse_beijing(params.get("notify_time"))
            or datetime.fromtimestamp(now, UTC)
        )
        status = params.get("trade_status")
        if params.get("out_biz_no") or params.get("refund_fee") or params.get("gmt_refund"):
            return []
        if status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            kind, event_id = EventKind.PAYMENT_SUCCEEDED, f"{trade_no}:paid"
        elif status == "TRADE_CLOSED" and not params.get("gmt_payment"):
            kind, event_id = EventKind.PAYMENT_FAILED, f"{trade_no}:closed"
        else:
            return []  # WAIT_BUYER_PAY and anything new: nothing to change
        return [
            ProviderEvent(
                event_id=event_id,
                kind=kind,
                order_id=our_id(out_trade_no),
                provider_payment_id=trade_no,
                amount=amount,
                currency="CNY",
                occurred_at=occurred_at,
            )
        ]

    @staticmethod
    def _form(raw_body: bytes) -> tuple[dict[str, str], str]:
        try:
            text = raw_body.decode("ascii")  # a form body is percent-encoded ASCII
            charset = (dict(parse_qsl(text, keep_blank_values=True)).get("charset") or "utf-8").lower()
            if charset not in ("utf-8", "gbk"):
                raise InvalidCallback(f"notification charset {charset!r} is not utf-8 or gbk")
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding=charset, errors="strict")
        except (UnicodeError, ValueError) as exc:
            raise InvalidCallback("notification is not a form body") from exc
        params = dict(pairs)
        if len(params) != len(pairs):
            raise InvalidCallback("notification repeats a parameter")
        return params, charset

    def ack(self, accepted: bool) -> CallbackAck:
        # Alipay stops retrying only on the exact body "success" (opendocs.alipay.com/open/194/103296).
        return CallbackAck(200, "success") if accepted else CallbackAck(400, "fail")


def factory() -> AlipayProvider:
    return AlipayProvider()

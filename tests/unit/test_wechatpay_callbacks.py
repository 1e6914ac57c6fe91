"""WeChat Pay v3 notifications: header signature by serial, 5-minute tolerance, AES-256-GCM resource.

Envelopes and resources follow 支付通知 (apiv3/apis/chapter3_4_5) and 退款结果通知 (chapter3_4_11).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from paycore.providers.base import EventKind, InvalidCallback
from paycore.providers.wechatpay_provider import WechatPayProvider
from tests.provider_keys import (
    WECHAT_APPID,
    WECHAT_MCHID,
    WECHAT_PLATFORM_SERIAL,
    WECHAT_PUBLIC_KEY_ID,
    certificate,
    wechat_account,
    wechat_headers,
    wechat_notification,
)

pytestmark = pytest.mark.unit

NOW = 1_767_225_600
ORDER = "3f2b8c1e-9d4a-4b7e-8f00-1a2b3c4d5e6f"
OUT_TRADE_NO = "3f2b8c1e9d4a4b7e8f001a2b3c4d5e6f"


def transaction(**changes: Any) -> dict[str, Any]:
    resource = {
        "mchid": WECHAT_MCHID,
        "appid": WECHAT_APPID,
        "out_trade_no": OUT_TRADE_NO,
        "transaction_id": "4200000000202601010000000001",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": "2026-01-01T08:00:01+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 2000, "payer_total": 2000, "currency": "CNY", "payer_currency": "CNY"},
    }
    resource.update(changes)
    return resource


def refund(status: str = "SUCCESS") -> dict[str, Any]:
    return {
        "mchid": WECHAT_MCHID,
        "out_trade_no": OUT_TRADE_NO,
        "transaction_id": "4200000000202601010000000001",
        "out_refund_no": "7d3c1a2b000040008000000000000001",
        "refund_id": "50000000382019052709732678859",
        "refund_status": status,
        "success_time": "2026-01-02T10:00:00+08:00",
        "amount": {"total": 2000, "refund": 500, "payer_total": 2000, "payer_refund": 500},
    }


def parse(body: bytes, headers: dict[str, str], *, now: int = NOW, **account: Any) -> list[Any]:
    return WechatPayProvider(wechat_account(**account)).parse_callback(headers, body, now=now)


def test_payment_notification_signed_with_the_public_key_is_a_payment_in_fen() -> None:
    body = wechat_notification("TRANSACTION.SUCCESS", transaction())
    [evt] = parse(body, wechat_headers(body, timestamp=NOW))
    assert evt.kind is EventKind.PAYMENT_SUCCEEDED
    assert (evt.order_id, evt.amount, evt.currency) == (ORDER, 2000, "CNY")
    assert evt.provider_payment_id == "4200000000202601010000000001"
    assert evt.event_id == "4200000000202601010000000001:paid"


def test_platform_certificate_selected_by_its_serial_verifies_too() -> None:
    body = wechat_notification("TRANSACTION.SUCCESS", transaction())
    headers = wechat_headers(body, timestamp=NOW, key="wechat-platform", serial=WECHAT_PLATFORM_SERIAL)
    assert parse(body, headers)[0].amount == 2000
    # lower-case hex is the same serial
    headers["Wechatpay-Serial"] = WECHAT_PLATFORM_SERIAL.lower()
    assert parse(body, headers)


def test_refund_notifications() -> None:
    body = wechat_notification("REFUND.SUCCESS", refund(), associated_data="refund")
    [evt] = parse(body, wechat_headers(body, timestamp=NOW))
    assert evt.kind is EventKind.REFUND_SUCCEEDED
    assert (evt.refund_id, evt.amount) == ("7d3c1a2b-0000-4000-8000-000000000001", 500)
    assert evt.provider_refund_id == "50000000382019052709732678859"
    body = wechat_notification("REFUND.ABNORMAL", refund("ABNORMAL"), associated_data="refund")
    assert parse(body, wechat_headers(body, timestamp=NOW))[0].kind is EventKind.REFUND_FAILED


def test_a_notification_type_that_changes_nothing_is_acknowledged_without_events() -> None:
    body = wechat_notification("TRANSACTION.SUCCESS", transaction(trade_state="NOTPAY"))
    assert parse(body, wechat_headers(body, timestamp=NOW)) == []


@pytest.mark.parametrize(("offset", "accepted"), [(300, True), (-300, True), (301, False), (-301, False)])
def test_five_minute_tolerance_both_ways(offset: int, accepted: bool) -> None:
    body = wechat_notification("TRANSACTION.SUCCESS", transaction())
    headers = wechat_headers(body, timestamp=NOW)
    if accepted:
        assert parse(body, headers, now=NOW + offset)
    else:
        with pytest.raises(InvalidCallback):
            parse(body, headers, now=NOW + offset)


def _refusals() -> list[tuple[str, bytes, dict[str, str], dict[str, Any]]]:
    body = wechat_notification("TRANSACTION.SUCCESS", transaction())
    good = wechat_headers(body, timestamp=NOW)
    other_mch = wechat_notification("TRANSACTION.SUCCESS", transaction(mchid="1900000999"))
    other_app = wechat_notification("TRANSACTION.SUCCESS", transaction(appid="wx0000000000000000"))
    fractional = wechat_notification("TRANSACTION.SUCCESS", transaction(amount={"total": 20.5, "currency": "CNY"}))
    wrong_cipher = wechat_notification("TRANSACTION.SUCCESS", transaction(), key="ABCDEFGHIJ0123456789abcdefghij01")
    envelope = json.loads(body)
    envelope["resource"]["associated_data"] = "refund"
    wrong_aad = json.dumps(envelope).encode()
    return [
        ("wrong key", body, wechat_headers(body, timestamp=NOW, key="attacker"), {}),
        ("unknown serial", body, wechat_headers(body, timestamp=NOW, serial="PUB_KEY_ID_0000"), {}),
        ("altered body", body.replace(b"EV-2018", b"EV-2019"), good, {}),
        ("signature header missing", body, {k: v for k, v in good.items() if k != "Wechatpay-Signature"}, {}),
        ("other signature type", body, {**good, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, {}),
        ("wrong mchid, signed", other_mch, wechat_headers(other_mch, timestamp=NOW), {}),
        ("wrong appid, signed", other_app, wechat_headers(other_app, timestamp=NOW), {}),
        ("fractional fen, signed", fractional, wechat_headers(fractional, timestamp=NOW), {}),
        ("encrypted with another APIv3 key", wrong_cipher, wechat_headers(wrong_cipher, timestamp=NOW), {}),
        ("associated_data altered", wrong_aad, wechat_headers(wrong_aad, timestamp=NOW), {}),
        (
            "expired platform certificate",
            body,
            wechat_headers(body, timestamp=NOW, key="wechat-platform", serial="1A2B"),
            {"platform_certificates": [certificate("wechat-platform", 0x1A2B, start_year=2020, days_valid=365)]},
        ),
    ]


@pytest.mark.parametrize(("case", "body", "headers", "account"), _refusals(), ids=[r[0] for r in _refusals()])
def test_refused_notifications(case: str, body: bytes, headers: dict[str, str], account: dict[str, Any]) -> None:
    with pytest.raises(InvalidCallback):
        parse(body, headers, now=NOW, **account)


def test_acks_204_or_the_documented_failure_body() -> None:
    provider = WechatPayProvider(wechat_account())
    assert provider.ack(True).status_code == 204
    refused = provider.ack(False)
    assert refused.status_code == 400
    assert json.loads(refused.body) == {"code": "FAIL", "message": "失败"}


def test_public_key_id_header_is_known() -> None:
    assert WECHAT_PUBLIC_KEY_ID.startswith("PUB_KEY_ID_")

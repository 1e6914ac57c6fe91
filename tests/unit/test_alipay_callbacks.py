"""Alipay asynchronous notifications: RSA2 verification, account checks and exact amounts.

Parameters follow Alipay's 异步通知说明 (opendocs.alipay.com/open/194/103296); keys are made here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from paycore.providers.alipay_provider import AlipayProvider, sign_content
from paycore.providers.base import EventKind, InvalidCallback
from tests.provider_keys import ALIPAY_APP_ID, ALIPAY_SELLER_ID, alipay_account, alipay_notification

pytestmark = pytest.mark.unit

NOW = 1_767_225_600
ORDER = "3f2b8c1e-9d4a-4b7e-8f00-1a2b3c4d5e6f"
OUT_TRADE_NO = "3f2b8c1e9d4a4b7e8f001a2b3c4d5e6f"


def params(**changes: str) -> dict[str, str]:
    base = {
        "notify_time": "2026-01-01 08:00:03",
        "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786",
        "app_id": ALIPAY_APP_ID,
        "version": "1.0",
        "trade_no": "2026010122001404010000000001",
        "out_trade_no": OUT_TRADE_NO,
        "buyer_id": "2088102122524333",
        "seller_id": ALIPAY_SELLER_ID,
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "20.00",
        "receipt_amount": "20.00",
        "buyer_pay_amount": "20.00",
        "subject": "订单 42",
        "gmt_create": "2026-01-01 07:59:50",
        "gmt_payment": "2026-01-01 08:00:01",
        "fund_bill_list": '[{"amount":"20.00","fundChannel":"ALIPAYACCOUNT"}]',
        "passback_params": "",
    }
    base.update(changes)
    return base


def parse(body: bytes) -> list[Any]:
    return AlipayProvider(alipay_account()).parse_callback(
        {"content-type": "application/x-www-form-urlencoded"}, body, now=NOW
    )


def test_trade_success_is_a_payment_in_exact_fen_for_our_order() -> None:
    [evt] = parse(alipay_notification(params()))
    assert evt.kind is EventKind.PAYMENT_SUCCEEDED
    assert (evt.order_id, evt.amount, evt.currency) == (ORDER, 2000, "CNY")
    assert evt.provider_payment_id == "2026010122001404010000000001"
    assert evt.event_id == "2026010122001404010000000001:paid"
    assert evt.occurred_at.isoformat() == "2026-01-01T08:00:01+08:00"


def test_trade_finished_repeats_the_same_payment_event() -> None:
    [success] = parse(alipay_notification(params()))
    [finished] = parse(alipay_notification(params(trade_status="TRADE_FINISHED")))
    assert finished.event_id == success.event_id


def test_waiting_closed_and_refund_notifications() -> None:
    assert parse(alipay_notification(params(trade_status="WAIT_BUYER_PAY", gmt_payment=""))) == []
    [closed] = parse(alipay_notification(params(trade_status="TRADE_CLOSED", gmt_payment="")))
    assert closed.kind is EventKind.PAYMENT_FAILED
    # A refund notification: refund_fee is the trade's total refunded, so no event is made of it.
    refund = params(trade_status="TRADE_CLOSED", out_biz_no="7d3c1a2b000040008000000000000001", refund_fee="20.00")
    assert parse(alipay_notification(refund)) == []


def test_sign_content_skips_sign_sign_type_and_empty_values_in_key_order() -> None:
    text = sign_content({"b": "2", "a": "1", "sign": "x", "sign_type": "RSA2", "c": ""}, exclude=("sign", "sign_type"))
    assert text == "a=1&b=2"


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("wrong key", alipay_notification(params(), key="attacker")),
        ("altered amount", alipay_notification(params(), tamper={"total_amount": "2000.00"})),
        ("altered out_trade_no", alipay_notification(params(), tamper={"out_trade_no": "another_order"})),
        ("sign removed", alipay_notification(params(), tamper={"sign": ""})),
        ("RSA (SHA1) sign_type", alipay_notification(params(), tamper={"sign_type": "RSA"})),
        ("wrong app_id, signed", alipay_notification(params(app_id="2021000000009999"))),
        ("wrong seller_id, signed", alipay_notification(params(seller_id="2088000000009999"))),
        ("amount 10.5, signed", alipay_notification(params(total_amount="10.5"))),
        ("amount 1e2, signed", alipay_notification(params(total_amount="1e2"))),
        ("amount 10, signed", alipay_notification(params(total_amount="10"))),
        ("amount -1.00, signed", alipay_notification(params(total_amount="-1.00"))),
        ("no out_trade_no, signed", alipay_notification(params(out_trade_no=""))),
        ("not a form", b"\xff\xfe{}"),
        ("repeated parameter", alipay_notification(params()) + b"&total_amount=0.01"),
    ],
)
def test_refused_notifications(case: str, body: bytes) -> None:
    with pytest.raises(InvalidCallback):
        parse(body)


def test_notification_in_gbk_is_decoded_with_its_charset() -> None:
    fields = {**params(subject="订单 42"), "charset": "gbk", "sign_type": "RSA2"}
    from tests.provider_keys import sign

    content = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in ("sign", "sign_type") and fields[k])
    fields["sign"] = sign("alipay-platform", content.encode("gbk"))  # Alipay signs the gbk bytes
    body = urlencode(fields, encoding="gbk").encode()
    [evt] = parse(body)
    assert evt.amount == 2000
    fields["sign"] = sign("alipay-platform", content.encode("utf-8"))  # the utf-8 bytes are other bytes
    with pytest.raises(InvalidCallback):
        parse(urlencode(fields, encoding="gbk").encode())


def test_ack_is_the_literal_success() -> None:
    ack = AlipayProvider(alipay_account()).ack(True)
    assert (ack.status_code, ack.body) == (200, "success")
    assert AlipayProvider(alipay_account()).ack(False).body != "success"

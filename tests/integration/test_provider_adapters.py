"""The Stripe, Alipay and WeChat Pay adapters against a local server on 127.0.0.1 playing each API.

The adapters are taken from the registry (``get_provider``) and find their account the deployed
way: channels in the moto channels table (from infra/seed/channels.providers.example.json, with
``api_base`` pointed at the local server) and credentials in the template's Secrets Manager
secrets, read through Powertools parameters. The local server checks each outgoing request's
shape and signature, and answers with bodies shaped like the providers' documented ones, signed
with keys made in the test.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from paycore.providers import get_provider, reset_providers
from paycore.providers.base import (
    EventKind,
    PaymentRequest,
    PaymentStatus,
    ProviderError,
    RefundStatus,
)
from tests import provider_keys as keys
from tests.conftest import AwsStack

pytestmark = pytest.mark.integration

ORDER = str(uuid.uuid4())
REF = uuid.UUID(ORDER).hex
REFUND = str(uuid.uuid4())
NOTIFY = "https://api.example.com/test/callbacks/"


@pytest.fixture
def providers(aws: AwsStack, httpserver: HTTPServer) -> Iterator[HTTPServer]:
    """Channels and secrets as an operator would configure them, pointing at the local server."""
    from infra.seed.channels import PROVIDERS_EXAMPLE_FILE, load_seed
    from paycore.data.channels import put_channel_item

    secrets = aws.client("secretsmanager")
    values = {
        "stripe": {"api_key": "sk_test_integration", "webhook_secrets": ["whsec_integration"]},
        "alipay": keys.alipay_credentials(),
        "wechatpay": keys.wechat_credentials(),
    }
    for provider, value in values.items():
        secrets.put_secret_value(
            SecretId=f"serverless-payments/test/providers/{provider}", SecretString=json.dumps(value)
        )
    base = httpserver.url_for("").rstrip("/")
    for channel in load_seed(PROVIDERS_EXAMPLE_FILE):
        channel["credentials_secret"] = channel["credentials_secret"].replace("/dev/", "/test/")
        channel["api_base"] = base + ("/gateway.do" if channel["provider"] == "alipay" else "")
        put_channel_item(channel)
    reset_providers()
    yield httpserver
    reset_providers()
    httpserver.check_assertions()  # a failed check inside a handler, or an unexpected request, fails here
    httpserver.clear()


def payment(channel: str, amount: int = 2000, currency: str = "CNY") -> PaymentRequest:
    from dataclasses import asdict

    from paycore.channels import get_channel

    return PaymentRequest(
        order_id=ORDER,
        amount=amount,
        currency=currency,
        subject="Order 42",
        expires_at=datetime.now(UTC) + timedelta(hours=2),
        notify_url=NOTIFY + get_channel(channel).provider,
        channel=asdict(get_channel(channel)),
        return_url="https://shop.example.com/done",
    )


def json_response(document: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(document), status=status, content_type="application/json")


# ================================================================ Stripe
# Bodies: docs.stripe.com/api/payment_intents/object, /api/checkout/sessions/object, /api/refunds/object,
# errors: docs.stripe.com/api/errors.


def stripe_intent(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "payment_intent",
        "amount": 2000,
        "amount_received": 2000 if status == "succeeded" else 0,
        "currency": "cny",
        "status": status,
        "created": 1_767_225_600,
        "metadata": {"order_id": ORDER, "flow": "wechat_pay"},
        **extra,
    }


def stripe_form(request: Request) -> dict[str, str]:
    assert request.headers["Authorization"] == "Bearer sk_test_integration"
    return dict(parse_qsl(request.get_data(as_text=True)))


def test_stripe_wechat_pay_confirms_a_payment_intent_and_returns_its_qr_code(providers: HTTPServer) -> None:
    seen: list[Request] = []

    def create(request: Request) -> Response:
        seen.append(request)
        form = stripe_form(request)
        assert form["amount"] == "2000"
        assert form["currency"] == "cny"
        assert form["payment_method_types[0]"] == "wechat_pay"
        assert form["payment_method_data[type]"] == "wechat_pay"
        assert form["payment_method_options[wechat_pay][client]"] == "web"
        assert form["confirm"] == "true"
        assert form["metadata[order_id]"] == ORDER
        assert request.headers["Idempotency-Key"] == f"order-{ORDER}-payment"
        return json_response(
            stripe_intent(
                "requires_action",
                next_action={
                    "type": "wechat_pay_display_qr_code",
                    "wechat_pay_display_qr_code": {
                        "data": "weixin://wxpay/bizpayurl?pr=Xq9fGmOzz",
                        "hosted_instructions_url": "https://payments.stripe.com/qr/instructions/test",
                        "image_url_png": "https://qr.stripe.com/test.png",
                    },
                },
            )
        )

    providers.expect_request("/v1/payment_intents", method="POST").respond_with_handler(create)
    created = get_provider("stripe").create_payment(payment("stripe_wechat_pay"))
    assert seen, "the local Stripe was not called"
    assert created.provider_payment_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert created.qr_code == "weixin://wxpay/bizpayurl?pr=Xq9fGmOzz"
    assert created.checkout_url == "https://payments.stripe.com/qr/instructions/test"


def test_stripe_card_checkout_session_returns_its_hosted_url(providers: HTTPServer) -> None:
    def create(request: Request) -> Response:
        form = stripe_form(request)
        assert form["mode"] == "payment"
        assert form["line_items[0][price_data][unit_amount]"] == "1050"
        assert form["line_items[0][price_data][currency]"] == "usd"
        assert form["client_reference_id"] == ORDER
        assert form["payment_intent_data[metadata][order_id]"] == ORDER
        assert form["success_url"] == "https://shop.example.com/done"
        assert int(form["expires_at"]) > time.time() + 30 * 60
        assert request.headers["Idempotency-Key"] == f"order-{ORDER}-checkout"
        return json_response(
            {"id": "cs_test_a1", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_a1"}
        )

    providers.expect_request("/v1/checkout/sessions", method="POST").respond_with_handler(create)
    created = get_provider("stripe").create_payment(payment("stripe_card", 1050, "USD"))
    assert (created.provider_payment_id, created.qr_code) == ("cs_test_a1", None)
    assert created.checkout_url == "https://checkout.stripe.com/c/pay/cs_test_a1"


def test_stripe_close_reports_paid_when_the_payer_won_the_race(providers: HTTPServer) -> None:
    pi = "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    retrieved = iter([stripe_intent("requires_action"), stripe_intent("succeeded")])
    providers.expect_request(f"/v1/payment_intents/{pi}", method="GET").respond_with_handler(
        lambda _: json_response(next(retrieved))
    )
    providers.expect_request(f"/v1/payment_intents/{pi}/cancel", method="POST").respond_with_json(
        {
            "error": {
                "type": "invalid_request_error",
                "code": "payment_intent_unexpected_state",
                "message": "This PaymentIntent's status is succeeded.",
            }
        },
        status=400,
    )
    state = get_provider("stripe").close_payment(ORDER, pi)
    assert state.status is PaymentStatus.PAID
    assert (state.amount, state.currency) == (2000, "CNY")


def test_stripe_close_cancels_an_unpaid_intent(providers: HTTPServer) -> None:
    pi = "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    providers.expect_request(f"/v1/payment_intents/{pi}", method="GET").respond_with_json(
        stripe_intent("requires_action")
    )
    providers.expect_request(f"/v1/payment_intents/{pi}/cancel", method="POST").respond_with_json(
        stripe_intent("canceled", cancellation_reason="abandoned")
    )
    assert get_provider("stripe").close_payment(ORDER, pi).status is PaymentStatus.CLOSED
    cancel = next(req for req, _ in providers.log if req.path.endswith("/cancel"))
    assert dict(parse_qsl(cancel.get_data(as_text=True))) == {"cancellation_reason": "abandoned"}


def test_stripe_query_without_an_id_searches_by_our_order_id(providers: HTTPServer) -> None:
    def search(request: Request) -> Response:
        assert request.args["query"] == f"metadata['order_id']:'{ORDER}'"
        return json_response({"object": "search_result", "data": [stripe_intent("succeeded")], "has_more": False})

    providers.expect_request("/v1/payment_intents/search", method="GET").respond_with_handler(search)
    state = get_provider("stripe").query_payment(ORDER, None)
    assert (state.status, state.provider_payment_id, state.amount) == (
        PaymentStatus.PAID,
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        2000,
    )


def test_stripe_refund_of_a_checkout_payment_uses_its_intent_and_our_refund_id(providers: HTTPServer) -> None:
    providers.expect_request("/v1/checkout/sessions/cs_test_a1", method="GET").respond_with_json(
        {"id": "cs_test_a1", "object": "checkout.session", "payment_intent": "pi_card_1", "payment_status": "paid"}
    )

    def refund(request: Request) -> Response:
        form = stripe_form(request)
        assert form["payment_intent"] == "pi_card_1"
        assert form["amount"] == "500"
        assert form["metadata[refund_id]"] == REFUND
        assert request.headers["Idempotency-Key"] == f"refund-{REFUND}"
        return json_response({"id": "re_1", "object": "refund", "amount": 500, "status": "pending"})

    providers.expect_request("/v1/refunds", method="POST").respond_with_handler(refund)
    result = get_provider("stripe").refund(ORDER, "cs_test_a1", REFUND, 500, "USD", 1050)
    assert (result.provider_refund_id, result.status) == ("re_1", RefundStatus.PENDING)


def test_stripe_errors_become_provider_errors(providers: HTTPServer) -> None:
    providers.expect_request("/v1/refunds", method="POST").respond_with_json(
        {"error": {"type": "invalid_request_error", "code": "charge_already_refunded", "message": "refunded"}},
        status=400,
    )
    with pytest.raises(ProviderError) as info:
        get_provider("stripe").refund(ORDER, "pi_1", REFUND, 500, "CNY", 2000)
    assert info.value.retryable is False


def test_stripe_webhook_is_verified_with_the_secret_from_secrets_manager(providers: HTTPServer) -> None:
    import stripe

    body = json.dumps(
        {
            "id": "evt_integration",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {"object": stripe_intent("succeeded")},
        }
    )
    now = time.time()
    header = stripe.WebhookSignature.generate_signature_header(body, "whsec_integration", timestamp=int(now))
    [event] = get_provider("stripe").parse_callback({"Stripe-Signature": header}, body.encode(), now=now)
    assert (event.event_id, event.order_id, event.amount) == ("evt_integration", ORDER, 2000)


# ================================================================ Alipay
# Answers: alipay.trade.precreate / query / close / refund / fastpay.refund.query reference pages
# (opendocs.alipay.com), e.g. {"alipay_trade_precreate_response": {"code": "10000", "msg": "Success",
# "out_trade_no": "...", "qr_code": "https://qr.alipay.com/bax..."}, "sign": "..."}.


def alipay_gateway(
    server: HTTPServer, answers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]], *, key: str = "alipay-platform"
) -> list[dict[str, str]]:
    """Play Alipay's gateway: check each request's RSA2 signature with the app's public key."""
    calls: list[dict[str, str]] = []

    def handle(request: Request) -> Response:
        form = dict(parse_qsl(request.get_data(as_text=True)))
        calls.append(form)
        content = "&".join(f"{k}={form[k]}" for k in sorted(form) if k != "sign" and form[k])
        assert keys.verify("alipay-app", content.encode(), form["sign"]), "request signature does not verify"
        assert (form["app_id"], form["sign_type"], form["charset"], form["version"]) == (
            keys.ALIPAY_APP_ID,
            "RSA2",
            "utf-8",
            "1.0",
        )
        datetime.strptime(form["timestamp"], "%Y-%m-%d %H:%M:%S")  # GMT+8 wall time
        result = answers[form["method"]](json.loads(form["biz_content"]))
        return Response(keys.alipay_answer(form["method"], result, key=key), content_type="text/html;charset=utf-8")

    server.expect_request("/gateway.do", method="POST").respond_with_handler(handle)
    return calls


NOT_EXIST = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}


def test_alipay_precreate_sends_a_signed_request_and_returns_the_qr_code(providers: HTTPServer) -> None:
    def precreate(biz: dict[str, Any]) -> dict[str, Any]:
        assert biz["out_trade_no"] == REF
        assert biz["total_amount"] == "20.00"
        assert biz["subject"] == "Order 42"
        datetime.strptime(biz["time_expire"], "%Y-%m-%d %H:%M:%S")
        return {"code": "10000", "msg": "Success", "out_trade_no": REF, "qr_code": "https://qr.alipay.com/bax03431"}

    calls = alipay_gateway(providers, {"alipay.trade.precreate": precreate})
    created = get_provider("alipay").create_payment(payment("alipay_f2f"))
    assert (created.qr_code, created.provider_payment_id) == ("https://qr.alipay.com/bax03431", REF)
    assert calls[0]["notify_url"] == NOTIFY + "alipay"


def test_alipay_unscanned_trade_is_not_found_on_query_and_close(providers: HTTPServer) -> None:
    alipay_gateway(providers, {"alipay.trade.query": lambda _: NOT_EXIST, "alipay.trade.close": lambda _: NOT_EXIST})
    assert get_provider("alipay").query_payment(ORDER, None).status is PaymentStatus.NOT_FOUND
    assert get_provider("alipay").close_payment(ORDER, REF).status is PaymentStatus.NOT_FOUND


def test_alipay_close_of_a_paid_trade_reports_paid(providers: HTTPServer) -> None:
    status_error = {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR"}
    paid = {
        "code": "10000",
        "msg": "Success",
        "trade_no": "2026010122001404010000000001",
        "out_trade_no": REF,
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "20.00",
        "send_pay_date": "2026-01-01 08:00:01",
    }
    alipay_gateway(providers, {"alipay.trade.close": lambda _: status_error, "alipay.trade.query": lambda _: paid})
    state = get_provider("alipay").close_payment(ORDER, REF)
    assert (state.status, state.amount, state.provider_payment_id) == (
        PaymentStatus.PAID,
        2000,
        "2026010122001404010000000001",
    )


def test_alipay_refund_uses_our_refund_id_and_confirms_a_repeat_by_query(providers: HTTPServer) -> None:
    def refund(biz: dict[str, Any]) -> dict[str, Any]:
        assert biz == {"out_trade_no": REF, "refund_amount": "5.00", "out_request_no": uuid.UUID(REFUND).hex}
        return {"code": "10000", "msg": "Success", "fund_change": answers_fund_change.pop(0), "refund_fee": "5.00"}

    answers_fund_change = ["Y", "N"]
    query = {"code": "10000", "msg": "Success", "refund_status": "REFUND_SUCCESS", "refund_amount": "5.00"}
    calls = alipay_gateway(
        providers, {"alipay.trade.refund": refund, "alipay.trade.fastpay.refund.query": lambda _: query}
    )
    first = get_provider("alipay").refund(ORDER, None, REFUND, 500, "CNY", 2000)
    repeat = get_provider("alipay").refund(ORDER, None, REFUND, 500, "CNY", 2000)
    assert first.status is RefundStatus.SUCCEEDED
    assert repeat.status is RefundStatus.SUCCEEDED
    assert [c["method"] for c in calls] == [
        "alipay.trade.refund",
        "alipay.trade.refund",
        "alipay.trade.fastpay.refund.query",
    ]


def test_alipay_answer_signed_with_another_key_is_not_believed(providers: HTTPServer) -> None:
    alipay_gateway(providers, {"alipay.trade.query": lambda _: NOT_EXIST}, key="attacker")
    with pytest.raises(ProviderError, match="signature"):
        get_provider("alipay").query_payment(ORDER, None)


def test_alipay_notification_is_verified_with_the_key_from_secrets_manager(providers: HTTPServer) -> None:
    body = keys.alipay_notification(
        {
            "app_id": keys.ALIPAY_APP_ID,
            "seller_id": keys.ALIPAY_SELLER_ID,
            "out_trade_no": REF,
            "trade_no": "2026010122001404010000000001",
            "trade_status": "TRADE_SUCCESS",
            "total_amount": "20.00",
            "notify_time": "2026-01-01 08:00:03",
        }
    )
    [event] = get_provider("alipay").parse_callback({}, body, now=time.time())
    assert (event.kind, event.order_id, event.amount) == (EventKind.PAYMENT_SUCCEEDED, ORDER, 2000)


# ================================================================ WeChat Pay
# Answers: Native下单 {"code_url": ...}, 查询订单 (trade_state, amount.total), 关闭订单 204, 申请退款
# (status PROCESSING/SUCCESS), errors {"code": "ORDER_NOT_EXIST", "message": ...}; all signed with
# Wechatpay-* headers (apiv3/apis/chapter3_4_1, 3_4_2, 3_4_3, 3_4_9).


def wechat_api(
    server: HTTPServer,
    path: str,
    method: str,
    answer: Callable[[dict[str, Any]], tuple[int, dict[str, Any] | None]],
    *,
    key: str = "wechat-pubkey",
) -> list[Request]:
    """Play one WeChat Pay v3 endpoint: verify the merchant's Authorization, sign the answer."""
    calls: list[Request] = []

    def handle(request: Request) -> Response:
        calls.append(request)
        scheme, _, params = request.headers["Authorization"].partition(" ")
        assert scheme == "WECHATPAY2-SHA256-RSA2048"
        fields = dict(part.split("=", 1) for part in params.split(","))
        fields = {k: v.strip('"') for k, v in fields.items()}
        assert fields["mchid"] == keys.WECHAT_MCHID
        assert fields["serial_no"] == keys.WECHAT_MERCHANT_SERIAL
        assert abs(int(fields["timestamp"]) - time.time()) < 60
        target = request.full_path.rstrip("?")
        body = request.get_data(as_text=True)
        message = f"{request.method}\n{target}\n{fields['timestamp']}\n{fields['nonce_str']}\n{body}\n".encode()
        assert keys.verify("wechat-merchant", message, fields["signature"]), "Authorization does not verify"
        assert request.headers["Wechatpay-Serial"] == keys.WECHAT_PUBLIC_KEY_ID
        status, document = answer(json.loads(body) if body else {})
        raw = json.dumps(document, ensure_ascii=False).encode() if document is not None else b""
        headers = keys.wechat_headers(raw, timestamp=int(time.time()), key=key)
        return Response(raw, status=status, headers=headers, content_type="application/json")

    server.expect_request(path, method=method).respond_with_handler(handle)
    return calls


def test_wechat_native_order_is_signed_and_returns_the_code_url(providers: HTTPServer) -> None:
    def native(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert body["appid"] == keys.WECHAT_APPID
        assert body["mchid"] == keys.WECHAT_MCHID
        assert body["out_trade_no"] == REF
        assert body["amount"] == {"total": 2000, "currency": "CNY"}
        assert body["notify_url"] == NOTIFY + "wechatpay"
        assert body["time_expire"].endswith("+08:00")
        return 200, {"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}

    calls = wechat_api(providers, "/v3/pay/transactions/native", "POST", native)
    created = get_provider("wechatpay").create_payment(payment("wechatpay_native"))
    assert calls
    assert (created.qr_code, created.provider_payment_id) == ("weixin://wxpay/bizpayurl?pr=p4lpSuKzz", REF)


def test_wechat_query_by_out_trade_no(providers: HTTPServer) -> None:
    answers = iter(
        [
            (404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}),
            (
                200,
                {
                    "appid": keys.WECHAT_APPID,
                    "mchid": keys.WECHAT_MCHID,
                    "out_trade_no": REF,
                    "transaction_id": "4200000000202601010000000001",
                    "trade_type": "NATIVE",
                    "trade_state": "SUCCESS",
                    "success_time": "2026-01-01T08:00:01+08:00",
                    "amount": {"total": 2000, "payer_total": 2000, "currency": "CNY", "payer_currency": "CNY"},
                },
            ),
        ]
    )
    calls = wechat_api(providers, f"/v3/pay/transactions/out-trade-no/{REF}", "GET", lambda _: next(answers))
    assert get_provider("wechatpay").query_payment(ORDER, None).status is PaymentStatus.NOT_FOUND
    state = get_provider("wechatpay").query_payment(ORDER, None)
    assert (state.status, state.amount, state.provider_payment_id) == (
        PaymentStatus.PAID,
        2000,
        "4200000000202601010000000001",
    )
    assert calls[0].args["mchid"] == keys.WECHAT_MCHID


def test_wechat_close(providers: HTTPServer) -> None:
    def close(body: dict[str, Any]) -> tuple[int, None]:
        assert body == {"mchid": keys.WECHAT_MCHID}
        return 204, None

    wechat_api(providers, f"/v3/pay/transactions/out-trade-no/{REF}/close", "POST", close)
    assert get_provider("wechatpay").close_payment(ORDER, REF).status is PaymentStatus.CLOSED


def test_wechat_refund_sends_fen_and_our_refund_id(providers: HTTPServer) -> None:
    def refund(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert body["transaction_id"] == "4200000000202601010000000001"
        assert body["out_refund_no"] == uuid.UUID(REFUND).hex
        assert body["amount"] == {"refund": 500, "total": 2000, "currency": "CNY"}
        return 200, {
            "refund_id": "50000000382019052709732678859",
            "out_refund_no": body["out_refund_no"],
            "status": "PROCESSING",
        }

    wechat_api(providers, "/v3/refund/domestic/refunds", "POST", refund)
    result = get_provider("wechatpay").refund(ORDER, "4200000000202601010000000001", REFUND, 500, "CNY", 2000)
    assert (result.provider_refund_id, result.status) == ("50000000382019052709732678859", RefundStatus.PENDING)


def test_wechat_answer_signed_with_another_key_is_not_believed(providers: HTTPServer) -> None:
    wechat_api(
        providers,
        "/v3/pay/transactions/native",
        "POST",
        lambda _: (200, {"code_url": "weixin://wxpay/bizpayurl?pr=forged"}),
        key="attacker",
    )
    with pytest.raises(ProviderError, match="not verified"):
        get_provider("wechatpay").create_payment(payment("wechatpay_native"))


def test_wechat_notification_is_verified_and_decrypted_with_keys_from_secrets_manager(providers: HTTPServer) -> None:
    resource = {
        "mchid": keys.WECHAT_MCHID,
        "appid": keys.WECHAT_APPID,
        "out_trade_no": REF,
        "transaction_id": "4200000000202601010000000001",
        "trade_state": "SUCCESS",
        "success_time": "2026-01-01T08:00:01+08:00",
        "amount": {"total": 2000, "currency": "CNY"},
    }
    body = keys.wechat_notification("TRANSACTION.SUCCESS", resource)
    now = int(time.time())
    [event] = get_provider("wechatpay").parse_callback(keys.wechat_headers(body, timestamp=now), body, now=now)
    assert (event.order_id, event.amount, event.currency) == (ORDER, 2000, "CNY")

"""Stripe: PaymentIntents (WeChat Pay QR code, Alipay redirect), Checkout Sessions (cards), refunds,
and webhooks verified with Stripe's signature scheme.

API calls go through the official ``stripe`` library (pinned in the layer), imported on first use:
``import stripe`` costs about half of ``import boto3`` (docs/providers.md), and the callbacks
function never pays it, because webhook verification needs no library (see
:func:`paycore.providers.common.verify_timestamped_hmac`; stripe-python's own check reads the clock
itself and accepts timestamps from the future, while our interface passes ``now``).

A channel picks the payment method with ``options.payment_method``:

- ``wechat_pay``: a PaymentIntent confirmed at once; ``qr_code`` is
  ``next_action.wechat_pay_display_qr_code.data`` and ``checkout_url`` Stripe's hosted QR page
  (docs.stripe.com/payments/wechat-pay/accept-a-payment?payment-ui=direct-api).
- ``alipay``: a PaymentIntent confirmed at once; ``checkout_url`` is
  ``next_action.alipay_handle_redirect.url`` (docs.stripe.com/payments/alipay/accept-a-payment).
- ``card`` (default): a Checkout Session; ``checkout_url`` is its ``url``
  (docs.stripe.com/api/checkout/sessions/create).

Every payment carries ``metadata.order_id`` (Checkout copies it to its PaymentIntent through
``payment_intent_data.metadata``), so ``payment_intent.succeeded`` is the single source of paid
events for all three flows; Checkout's own ``checkout.session.*`` events are acknowledged and
ignored, which keeps one paid event per payment. Idempotency keys are derived from our ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from paycore import money
from paycore.config import provider_settings
from paycore.errors import ConfigurationError
from paycore.observability import tracer
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
from paycore.providers.common import header, verify_timestamped_hmac

NAME = "stripe"
STRIPE_API = "https://api.stripe.com"  # stripe.DEFAULT_API_BASE
WEBHOOK_TOLERANCE = 300  # seconds; Stripe's default tolerance (docs.stripe.com/webhooks#replay-attacks)

# Currencies Stripe accepts per method (docs.stripe.com/payments/wechat-pay, .../alipay: "Supported
# currencies"; Alipay's presentment list adds CNY). The channel's own currency list comes first.
WECHAT_PAY_CURRENCIES = frozenset(
    {"AUD", "CAD", "CNY", "EUR", "GBP", "HKD", "JPY", "SGD", "USD", "DKK", "NOK", "SEK", "CHF"}
)
ALIPAY_CURRENCIES = frozenset({"AUD", "CAD", "CNY", "EUR", "GBP", "HKD", "JPY", "NZD", "SGD", "USD", "MYR"})

# Stripe's minor units differ from ISO 4217 for a few currencies (docs.stripe.com/currencies):
# zero-decimal ones are sent in whole units, BHD JOD KWD OMR TND in thousandths with a last digit
# of 0, ISK stays two-decimal in the API (amounts divisible by 100). Others: ISO's exponent.
_STRIPE_ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
_STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
_STRIPE_TWO_DECIMAL_SPECIAL = frozenset({"ISK"})

_CHECKOUT_MIN_LIFETIME = 30 * 60 + 60  # Checkout's expires_at must be >= 30 min ahead (plus a margin)

T = TypeVar("T")


def _stripe_exponent(currency: str) -> int:
    if currency in _STRIPE_ZERO_DECIMAL:
        return 0
    if currency in _STRIPE_THREE_DECIMAL:
        return 3
    if currency in _STRIPE_TWO_DECIMAL_SPECIAL:
        return 2
    return money.exponent(currency)


def to_stripe_amount(amount: int, currency: str) -> int:
    """Our minor units as Stripe's; refuses an amount Stripe cannot take exactly."""
    shift = _stripe_exponent(currency) - money.exponent(currency)
    if shift >= 0:
        value = amount * 10**shift
    else:
        value, rest = divmod(amount, 10**-shift)
        if rest:
            raise ProviderError(f"{amount} {currency} has no exact Stripe amount", provider=NAME, retryable=False)
    if currency in _STRIPE_THREE_DECIMAL and value % 10:
        raise ProviderError(f"Stripe needs {currency} amounts in tens of minor units", provider=NAME, retryable=False)
    return int(value)


def from_stripe_amount(value: Any, currency: str) -> int:
    """Stripe's amount back in our minor units (exact, or refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCallback("Stripe amount is not an integer")
    shift = _stripe_exponent(currency) - money.exponent(currency)
    if shift <= 0:
        return int(value * 10**-shift)
    whole, rest = divmod(value, 10**shift)
    if rest:
        raise InvalidCallback(f"Stripe amount {value} {currency} has no exact minor-unit value")
    return int(whole)


def _currency(code: Any) -> str:
    text = str(code or "").upper()
    if not money.is_currency(text):
        raise InvalidCallback(f"unknown currency {code!r}")
    return text


class StripeProvider:
    name = NAME

    def __init__(self, accounts: AccountSource | None = None):
        self._accounts: AccountSource = accounts or ChannelAccounts(NAME, STRIPE_API)
        self._client: tuple[tuple[str, str], Any] | None = None

    # ------------------------------------------------------------ plumbing

    def _stripe(self, account: ProviderAccount) -> Any:
        """A StripeClient for the account, created once per key and base URL."""
        api_key = str(account.credential("api_key"))
        cache_key = (account.api_base, api_key)
        if self._client is None or self._client[0] != cache_key:
            import stripe

            # Stripe calls through `requests`: trace it from here on (paycore.observability
            # patches only the AWS clients at init).
            tracer.patch(modules=("requests",))
            client = stripe.StripeClient(
                api_key,
                base_addresses={"api": account.api_base},
                http_client=stripe.RequestsClient(timeout=provider_settings().http_timeout),
                # Retries reuse the request's idempotency key, so a retried create is the same create.
                max_network_retries=1,
            )
            self._client = (cache_key, client)
        return self._client[1]

    def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run one API call; Stripe's errors become ProviderError, objects plain dicts."""
        import stripe

        try:
            result = func(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
            raise ProviderError(f"Stripe unavailable: {type(exc).__name__}", provider=NAME) from exc
        except stripe.StripeError as exc:
            code = getattr(exc, "code", None) or type(exc).__name__
            raise ProviderError(f"Stripe refused the request: {code}", provider=NAME, retryable=False) from exc
        plain: dict[str, Any] = result.to_dict()
        return plain

    def _invalid_request(self) -> type[Exception]:
        import stripe

        return stripe.InvalidRequestError  # type: ignore[no-any-return]

    # ------------------------------------------------------------ payments

    def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        account = self._accounts.account()
        options: Mapping[str, Any] = request.channel.get("options") or {}
        method = str(options.get("payment_method", "card"))
        amount = to_stripe_amount(request.amount, request.currency)
        metadata = {"order_id": request.order_id, "flow": method}
        client = self._stripe(account)
        if method in ("wechat_pay", "alipay"):
            allowed = WECHAT_PAY_CURRENCIES if method == "wechat_pay" else ALIPAY_CURRENCIES
            if request.currency not in allowed:
                raise ProviderError(f"Stripe {method} does not take {request.currency}", provider=NAME, retryable=False)
            params: dict[str, Any] = {
                "amount": amount,
                "currency": request.currency.lower(),
                "payment_method_types": [method],
                "payment_method_data": {"type": method},
                "confirm": True,
                "description": request.subject,
                "metadata": metadata,
            }
            if method == "wechat_pay":
                params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
            else:
                params["return_url"] = self._return_url(request, options)
            intent = self._call(
                client.v1.payment_intents.create,
                params=params,
                options={"idempotency_key": f"order-{request.order_id}-payment"},
            )
            next_action = intent.get("next_action") or {}
            if method == "wechat_pay":
                display = next_action.get("wechat_pay_display_qr_code") or {}
                qr_code, checkout_url = display.get("data"), display.get("hosted_instructions_url")
            else:
                qr_code, checkout_url = None, (next_action.get("alipay_handle_redirect") or {}).get("url")
            if not (qr_code or checkout_url):
                raise ProviderError(f"Stripe gave no next action for {method}", provider=NAME)
            return CreatedPayment(intent["id"], qr_code, checkout_url, request.expires_at)
        if method != "card":
            raise ConfigurationError(f"Stripe channel payment_method {method!r} is not one of card, wechat_pay, alipay")
        session_params: dict[str, Any] = {
            "mode": "payment",
            "payment_method_types": ["card"],
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": amount,
                        "product_data": {"name": request.subject},
                    },
                }
            ],
            "client_reference_id": request.order_id,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata, "description": request.subject},
            "success_url": self._return_url(request, options),
        }
        if options.get("cancel_url"):
            session_params["cancel_url"] = str(options["cancel_url"])
        expires_at = int(request.expires_at.timestamp())
        if expires_at - int(datetime.now(UTC).timestamp()) >= _CHECKOUT_MIN_LIFETIME:
            session_params["expires_at"] = expires_at
        # Otherwise Stripe's default (24 h) applies and close_payment expires the session on time.
        session = self._call(
            client.v1.checkout.sessions.create,
            params=session_params,
            options={"idempotency_key": f"order-{request.order_id}-checkout"},
        )
        if not session.get("url"):
            raise ProviderError("Stripe gave no Checkout URL", provider=NAME)
        return CreatedPayment(session["id"], None, session["url"], request.expires_at)

    @staticmethod
    def _return_url(request: PaymentRequest, options: Mapping[str, Any]) -> str:
        url = request.return_url or options.get("return_url")
        if not url:
            raise ConfigurationError("this Stripe channel needs a return_url (request or channel options)")
        return str(url)

    def query_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
        client = self._stripe(self._accounts.account())
        if provider_payment_id and provider_payment_id.startswith("cs_"):
            session = self._call(client.v1.checkout.sessions.retrieve, provider_payment_id)
            return self._session_state(client, session)
        intent = self._find_intent(client, order_id, provider_payment_id)
        if intent is None:
            return PaymentState(PaymentStatus.NOT_FOUND, None)
        return self._intent_state(intent)

    def close_payment(self, order_id: str, provider_payment_id: str | None) -> PaymentState:
        client = self._stripe(self._accounts.account())
        if provider_payment_id and provider_payment_id.startswith("cs_"):
            try:
                session = self._call(client.v1.checkout.sessions.expire, provider_payment_id)
            except ProviderError as exc:
                if exc.retryable or not isinstance(exc.__cause__, self._invalid_request()):
                    raise
                # Not open any more (completed or already expired): report what it is.
                session = self._call(client.v1.checkout.sessions.retrieve, provider_payment_id)
            return self._session_state(client, session)
        intent = self._find_intent(client, order_id, provider_payment_id)
        if intent is None:
            return PaymentState(PaymentStatus.NOT_FOUND, None)
        if intent.get("status") in ("succeeded", "canceled"):
            return self._intent_state(intent)
        try:
            intent = self._call(
                client.v1.payment_intents.cancel, intent["id"], params={"cancellation_reason": "abandoned"}
            )
        except ProviderError as exc:
            if exc.retryable or not isinstance(exc.__cause__, self._invalid_request()):
                raise
            # payment_intent_unexpected_state: the payer won the race; read what happened.
            intent = self._call(client.v1.payment_intents.retrieve, intent["id"])
        return self._intent_state(intent)

    def refund(
        self, order_id: str, provider_payment_id: str | None, refund_id: str, amount: int, currency: str, total: int
    ) -> RefundResult:
        client = self._stripe(self._accounts.account())
        intent_id: str | None = provider_payment_id
        if provider_payment_id and provider_payment_id.startswith("cs_"):
            session = self._call(client.v1.checkout.sessions.retrieve, provider_payment_id)
            intent_id = _id_of(session.get("payment_intent"))
        if not intent_id:
            found = self._find_intent(client, order_id, None)
            intent_id = found["id"] if found else None
        if not intent_id:
            raise ProviderError(f"no Stripe payment to refund for order {order_id}", provider=NAME, retryable=False)
        refund = self._call(
            client.v1.refunds.create,
            params={
                "payment_intent": intent_id,
                "amount": to_stripe_amount(amount, currency),
                "reason": "requested_by_customer",
                "metadata": {"order_id": order_id, "refund_id": refund_id},
            },
            options={"idempotency_key": f"refund-{refund_id}"},
        )
        return RefundResult(refund.get("id"), _refund_status(refund.get("status")))

    # ------------------------------------------------------------ state mapping

    def _find_intent(self, client: Any, order_id: str, provider_payment_id: str | None) -> dict[str, Any] | None:
        if provider_payment_id:
            return self._call(client.v1.payment_intents.retrieve, provider_payment_id)
        # No id kept (the create answer was lost): Stripe's search by our metadata.
        found = self._call(
            client.v1.payment_intents.search, params={"query": f"metadata['order_id']:'{_quote(order_id)}'"}
        )
        data = found.get("data") or []
        return data[0] if data else None

    @staticmethod
    def _intent_state(intent: Mapping[str, Any]) -> PaymentState:
        status = intent.get("status")
        currency = str(intent.get("currency", "")).upper() or None
        mapped = {
            "succeeded": PaymentStatus.PAID,
            "canceled": PaymentStatus.CLOSED,
        }.get(str(status), PaymentStatus.PENDING)
        amount = intent.get("amount_received") if mapped is PaymentStatus.PAID else intent.get("amount")
        paid_at = None
        if mapped is PaymentStatus.PAID and isinstance(intent.get("created"), int):
            paid_at = datetime.fromtimestamp(intent["created"], UTC)
        return PaymentState(
            mapped,
            intent.get("id"),
            amount=_amount_or_none(amount, currency),
            currency=currency,
            paid_at=paid_at,
        )

    def _session_state(self, client: Any, session: Mapping[str, Any]) -> PaymentState:
        currency = str(session.get("currency", "")).upper() or None
        amount = _amount_or_none(session.get("amount_total"), currency)
        if session.get("payment_status") == "paid":
            intent_id = _id_of(session.get("payment_intent"))
            return PaymentState(PaymentStatus.PAID, intent_id or session.get("id"), amount=amount, currency=currency)
        if session.get("status") == "expired":
            return PaymentState(PaymentStatus.CLOSED, session.get("id"), amount=amount, currency=currency)
        return PaymentState(PaymentStatus.PENDING, session.get("id"), amount=amount, currency=currency)

    # ------------------------------------------------------------ webhooks

    def parse_callback(self, headers: Mapping[str, str], raw_body: bytes, *, now: float) -> list[ProviderEvent]:
        """Verify ``Stripe-Signature`` with the account's endpoint secrets, then read the event.

        Answers the events of docs.stripe.com/api/events/types that change an order:
        ``payment_intent.succeeded`` / ``payment_intent.payment_failed`` (not for Checkout, where the
        payer may try another card) and ``refund.created`` / ``refund.updated`` / ``refund.failed``
        once the refund is final. Anything else verified is acknowledged with no event.
        """
        account = self._accounts.account()
        secrets = account.credential("webhook_secrets")
        if isinstance(secrets, str):
            secrets = [secrets]
        verify_timestamped_hmac(
            header(headers, "Stripe-Signature"),
            raw_body,
            [str(s) for s in secrets],
            now=now,
            tolerance=WEBHOOK_TOLERANCE,
        )
        try:
            event = json.loads(raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidCallback("event is not JSON") from exc
        if not isinstance(event, dict) or event.get("object") != "event" or not event.get("id"):
            raise InvalidCallback("not a Stripe event")
        obj = (event.get("data") or {}).get("object")
        if not isinstance(obj, dict):
            raise InvalidCallback("event has no data.object")
        created = event.get("created")
        occurred_at = (
            datetime.fromtimestamp(created, UTC) if isinstance(created, int) else datetime.fromtimestamp(now, UTC)
        )
        metadata = obj.get("metadata") or {}
        order_id = metadata.get("order_id")
        if not order_id:
            return []  # not one of ours (another integration on the same account)
        kind = _event_kind(str(event.get("type")), obj, metadata)
        if kind is None:
            return []
        currency = _currency(obj.get("currency"))
        if kind in (EventKind.PAYMENT_SUCCEEDED, EventKind.PAYMENT_FAILED):
            raw_amount = obj.get("amount_received") if kind is EventKind.PAYMENT_SUCCEEDED else obj.get("amount")
            return [
                ProviderEvent(
                    event_id=str(event["id"]),
                    kind=kind,
                    order_id=str(order_id),
                    provider_payment_id=obj.get("id"),
                    amount=from_stripe_amount(raw_amount, currency),
                    currency=currency,
                    occurred_at=occurred_at,
                )
            ]
        return [
            ProviderEvent(
                event_id=str(event["id"]),
                kind=kind,
                order_id=str(order_id),
                provider_payment_id=_id_of(obj.get("payment_intent")),
                amount=from_stripe_amount(obj.get("amount"), currency),
                currency=currency,
                occurred_at=occurred_at,
                refund_id=metadata.get("refund_id"),
                provider_refund_id=obj.get("id"),
            )
        ]

    def ack(self, accepted: bool) -> CallbackAck:
        # Stripe reads only the status: 2xx is delivered, anything else is retried for days.
        if accepted:
            return CallbackAck(200, '{"received": true}', "application/json")
        return CallbackAck(400, '{"received": false}', "application/json")


def _event_kind(event_type: str, obj: Mapping[str, Any], metadata: Mapping[str, Any]) -> EventKind | None:
    if event_type == "payment_intent.succeeded":
        return EventKind.PAYMENT_SUCCEEDED
    if event_type == "payment_intent.payment_failed":
        return None if metadata.get("flow") == "card" else EventKind.PAYMENT_FAILED
    if event_type in ("refund.created", "refund.updated", "refund.failed"):
        status = _refund_status(obj.get("status"))
        if status is RefundStatus.SUCCEEDED:
            return EventKind.REFUND_SUCCEEDED
        if status is RefundStatus.FAILED:
            return EventKind.REFUND_FAILED
    return None


def _refund_status(status: Any) -> RefundStatus:
    # docs.stripe.com/api/refunds/object#refund_object-status
    if status == "succeeded":
        return RefundStatus.SUCCEEDED
    if status in ("failed", "canceled"):
        return RefundStatus.FAILED
    return RefundStatus.PENDING


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("id")
    return str(value) if value else None


def _amount_or_none(value: Any, currency: str | None) -> int | None:
    if currency is None or not money.is_currency(currency) or not isinstance(value, int):
        return None
    try:
        return from_stripe_amount(value, currency)
    except InvalidCallback:
        return None


def _quote(value: str) -> str:
    # Stripe's search query language quotes with ' and escapes with \ (docs.stripe.com/search).
    return value.replace("\\", "\\\\").replace("'", "\\'")


def factory() -> StripeProvider:
    return StripeProvider()

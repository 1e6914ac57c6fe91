"""Helpers for the order, callback and sandbox suites: signed API calls through the real handlers.

``ApiUser`` is a caller as the authorizer describes it (user id, session id, the session's key
version) plus the session's signing key from login; the ``identity`` fixture makes them through the identity functions.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from paycore import request_signature
from tests.conftest import AwsStack, load_handler
from tests.helpers import FakeContext, load_event


@dataclass
class ApiUser:
    """A logged-in user as the orders API sees them: the authorizer's context and the session key."""

    user_id: str
    session_id: str
    key: bytes
    access_token: str
    key_version: str | None = None  # the session's, as the authorizer passes it in its context


class Identity:
    """Real users through the identity functions (register, verify, login) and the authorizer."""

    def __init__(self) -> None:
        self.count = 0

    def user(self, name: str = "alice") -> ApiUser:
        from tests.identity_support import authorize, log_in, new_user, register, verify

        self.count += 1
        tokens = log_in(verify(register(new_user(self.count))))
        context = authorize(tokens["access_token"])["context"]
        key_b64 = tokens["signing_key"]
        return ApiUser(
            user_id=str(context["user_id"]),
            session_id=str(context["session_id"]),
            key=base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4)),
            access_token=tokens["access_token"],
            key_version=str(context["key_version"]),
        )

    def log_out(self, user: ApiUser) -> None:
        from tests.identity_support import call as identity_call

        answer = identity_call("/auth/logout", authorizer={"user_id": user.user_id, "session_id": user.session_id})
        assert answer["statusCode"] == 204, answer

    @staticmethod
    def verify_detached(signature: str, payload: bytes) -> None:
        from paycore.identity.keys import verify_detached

        verify_detached(signature, payload)


# ------------------------------------------------------------------ API events


def api_event(
    template: str,
    *,
    user: ApiUser | None,
    path_params: dict[str, str] | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A sample event of events/<function>/<case>.json, retargeted (path, body, caller)."""
    function, case = template.split("/")
    event = load_event(function, case)
    path = event["resource"]
    for name, value in (path_params or {}).items():
        path = path.replace("{" + name + "}", value)
    event["path"] = path
    event["pathParameters"] = path_params
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    merged = {k: v for k, v in event["headers"].items() if k.lower() != "x-signature"}
    merged.update(headers or {})
    event["headers"] = merged
    event["multiValueHeaders"] = {k: [v] for k, v in merged.items()}
    if user is None:
        event["requestContext"].pop("authorizer", None)
    else:
        event["requestContext"]["authorizer"] = {
            "user_id": user.user_id,
            "session_id": user.session_id,
            "principalId": user.user_id,
        }
        if user.key_version is not None:
            event["requestContext"]["authorizer"]["key_version"] = user.key_version
    return event


def sign_event(event: dict[str, Any], user: ApiUser, *, now: float | None = None, nonce: str | None = None) -> str:
    """Put a valid X-Signature on ``event`` (over its method, path and body); returns the header."""
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    header = request_signature.sign(
        user.key,
        int(time.time() if now is None else now),
        nonce or secrets.token_urlsafe(16),
        event["httpMethod"],
        event["path"],
        raw,
    )
    event["headers"]["X-Signature"] = header
    event["multiValueHeaders"]["X-Signature"] = [header]
    return header


def call(function: str, event: dict[str, Any], handler: Any = None) -> dict[str, Any]:
    module = handler or load_handler(function)
    return module.lambda_handler(copy.deepcopy(event), FakeContext())


def concurrently(calls: list[Any]) -> list[Any]:
    """Run each zero-argument callable in its own thread, released together; their results in order.

    Threads call ``paycore`` (what the handler calls), not the handler: Powertools' resolver keeps
    the current event on a class attribute, which Lambda's one-invocation-per-container model makes
    safe and threads in one process would share.
    """
    import threading

    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class Orders:
    """The orders API as one user calls it, every state-changing call signed."""

    def __init__(self, user: ApiUser):
        self.user = user

    def create(self, **fields: Any) -> dict[str, Any]:
        body = new_order(**fields)
        event = api_event("orders/create_order", user=self.user, body=body)
        sign_event(event, self.user)
        return call("orders", event)

    def create_event(self, body: dict[str, Any]) -> dict[str, Any]:
        event = api_event("orders/create_order", user=self.user, body=body)
        sign_event(event, self.user)
        return event

    def get(self, order_id: str) -> dict[str, Any]:
        return call("orders", api_event("orders/get_order", user=self.user, path_params={"order_id": order_id}))

    def list(self, **query: str) -> dict[str, Any]:
        return call("orders", api_event("orders/list_orders", user=self.user, query=query or None))

    def cancel(self, order_id: str) -> dict[str, Any]:
        event = api_event("orders/cancel_order", user=self.user, path_params={"order_id": order_id}, body="")
        sign_event(event, self.user)
        return call("orders", event)

    def refund(self, order_id: str, refund_id: str, amount: int, reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"refund_id": refund_id, "amount": amount}
        if reason is not None:
            body["reason"] = reason
        event = api_event("orders/create_refund", user=self.user, path_params={"order_id": order_id}, body=body)
        sign_event(event, self.user)
        return call("orders", event)


def new_order(**fields: Any) -> dict[str, Any]:
    body = {
        "order_id": str(uuid.uuid4()),
        "amount": 1000,
        "currency": "CNY",
        "channel": "sandbox",
        "subject": "Coffee beans, 250 g",
    }
    body.update(fields)
    return body


# ------------------------------------------------------------------ provider side


def webhook_secret(stack: AwsStack) -> bytes:
    arn = stack.name("SandboxWebhookSecret")
    value = stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    return str(json.loads(value)["webhook_secret"]).encode()


def sandbox_event(
    order: dict[str, Any], kind: str = "payment.succeeded", *, event_id: str | None = None, **data: Any
) -> bytes:
    """A sandbox webhook body for ``order`` (an order as the API returned it)."""
    payment_id = order["payment"]["checkout_url"].rsplit("/", 1)[-1] if order.get("payment") else "pay_x"
    body = {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "type": kind,
        "created": int(time.time()),
        "data": {
            "payment_id": payment_id,
            "order_id": order["order_id"],
            "amount": order["amount"],
            "currency": order["currency"],
            **data,
        },
    }
    return json.dumps(body, sort_keys=True).encode()


def late_payment(order_id: str, amount: int, currency: str, payment_id: str | None = None) -> bytes:
    """A sandbox webhook reporting a payment of the order under a new event id: what a provider
    sends when the payer paid after the order closed (``payment_id``: the order's payment), or paid
    a second time (a new payment id)."""
    return sandbox_event(
        {"order_id": order_id, "amount": amount, "currency": currency},
        event_id=f"evt_late_{secrets.token_hex(8)}",
        payment_id=payment_id or f"pay_{secrets.token_hex(12)}",
    )


def callback_event(raw_body: bytes, signature: str | None, provider: str = "sandbox") -> dict[str, Any]:
    event = load_event("callbacks", "sandbox_payment_succeeded")
    event["path"] = f"/callbacks/{provider}"
    event["pathParameters"] = {"provider": provider}
    event["body"] = raw_body.decode()
    headers = {k: v for k, v in event["headers"].items() if k != "Sandbox-Signature"}
    if signature is not None:
        headers["Sandbox-Signature"] = signature
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    return event


def deliver_callback(stack: AwsStack, raw_body: bytes, *, now: float | None = None) -> dict[str, Any]:
    from paycore.sandbox.webhooks import sign

    signature = sign(webhook_secret(stack), int(time.time() if now is None else now), raw_body)
    return call("callbacks", callback_event(raw_body, signature))


def table_items(stack: AwsStack, logical_id: str) -> list[dict[str, Any]]:
    """Every item of a table (a test's census; never done on a request path)."""
    ddb = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": stack.name(logical_id), "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def queued_jobs(stack: AwsStack) -> list[dict[str, Any]]:
    """Drain the sandbox webhook queue (delays ignored: moto hides delayed messages, so read them
    through moto's backend)."""
    from moto.sqs.models import sqs_backends

    queue_name = stack.name("SandboxWebhookQueue").rsplit("/", 1)[-1]
    queue = sqs_backends["123456789012"]["us-east-1"].queues[queue_name]
    jobs = [
        {**json.loads(m.body), "delay": round(max(0.0, m.delayed_until - (m.sent_timestamp or 0)) / 1000)}
        for m in queue._messages
    ]
    queue._messages.clear()
    return jobs


def header(response: dict[str, Any], name: str) -> str | None:
    """A response header, wherever the resolver put it (headers or multiValueHeaders)."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower() and values:
            return str(values[0])
    return None


class Captured:
    """Messages an SQS queue received from a rule on the orders bus or a subscription to the ops topic."""

    def __init__(self, stack: AwsStack, url: str):
        self.sqs = stack.client("sqs")
        self.url = url

    def read(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = page.get("Messages", [])
            if not messages:
                return found
            for m in messages:
                found.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])


def _capture_queue(stack: AwsStack, name: str) -> tuple[str, str]:
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def capture_domain_events(stack: AwsStack) -> Captured:
    url, arn = _capture_queue(stack, f"capture-domain-events-{uuid.uuid4().hex[:6]}")
    events = stack.client("events")
    bus = stack.name("OrdersEventBus")
    events.put_rule(
        Name="capture-all", EventBusName=bus, EventPattern=json.dumps({"source": ["serverless-payments.orders"]})
    )
    events.put_targets(Rule="capture-all", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return Captured(stack, url)


def capture_ops_alerts(stack: AwsStack) -> Captured:
    url, arn = _capture_queue(stack, f"capture-ops-{uuid.uuid4().hex[:6]}")
    stack.client("sns").subscribe(TopicArn=stack.name("OpsTopic"), Protocol="sqs", Endpoint=arn)
    return Captured(stack, url)

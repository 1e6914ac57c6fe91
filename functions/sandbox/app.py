"""The sandbox provider's checkout page: GET shows the payment, POST pays or declines it.

Only where the sandbox provider is deployed (the local stack and dev stages). A browser posts the
form (``action=pay|decline``); a program may post JSON ``{"action": "pay"}`` with
``Accept: application/json`` and gets JSON back.
"""

import json
import time
from typing import Annotated, Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.api import build_resolver, raw_body
from paycore.errors import InvalidRequest
from paycore.observability import logger, metrics, tracer
from paycore.sandbox import checkout, service

app = build_resolver()

# What the page answers, for the OpenAPI document: HTML for a browser, JSON for a program (Accept).
PAGE: dict[int, Any] = {
    200: {
        "description": "The checkout page, or its state as JSON when the request accepts application/json",
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "payment_id": {"type": "string"},
                        "order_id": {"type": "string"},
                        "status": {"type": "string", "enum": ["pending", "paid", "failed", "closed"]},
                        "result": {"type": ["string", "null"], "description": "What the action did, on POST"},
                    },
                    "required": ["payment_id", "order_id", "status", "result"],
                }
            },
        },
    }
}

PaymentId = Annotated[str, Path(pattern=r"^pay_[0-9a-f]{24}$", description="The sandbox payment id")]


def _answer(outcome: service.Outcome | None, payment: Any) -> Response[str]:
    accept = (app.current_event.headers.get("accept") or app.current_event.headers.get("Accept") or "").lower()
    result = outcome.result if outcome else None
    if "application/json" in accept:
        body = {"payment_id": payment.payment_id, "order_id": payment.order_id, "status": payment.status}
        return Response(200, content_types.APPLICATION_JSON, json.dumps({**body, "result": result}))
    return Response(200, "text/html; charset=utf-8", checkout.render(payment, result))


@app.get("/sandbox/checkout/<payment_id>", summary="Sandbox checkout page", tags=["sandbox"], responses=PAGE)
@tracer.capture_method(capture_response=False)
def show(payment_id: PaymentId) -> Response[str]:
    return _answer(None, service.get_payment(payment_id))


@app.post(
    "/sandbox/checkout/<payment_id>", summary="Pay or decline a sandbox payment", tags=["sandbox"], responses=PAGE
)
@tracer.capture_method(capture_response=False)
def act(payment_id: PaymentId) -> Response[str]:
    body = raw_body(app.current_event).decode("utf-8", errors="replace")
    content_type = app.current_event.headers.get("content-type") or app.current_event.headers.get("Content-Type") or ""
    if "application/json" in content_type.lower():
        try:
            action = json.loads(body).get("action")
        except (ValueError, AttributeError) as exc:
            raise InvalidRequest("The body is not a JSON object.") from exc
    else:
        action = (parse_qs(body).get("action") or [None])[0]
    now = int(time.time())
    if action == "pay":
        outcome = service.pay(payment_id, now)
    elif action == "decline":
        outcome = service.decline(payment_id, now)
    else:
        raise InvalidRequest('action must be "pay" or "decline"', code="invalid_action")
    logger.info("sandbox checkout", extra={"payment_id": payment_id, "result": outcome.result})
    return _answer(outcome, outcome.payment)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

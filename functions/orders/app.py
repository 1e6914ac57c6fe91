"""Orders: POST /orders, GET /orders, GET /orders/{order_id}, POST /orders/{order_id}/cancel,
POST /orders/{order_id}/refunds. State-changing calls carry X-Signature (docs/orders.md)."""

import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.api import SIGNED, Caller, build_resolver, caller, public_base_url, raw_body
from paycore.observability import logger, metrics, tracer
from paycore.orders import service
from paycore.orders.auth import route_path, verify_request
from paycore.schemas.orders import (
    UUID_PATTERN,
    CreateOrderIn,
    OrderList,
    OrderOut,
    OrderStatusName,
    RefundCreated,
    RefundIn,
)

app = build_resolver()

OrderId = Annotated[str, Path(pattern=UUID_PATTERN, description="The order's UUID")]


def _signed_caller() -> Caller:
    """The caller, after their X-Signature over this exact request was checked."""
    event = app.current_event
    who = caller(app)
    verify_request(who, event.headers, event.http_method, route_path(event.raw_event), raw_body(event), time.time())
    return who


def _json(status: int, data: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=data)


@app.post(
    "/orders", summary="Create an order (idempotent on order_id)", tags=["orders"], status_code=201, security=SIGNED
)
@tracer.capture_method(capture_response=False)
def create_order(order: Annotated[CreateOrderIn, Body()]) -> Response[OrderOut]:
    who = _signed_caller()
    data = service.create_order(
        who.user_id, order, base_url=public_base_url(app.current_event.raw_event), lambda_context=app.lambda_context
    )
    return _json(201, data)


@app.get("/orders", summary="List the caller's orders", tags=["orders"])
@tracer.capture_method(capture_response=False)
def list_orders(
    status: Annotated[OrderStatusName | None, Query(description="Only orders in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Orders per page")] = 20,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
) -> OrderList:
    who = caller(app)
    return service.list_orders(who.user_id, status, limit, cursor)


@app.get("/orders/<order_id>", summary="Get one of the caller's orders", tags=["orders"])
@tracer.capture_method(capture_response=False)
def get_order(order_id: OrderId) -> OrderOut:
    who = caller(app)
    return service.get_order(who.user_id, order_id)


@app.post("/orders/<order_id>/cancel", summary="Cancel a pending order", tags=["orders"], security=SIGNED)
@tracer.capture_method(capture_response=False)
def cancel_order(order_id: OrderId) -> OrderOut:
    who = _signed_caller()
    return service.cancel_order(who.user_id, order_id)


@app.post(
    "/orders/<order_id>/refunds",
    summary="Refund part or all of a paid order",
    tags=["orders"],
    status_code=201,
    security=SIGNED,
)
@tracer.capture_method(capture_response=False)
def create_refund(order_id: OrderId, refund: Annotated[RefundIn, Body()]) -> Response[RefundCreated]:
    who = _signed_caller()
    data = service.request_refund(who.user_id, order_id, refund, lambda_context=app.lambda_context)
    return _json(201, data)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

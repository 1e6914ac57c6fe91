"""POST /callbacks/{provider}: provider webhooks, verified over the raw body before parsing."""

import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.api import build_resolver, raw_body
from paycore.observability import logger, metrics, tracer
from paycore.orders.callbacks import handle_callback

app = build_resolver()

# The acknowledgement each provider expects (the adapters' ack()), for the OpenAPI document.
ACKS: dict[int, Any] = {
    200: {
        "description": 'Accepted: `{"received": true}` (stripe, sandbox) or the text `success` (alipay)',
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"received": {"type": "boolean"}}, "required": ["received"]}
            },
            "text/plain": {"schema": {"type": "string", "const": "success"}},
        },
    },
    204: {"description": "Accepted (wechatpay)"},
}


@app.post("/callbacks/<provider>", summary="Receive a payment provider's webhook", tags=["callbacks"], responses=ACKS)
@tracer.capture_method(capture_response=False)
def receive(provider: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,32}$")]) -> Response[str]:
    event = app.current_event
    ack = handle_callback(provider, event.headers, raw_body(event), time.time())
    return Response(status_code=ack.status_code, content_type=ack.content_type, body=ack.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

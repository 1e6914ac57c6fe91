"""GET /channels: the payment channels that accept an amount and currency."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore import channels
from paycore.api import build_resolver
from paycore.money import MAX_MINOR_UNITS
from paycore.observability import logger, metrics, tracer
from paycore.schemas.channels import ChannelList

app = build_resolver()


@app.get("/channels", summary="List payment channels", tags=["channels"])
@tracer.capture_method(capture_response=False)
def list_channels(
    amount: Annotated[int | None, Query(gt=0, le=MAX_MINOR_UNITS, description="Amount in minor units")] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")] = None,
) -> ChannelList:
    return channels.list_channels(amount=amount, currency=currency)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

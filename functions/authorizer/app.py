"""The JWT Lambda authorizer of every Bearer route: Allow with the caller in the context, or Deny."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.identity.authorizer import authorize
from paycore.observability import logger, metrics, tracer


# The event carries the bearer token: it is never logged (no log_event) and the response, a policy
# that names the user, is not captured in traces.
@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return authorize(event)

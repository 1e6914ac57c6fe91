"""The sweeper (EventBridge Scheduler, every 5 minutes): expires unpaid orders past their expiry
and applies payments whose provider notification is overdue (docs/scheduled-jobs.md)."""

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.jobs.sweeper import sweep
from paycore.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return sweep(now=time.time(), remaining_ms=context.get_remaining_time_in_millis).as_dict()

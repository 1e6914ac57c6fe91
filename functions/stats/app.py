"""The daily report (EventBridge Scheduler, 00:10 in REPORT_TIMEZONE): yesterday's orders per channel
and currency, stored and sent to the ops topic. ``{"date": "YYYY-MM-DD"}`` reports that day instead."""

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.jobs.report import run_daily_report
from paycore.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_daily_report(event, now=time.time())

"""The sandbox's webhook sender: one SQS job per delivery attempt (docs/orders.md, retry schedule).

A job that fails to post is not an SQS failure: the next attempt is queued with its delay and the
job succeeds. Only a job that cannot be handled at all (its queue write failed) is reported in
``batchItemFailures``, so SQS redelivers it.
"""

import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.observability import logger, metrics, tracer
from paycore.sandbox import webhooks

processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method(capture_response=False)
def deliver(record: SQSRecord) -> str:
    return webhooks.deliver(webhooks.Job.from_message(record.body), int(time.time()))


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=deliver, processor=processor, context=context)

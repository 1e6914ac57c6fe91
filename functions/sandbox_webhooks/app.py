"""The sandbox's webhook sender: one SQS job per delivery attempt (docs/orders.md, retry schedule).

A job that fails to post is not an SQS failure: the next attempt is queued with its delay and the
job succeeds. Only a job that cannot be handled at all (its queue write failed, or its message is
not a job) is reported in ``batchItemFailures``, so SQS redelivers it and, after the queue's
``maxReceiveCount``, moves it to the dead-letter queue.

The partial batch response is written here rather than with Powertools' batch utility: that
utility's import loads every event data class Powertools has (DynamoDB streams, Kinesis, ...) and
cost this function about a tenth of the cold-start floor (docs/performance.md, section 1). The
contract is AWS's (ReportBatchItemFailures): the message ids of the records to redeliver.
"""

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.observability import logger, metrics, tracer
from paycore.sandbox import webhooks


@tracer.capture_method(capture_response=False)
def deliver(body: str) -> str:
    return webhooks.deliver(webhooks.Job.from_message(body), int(time.time()))


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    for record in event.get("Records") or []:
        message_id = record["messageId"]
        try:
            deliver(record["body"])
        except Exception:  # any failure: SQS must deliver this job again; the others stand
            logger.exception("webhook job failed", extra={"message_id": message_id})
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}

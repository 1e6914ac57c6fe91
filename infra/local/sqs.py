"""Lambda's SQS event source mapping, locally: poll a queue in moto and invoke the function.

For each ``SQS`` event in template.yaml a poller receives up to ``BatchSize`` messages, invokes
the function with the SQS event of that batch and then, as Lambda does:

* success: deletes the batch;
* the function raised (or timed out): deletes nothing; the messages come back after the queue's
  VisibilityTimeout, and go to its dead-letter queue after ``maxReceiveCount`` receives (moto
  applies the RedrivePolicy);
* with ``FunctionResponseTypes: [ReportBatchItemFailures]``, a ``batchItemFailures`` answer
  deletes all but the listed messages. An empty or missing list is complete success; an entry
  without an ``itemIdentifier``, or naming a message not in the batch, fails the whole batch
  (Lambda's rules for partial batch responses).

Message delays (DelaySeconds) are moto's: a delayed message is not received before its time.
Not emulated: ``MaximumBatchingWindowInSeconds`` (a batch is whatever one poll returns),
``FilterCriteria`` (every message reaches the function; a warning says so at start), and FIFO
ordering guarantees beyond what moto returns.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from infra.local.events import sqs_event
from infra.local.runtime import FunctionError, FunctionRuntime
from infra.local.template import SqsSource

log = logging.getLogger("infra.local")

_MAX_RECEIVE = 10  # ReceiveMessage returns at most 10 messages


def failed_ids(response: Any, batch_ids: list[str]) -> set[str] | None:
    """The message ids a partial batch response reports as failed; None means the whole batch failed."""
    if response is None or response == {} or response == "":
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return set()
    if not isinstance(failures, list):
        return None
    found: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return None
        found.add(identifier)
    return found


class SqsPoller:
    """Polls one queue for one function (see the module docstring)."""

    def __init__(
        self,
        source: SqsSource,
        *,
        sqs: Any,
        runtime: FunctionRuntime,
        region: str,
        interval: float = 0.5,
    ):
        self.source = source
        self.sqs = sqs
        self.runtime = runtime
        self.region = region
        self.interval = interval
        self.queue_name = source.queue_arn.rsplit(":", 1)[-1]
        self.queue_url: str = sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.source.batch_size:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(_MAX_RECEIVE, self.source.batch_size - len(messages)),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = answer.get("Messages", [])
            messages.extend(received)
            if len(received) < _MAX_RECEIVE:
                break
        return messages

    def poll_once(self) -> int:
        """Receive one batch and hand it to the function; returns how many messages it had."""
        messages = self._receive()
        if not messages:
            return 0
        event = sqs_event(messages, queue_arn=self.source.queue_arn, region=self.region)
        batch_ids = [m["MessageId"] for m in messages]
        try:
            response = self.runtime.invoke(self.source.function, event).result
        except FunctionError:
            log.warning(
                "%s failed on %d message(s) of %s; they return after the visibility timeout",
                self.source.function,
                len(messages),
                self.queue_name,
            )
            return len(messages)
        failed: set[str] | None = set()
        if self.source.report_batch_item_failures:
            failed = failed_ids(response, batch_ids)
        if failed is None:
            log.warning(
                "%s answered an invalid batchItemFailures; the whole batch of %s failed",
                self.source.function,
                self.queue_name,
            )
            return len(messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), _MAX_RECEIVE):
            chunk = done[start : start + _MAX_RECEIVE]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        if failed:
            log.info(
                "%s reported %d of %d message(s) of %s failed",
                self.source.function,
                len(failed),
                len(messages),
                self.queue_name,
            )
        return len(messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                received = self.poll_once()
            except Exception:  # moto stopping, or a defect: keep polling, say so
                if self._stop.is_set():
                    return
                log.exception("polling %s for %s failed", self.queue_name, self.source.function)
                received = 0
            if not received:
                self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"sqs-{self.queue_name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

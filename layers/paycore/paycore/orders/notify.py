"""What leaves the orders domain after a change commits: EventBridge domain events and ops alerts.

Domain events (``order.paid``, ``order.failed``, ``order.cancelled``, ``order.expired``,
``order.refunded``, ``order.partially_refunded``, ``order.late_payment``) go to the bus named by
``EVENT_BUS_NAME`` with source ``serverless-payments.orders``. They are published after the
transaction commits; a failed publish is logged and counted (metric ``DomainEventPublishFailed``)
and does not undo the change (docs/orders.md, "Domain events").
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from paycore.aws import client
from paycore.config import order_settings
from paycore.observability import Metric, count, logger

SOURCE = "serverless-payments.orders"


# Final outcomes the channel router learns from (docs/routing.md, "Outcomes and decision logs").
ROUTER_OUTCOMES = {"order.paid": "paid", "order.failed": "failed", "order.expired": "expired"}


def publish(detail_type: str, detail: dict[str, Any]) -> bool:
    """Put one domain event on the bus; True when EventBridge accepted it.

    A final outcome (paid, failed, expired) also goes to the channel router, in-process: like the
    event, after the transition committed, and best effort (``routing.observe`` never raises; a
    failure is counted as ``RouterUpdateFailed``).
    """
    outcome = ROUTER_OUTCOMES.get(detail_type)
    if outcome is not None:
        # Imported with the first outcome: the sweeper's runs that expire nothing, and functions
        # that publish only other events, never load the router (docs/performance.md, section 1).
        from paycore.routing import service as routing

        routing.observe(
            order_id=detail["order_id"],
            channel_id=detail["channel"],
            amount=int(detail["amount"]),
            currency=detail["currency"],
            outcome=outcome,
            at=float(detail["occurred_at"]),
            created_at=float(detail["created_at"]) if "created_at" in detail else None,
        )
    entry = {
        "Source": SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, sort_keys=True),
        "EventBusName": order_settings().event_bus,
    }
    try:
        response = client("events").put_events(Entries=[entry])
        failed = int(response.get("FailedEntryCount", 0))
    except (BotoCoreError, ClientError):  # the change is committed; a lost event is counted, not raised
        logger.exception("domain event publish failed", extra={"detail_type": detail_type})
        failed = 1
    if failed:
        count(Metric.DOMAIN_EVENT_PUBLISH_FAILED)
        return False
    return True


def alert_ops(subject: str, details: dict[str, Any]) -> None:
    """An alert on the ops SNS topic (the same topic as alarms and the daily report)."""
    try:
        client("sns").publish(
            TopicArn=order_settings().ops_topic_arn,
            Subject=subject[:100],
            Message=json.dumps(details, sort_keys=True, indent=2),
        )
    except (BotoCoreError, ClientError):  # the anomaly is in the table and the metric either way
        logger.exception("ops alert failed", extra={"subject": subject})

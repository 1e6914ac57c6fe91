"""Sandbox webhooks: the signature scheme, and delivery with retries on a back-off schedule.

Signature (like Stripe's ``Stripe-Signature``)::

    Sandbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

Several ``v1`` values may appear (a secret being rotated); one matching is enough. The receiver
accepts ``|now - t| <= 300`` seconds.

Delivery: each event becomes a job on the SQS queue ``SANDBOX_WEBHOOK_QUEUE_URL``. The webhooks
function posts the event's exact body, signed at send time, to
``SANDBOX_CALLBACK_BASE_URL + /callbacks/sandbox``; a non-2xx answer or a network failure puts
the next attempt on the queue after the next delay of ``SANDBOX_WEBHOOK_RETRY_SCHEDULE`` (default
1 min, 5 min, 15 min, 1 h, 3 h, 6 h, 12 h, 24 h, 24 h: ten attempts over about three days, as
Stripe retries "for up to three days with an exponential back off"). SQS delays at most 15
minutes, so a longer wait travels as ``not_before`` and is re-queued until it is due.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from paycore.aws import client
from paycore.config import sandbox_callback_base_url, sandbox_settings
from paycore.data import sandbox as store
from paycore.observability import Metric, count, logger
from paycore.providers.base import InvalidCallback, ProviderError
from paycore.providers.common import http_request
from paycore.secrets import get_json

SIGNATURE_HEADER = "Sandbox-Signature"
TOLERANCE_SECONDS = 300
SQS_MAX_DELAY = 900  # SQS DelaySeconds upper bound
HTTP_TIMEOUT = 5.0  # seconds, connect and read


def webhook_secret() -> bytes:
    return str(get_json(sandbox_settings().webhook_secret_id, max_age=300)["webhook_secret"]).encode()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, header: str | None, body: bytes, now: float) -> None:
    """Raise :class:`InvalidCallback` unless ``header`` signs ``body`` with ``secret`` within tolerance."""
    if not header or len(header) > 1024:
        raise InvalidCallback("missing Sandbox-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise InvalidCallback("garbled Sandbox-Signature header")
        if key == "t":
            if timestamp is not None or not value.isdigit() or len(value) > 12:
                raise InvalidCallback("garbled Sandbox-Signature timestamp")
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidCallback("Sandbox-Signature needs t and v1")
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise InvalidCallback("Sandbox-Signature timestamp outside the tolerance")
    expected = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidCallback("Sandbox-Signature does not match")


@dataclass(frozen=True)
class Job:
    payment_id: str
    event_id: str
    attempt: int  # 1 for the first delivery
    not_before: int

    @classmethod
    def from_message(cls, body: str) -> Job:
        data: dict[str, Any] = json.loads(body)
        return cls(
            payment_id=str(data["payment_id"]),
            event_id=str(data["event_id"]),
            attempt=int(data["attempt"]),
            not_before=int(data.get("not_before", 0)),
        )

    def to_message(self) -> str:
        return json.dumps(
            {
                "payment_id": self.payment_id,
                "event_id": self.event_id,
                "attempt": self.attempt,
                "not_before": self.not_before,
            }
        )


def enqueue(job: Job, now: int) -> None:
    delay = max(0, min(SQS_MAX_DELAY, job.not_before - now))
    client("sqs").send_message(
        QueueUrl=sandbox_settings().webhook_queue_url, MessageBody=job.to_message(), DelaySeconds=delay
    )


def next_delay(attempt: int, schedule: tuple[int, ...]) -> int | None:
    """Seconds to wait after failed attempt ``attempt`` (1-based); None when there is no retry left."""
    return schedule[attempt - 1] if 1 <= attempt <= len(schedule) else None


def _post(url: str, body: bytes, signature: str) -> int | None:
    """POST the webhook; the HTTP status, or None when nothing answered."""
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature, "User-Agent": "sandbox-webhooks"}
    try:
        return http_request("POST", url, provider="sandbox", body=body, headers=headers, timeout=HTTP_TIMEOUT).status
    except ProviderError:
        return None


def deliver(job: Job, now: int) -> str:
    """Run one delivery job: post the event, or re-queue it. Returns what happened."""
    if job.not_before > now:
        enqueue(job, now)
        return "waiting"
    event = store.get_event(job.payment_id, job.event_id)
    if event is None:
        logger.warning("webhook job for an unknown event", extra={"event_id": job.event_id})
        return "dropped"
    body = event.body.encode()
    url = f"{sandbox_callback_base_url()}/callbacks/sandbox"
    status = _post(url, body, sign(webhook_secret(), now, body))
    delivered = status is not None and 200 <= status < 300
    store.record_attempt(job.payment_id, job.event_id, status, now if delivered else None)
    log = {"event_id": job.event_id, "attempt": job.attempt, "http_status": status}
    if delivered:
        logger.info("webhook delivered", extra=log)
        return "delivered"
    delay = next_delay(job.attempt, sandbox_settings().retry_schedule)
    if delay is None:
        logger.warning("webhook given up after the last retry", extra=log)
        count(Metric.SANDBOX_WEBHOOK_GIVEN_UP)
        return "given_up"
    logger.info("webhook failed; retrying later", extra={**log, "retry_in_seconds": delay})
    enqueue(Job(job.payment_id, job.event_id, job.attempt + 1, now + delay), now)
    return "retrying"

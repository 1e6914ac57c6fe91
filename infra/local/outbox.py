"""What the stack has sent so far: emails (SES v1 and v2), SMS and SNS topic messages, read from moto.

moto 5.2.5 keeps every sent message and shows it in ``GET /moto-api/data.json`` (the same data as
``moto.ses.models.ses_backends[...].sent_messages`` and ``moto.sns.models.sns_backends[...]``,
measured on this machine): ``ses.Message`` (send_email of v1 and v2), ``ses.RawMessage``,
``ses.TemplateMessage``, ``sns.SMS`` and each ``sns.Topic``'s ``sent_notifications``. Reading
it over HTTP works for any client of the moto server, including functions run by
``sam local`` against it. Each list is in sending order, newest last. moto keeps no timestamps,
and keeps one body of an email (the HTML part when there is one, else the text).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def fetch_moto_data(moto_url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    if not moto_url.startswith("http://"):
        raise ValueError(f"the moto URL must be http://..., got {moto_url!r}")
    url = f"{moto_url}/moto-api/data.json"
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310  # nosec B310  # scheme checked above
        data: dict[str, Any] = json.load(answer)
    return data


def _addresses(destinations: Any) -> dict[str, list[str]]:
    if isinstance(destinations, dict):
        return {
            "to": list(destinations.get("ToAddresses", [])),
            "cc": list(destinations.get("CcAddresses", [])),
            "bcc": list(destinations.get("BccAddresses", [])),
        }
    return {"to": list(destinations or []), "cc": [], "bcc": []}


def outbox_from_data(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The outbox from a moto ``data.json`` document."""
    ses = data.get("ses", {})
    emails: list[dict[str, Any]] = []
    for message in ses.get("Message", []):
        emails.append(
            {
                "id": message.get("id"),
                "from": message.get("source"),
                **_addresses(message.get("destinations")),
                "subject": message.get("subject"),
                "body": message.get("body"),
            }
        )
    for message in ses.get("TemplateMessage", []):
        emails.append(
            {
                "id": message.get("id"),
                "from": message.get("source"),
                **_addresses(message.get("destinations")),
                "template": message.get("template"),
                "template_data": message.get("template_data"),
            }
        )
    for message in ses.get("RawMessage", []):
        emails.append(
            {
                "id": message.get("id"),
                "from": message.get("source"),
                **_addresses(message.get("destinations")),
                "raw": message.get("raw_data"),
            }
        )
    sns = data.get("sns", {})
    sms = [
        {"id": m.get("message_id"), "to": m.get("phone_number"), "message": m.get("message")}
        for m in sns.get("SMS", [])
    ]
    topic_messages: list[dict[str, Any]] = []
    for topic in sns.get("Topic", []):
        for notification in topic.get("sent_notifications", []):
            # moto records (message_id, message, subject, message_attributes, group_id)
            message_id, message, subject, attributes, group_id = [*notification, None, None, None, None, None][:5]
            entry = {
                "id": message_id,
                "topic_arn": topic.get("arn"),
                "subject": subject,
                "message": message,
                "attributes": attributes or {},
            }
            if group_id:
                entry["group_id"] = group_id
            topic_messages.append(entry)
    return {"emails": emails, "sms": sms, "sns": topic_messages}


def filter_outbox(outbox: dict[str, list[dict[str, Any]]], to: str) -> dict[str, list[dict[str, Any]]]:
    """Only what went to ``to``: an email address (to, cc or bcc), a phone number, or a topic
    (its ARN or name). Email addresses compare case-insensitively."""
    wanted = to.strip()
    lowered = wanted.lower()
    return {
        "emails": [e for e in outbox["emails"] if lowered in {a.lower() for a in (*e["to"], *e["cc"], *e["bcc"])}],
        "sms": [m for m in outbox["sms"] if m["to"] == wanted],
        "sns": [m for m in outbox["sns"] if wanted in (m["topic_arn"], str(m["topic_arn"]).rsplit(":", 1)[-1])],
    }


def read_outbox(moto_url: str, *, to: str | None = None) -> dict[str, list[dict[str, Any]]]:
    outbox = outbox_from_data(fetch_moto_data(moto_url))
    return filter_outbox(outbox, to) if to else outbox

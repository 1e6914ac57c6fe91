"""Messages to people: email through SES, SMS through SNS.

The sender identity (``SES_SENDER_ADDRESS``, which SES must have verified) and the SMS type
(``SMS_TYPE``: Transactional or Promotional) are configuration. Message bodies may carry codes, so
they are never logged; the log line names the channel and SES/SNS's message id only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paycore.aws import client
from paycore.config import delivery_settings
from paycore.observability import logger


class DeliveryFailed(Exception):
    """SES or SNS refused or failed to take the message; ``reason`` is the AWS error code."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _call(send: Callable[[], dict[str, Any]]) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = send()
    except ClientError as exc:
        raise DeliveryFailed(str(exc.response.get("Error", {}).get("Code", "ClientError"))) from exc
    except BotoCoreError as exc:
        raise DeliveryFailed(type(exc).__name__) from exc
    return str(response["MessageId"])


def send_email(to: str, subject: str, text: str) -> str:
    settings = delivery_settings()
    message_id = _call(
        lambda: client("ses").send_email(
            Source=settings.sender_email,
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
            },
        )
    )
    logger.info("email sent", extra={"channel": "email", "message_id": message_id})
    return message_id


def send_sms(phone_number: str, text: str) -> str:
    settings = delivery_settings()
    message_id = _call(
        lambda: client("sns").publish(
            PhoneNumber=phone_number,
            Message=text,
            MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": settings.sms_type}},
        )
    )
    logger.info("sms sent", extra={"channel": "sms", "message_id": message_id})
    return message_id

"""The events AWS hands to a function, built from a local HTTP request, an SQS batch or a schedule.

Shapes follow what API Gateway (REST API, Lambda proxy integration, payload 1.0), Lambda's SQS
event source mapping and EventBridge send; events/<function>/*.json hold captured examples and a
unit test holds the builder to their shape.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from infra.local.template import ACCOUNT_ID

API_ID = "localapi"  # the REST API id the local stack answers as (in methodArn and requestContext)


def last_header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The last value of a header, matched case-insensitively (as API Gateway's headers map)."""
    found = None
    for key, value in headers:
        if key.lower() == name.lower():
            found = value
    return found


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as it reached the local gateway."""

    method: str
    path: str  # raw path, percent-encoded, without the query string
    query: str = ""  # raw query string, without "?"
    headers: tuple[tuple[str, str], ...] = ()  # in arrival order, names as sent
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    host: str = "127.0.0.1:3000"

    def header(self, name: str) -> str | None:
        return last_header(self.headers, name)

    def query_values(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)


@dataclass(frozen=True)
class RouteMatch:
    resource: str  # the route as declared: /orders/{order_id}
    path_parameters: dict[str, str] = field(default_factory=dict)


def _single_and_multi(pairs: list[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """API Gateway's two views of repeated keys: the last value, and every value in order."""
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


def _is_binary(content_type: str | None, binary_media_types: tuple[str, ...]) -> bool:
    if not content_type or not binary_media_types:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    for pattern in binary_media_types:
        pattern = pattern.lower()
        if pattern == "*/*" or pattern == media:
            return True
        if pattern.endswith("/*") and media.startswith(pattern[:-1]):
            return True
    return False


def encode_body(body: bytes, content_type: str | None, binary_media_types: tuple[str, ...]) -> tuple[str | None, bool]:
    """The event's ``body`` and ``isBase64Encoded``.

    API Gateway base64-encodes a body whose Content-Type is one of the API's BinaryMediaTypes.
    A body that is not UTF-8 is also sent base64-encoded here, where API Gateway would mangle it."""
    if not body:
        return None, False
    if _is_binary(content_type, binary_media_types):
        return base64.b64encode(body).decode("ascii"), True
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def resource_id(resource: str) -> str:
    """A stable id for a resource path, shaped like API Gateway's (6 lowercase alphanumerics)."""
    return hashlib.sha256(resource.encode()).hexdigest()[:6]


def method_arn(*, region: str, stage: str, method: str, path: str) -> str:
    """The ARN API Gateway gives a Lambda authorizer: ``arn:aws:execute-api:region:account:api/stage/METHOD/path``."""
    return f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{API_ID}/{stage}/{method}/{path.lstrip('/')}"


def proxy_event(
    request: HttpRequest,
    match: RouteMatch,
    *,
    stage: str,
    binary_media_types: tuple[str, ...] = (),
    request_id: str | None = None,
    authorizer: dict[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The Lambda proxy integration event (REST API, format 1.0) for ``request`` on ``match``."""
    now = time.time() if now is None else now
    request_id = request_id or str(uuid.uuid4())
    headers, multi_headers = _single_and_multi(list(request.headers))
    query, multi_query = _single_and_multi(request.query_values())
    path = unquote(request.path)
    body, is_base64 = encode_body(request.body, request.header("Content-Type"), binary_media_types)
    user_agent = request.header("User-Agent")
    context: dict[str, Any] = {
        "resourceId": resource_id(match.resource),
        "resourcePath": match.resource,
        "httpMethod": request.method,
        "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:12]).decode("ascii"),
        "requestTime": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "path": f"/{stage}{path}",
        "accountId": ACCOUNT_ID,
        "protocol": "HTTP/1.1",
        "stage": stage,
        "domainPrefix": request.host.split(".", 1)[0],
        "requestTimeEpoch": int(now * 1000),
        "requestId": request_id,
        "identity": {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "sourceIp": request.source_ip,
            "principalOrgId": None,
            "accessKey": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": user_agent,
            "user": None,
        },
        "domainName": request.host.split(":", 1)[0],
        "apiId": API_ID,
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "resource": match.resource,
        "path": path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(match.path_parameters) or None,
        "stageVariables": None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": is_base64,
    }


def token_authorizer_event(token: str, arn: str) -> dict[str, Any]:
    """What a TOKEN authorizer receives."""
    return {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}


def request_authorizer_event(proxy: dict[str, Any], arn: str) -> dict[str, Any]:
    """What a REQUEST authorizer receives: the request's parts (as in the proxy event) and the methodArn."""
    keys = (
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
    )
    return {"type": "REQUEST", "methodArn": arn, **{k: proxy[k] for k in keys}}


def _message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    converted = {}
    for name, attr in attributes.items():
        value: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": attr["DataType"]}
        if "StringValue" in attr:
            value["stringValue"] = attr["StringValue"]
        if "BinaryValue" in attr:
            raw = attr["BinaryValue"]
            value["binaryValue"] = base64.b64encode(raw).decode("ascii") if isinstance(raw, bytes) else raw
        converted[name] = value
    return converted


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping sends, from ``ReceiveMessage`` results."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": _message_attributes(m.get("MessageAttributes", {})),
                "md5OfBody": m.get("MD5OfBody", hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest()),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def scheduled_event(*, rule_arn: str, region: str, now: float | None = None) -> dict[str, Any]:
    """The event an EventBridge schedule rule sends when the rule declares no Input."""
    now = time.time() if now is None else now
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }

"""paycore.api takes JSON bodies only, and answers every refusal in the contract's error shape.

Each case here was a schemathesis finding against the local stack (docs/reliability.md): random
bytes as application/json and multipart without a boundary made the function fail (502), and
text/plain got Powertools' own 415 body."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

import pytest
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel

from paycore.api import build_resolver
from tests.helpers import FakeContext

pytestmark = pytest.mark.unit


class Thing(BaseModel):
    name: str


app = build_resolver()


@app.post("/things")
def create(thing: Annotated[Thing, Body()]) -> dict[str, str]:
    return {"name": thing.name}


def _post(body: bytes, content_type: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    event = {
        "resource": "/things",
        "path": "/things",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"resourcePath": "/things", "httpMethod": "POST", "stage": "test", "requestId": "r"},
        "body": text,
        "isBase64Encoded": encoded,
    }
    answer = app.resolve(event, FakeContext())
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", None])
def test_a_json_body_is_accepted(content_type: str | None) -> None:
    assert _post(b'{"name": "x"}', content_type) == (200, {"name": "x"})


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=xx",
        "application/xml",
        "APPLICATION/JSON",
    ],
)
def test_any_other_content_type_is_415_in_the_contract_shape(content_type: str) -> None:
    status, body = _post(b'{"name": "x"}', content_type)
    assert status == 415
    assert body == {"error": {"code": "unsupported_media_type", "message": "Send the body as application/json."}}


def test_a_body_that_is_not_utf8_is_422_not_a_server_error() -> None:
    status, body = _post(b"\xe8\xff{", "application/json")
    assert (status, body["error"]["code"]) == (422, "validation_error")


def test_malformed_json_is_422_in_the_contract_shape() -> None:
    status, body = _post(b'{"name": ', "application/json")
    assert status == 422
    assert set(body) == {"error"}
    assert body["error"]["code"] == "validation_error"

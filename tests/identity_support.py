"""What the identity tests share: API events for the identity routes, the codes moto delivered,
and users at each stage of registration. Fixtures here are imported by the test modules that use
them (``from tests.identity_support import active_user``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from infra.local.template import ACCOUNT_ID
from tests.conftest import AwsStack, load_handler
from tests.helpers import FakeContext, body, load_event

REGION = "us-east-1"
PASSWORD = "correct horse battery staple"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:localapi/test/GET/channels"

_SAMPLE = {
    "/auth/register": ("register", "register"),
    "/auth/verify": ("register", "verify"),
    "/auth/verification-code": ("register", "resend"),
    "/auth/login": ("login", "login"),
    "/auth/refresh": ("login", "refresh"),
    "/auth/logout": ("login", "logout"),
    "/.well-known/jwks.json": ("login", "jwks"),
}


def api_event(path: str, payload: dict[str, Any] | None = None, *, authorizer: dict[str, Any] | None = None) -> dict:
    """The sample event of ``path`` with ``payload`` as its JSON body (and ``authorizer`` as the
    authorizer context API Gateway adds, or none)."""
    function, case = _SAMPLE[path]
    event = load_event(function, case)
    event["body"] = json.dumps(payload) if payload is not None else None
    event["requestContext"].pop("authorizer", None)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = {"principalId": authorizer["user_id"], **authorizer}
    return event


def call(path: str, payload: dict[str, Any] | None = None, *, authorizer: dict[str, Any] | None = None) -> dict:
    """Invoke the function that serves ``path`` in-process, as API Gateway would."""
    return load_handler(_SAMPLE[path][0]).lambda_handler(api_event(path, payload, authorizer=authorizer), FakeContext())


def authorize(token: str | None, *, method_arn: str = METHOD_ARN) -> dict:
    event: dict[str, Any] = {"type": "TOKEN", "methodArn": method_arn}
    if token is not None:
        event["authorizationToken"] = f"Bearer {token}"
    return load_handler("authorizer").lambda_handler(event, FakeContext())


def effect(policy: dict) -> str:
    return str(policy["policyDocument"]["Statement"][0]["Effect"])


# ---------------------------------------------------------------- what moto delivered
def sent_emails() -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends[ACCOUNT_ID][REGION].sent_messages)


def sent_sms() -> list[tuple[str, str]]:
    from moto.sns.models import sns_backends

    return list(sns_backends[ACCOUNT_ID][REGION].sms_messages.values())


_CODE = re.compile(r"\b(\d{6})\b")


def last_code_for(phone_number: str) -> str:
    texts = [text for phone, text in sent_sms() if phone == phone_number]
    assert texts, f"no SMS was sent to {phone_number}"
    match = _CODE.search(texts[-1])
    assert match, "the SMS carries no 6-digit code"
    return match.group(1)


def count_items(stack: AwsStack, table: str) -> int:
    """How many items the template's ``table`` holds, counted by DynamoDB itself."""
    return int(stack.client("dynamodb").scan(TableName=stack.name(table), Select="COUNT")["Count"])


def stored_user(username: str) -> Any:
    from paycore.data.users import get_user

    user = get_user(username)
    assert user is not None, f"no user {username}"
    return user


# ---------------------------------------------------------------- users
@dataclass
class TestUser:
    __test__ = False  # not a test class

    username: str
    email: str
    phone_number: str
    password: str = PASSWORD
    user_id: str = ""

    def registration(self) -> dict[str, str]:
        return {
            "username": self.username,
            "password": self.password,
            "email": self.email,
            "phone_number": self.phone_number,
        }

    def credentials(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


def new_user(n: int = 0) -> TestUser:
    return TestUser(username=f"user{n}", email=f"user{n}@example.com", phone_number=f"+861380013{n:04d}")


def register(user: TestUser) -> TestUser:
    response = call("/auth/register", user.registration())
    assert response["statusCode"] == 201, body(response)
    user.user_id = body(response)["user_id"]
    return user


def verify(user: TestUser) -> TestUser:
    response = call("/auth/verify", {"username": user.username, "code": last_code_for(user.phone_number)})
    assert response["statusCode"] == 200, body(response)
    return user


def log_in(user: TestUser) -> dict[str, Any]:
    response = call("/auth/login", user.credentials())
    assert response["statusCode"] == 200, body(response)
    return dict(body(response))


@pytest.fixture
def pending_user(aws: AwsStack) -> TestUser:
    return register(new_user(1))


@pytest.fixture
def active_user(aws: AwsStack) -> TestUser:
    return verify(register(new_user(2)))


@pytest.fixture
def session(active_user: TestUser) -> dict[str, Any]:
    """A logged-in session: the login response."""
    return log_in(active_user)

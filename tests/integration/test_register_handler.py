"""POST /auth/register, /auth/verify and /auth/verification-code through the handler, on moto.

Codes are read back from what moto's SES and SNS delivered, as a user reads them."""

from __future__ import annotations

import importlib.util
import threading
from types import ModuleType

import pytest

from paycore.identity import registration
from tests.conftest import AwsStack
from tests.helpers import ROOT, FakeContext, body
from tests.identity_support import (
    TestUser,
    api_event,
    call,
    count_items,
    last_code_for,
    new_user,
    register,
    sent_emails,
    sent_sms,
    stored_user,
)

pytestmark = pytest.mark.integration


def test_registration_sends_one_code_by_email_and_sms(aws: AwsStack) -> None:
    user = new_user(1)
    response = call("/auth/register", {**user.registration(), "username": "User1"})
    assert response["statusCode"] == 201
    data = body(response)
    assert data == {"user_id": data["user_id"], "username": "user1", "status": "pending_verification"}

    [email] = sent_emails()
    assert email.source == "no-reply@example.com"  # SesSenderAddress, from configuration
    assert email.destinations["ToAddresses"] == [user.email]
    [(phone, text)] = sent_sms()
    assert phone == user.phone_number
    code = last_code_for(user.phone_number)
    assert code in email.body
    assert code in text


def test_only_a_hash_of_the_code_is_stored(pending_user: TestUser) -> None:
    code = last_code_for(pending_user.phone_number)
    item = stored_user(pending_user.username)
    stored = {k: str(v) for k, v in item.attribute_values.items()}
    assert not any(code in value for value in stored.values())
    assert len(stored["code_hash"]) == 64
    assert stored["password_hash"].startswith("$argon2id$")


def test_a_verified_user_is_active(pending_user: TestUser) -> None:
    code = last_code_for(pending_user.phone_number)
    response = call("/auth/verify", {"username": pending_user.username.upper(), "code": code})
    assert response["statusCode"] == 200
    assert body(response) == {"status": "active"}
    assert stored_user(pending_user.username).status == "active"
    again = call("/auth/verify", {"username": pending_user.username, "code": code})
    assert again["statusCode"] == 409
    assert body(again)["error"]["code"] == "already_verified"


def test_five_wrong_codes_burn_the_code(pending_user: TestUser) -> None:
    code = last_code_for(pending_user.phone_number)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = [call("/auth/verify", {"username": pending_user.username, "code": wrong}) for _ in range(5)]
    assert [a["statusCode"] for a in answers] == [401] * 5
    assert {body(a)["error"]["code"] for a in answers} == {"invalid_code"}
    assert "4 tries left" in body(answers[0])["error"]["message"]
    assert "no tries are left" in body(answers[4])["error"]["message"]
    late = call("/auth/verify", {"username": pending_user.username, "code": code})
    assert late["statusCode"] == 401
    assert body(late)["error"]["code"] == "code_expired"
    assert stored_user(pending_user.username).status == "pending_verification"


def test_a_code_expires_after_ten_minutes(pending_user: TestUser) -> None:
    from paycore.errors import Unauthorized

    item = stored_user(pending_user.username)
    with pytest.raises(Unauthorized) as raised:
        registration.verify(
            pending_user.username, last_code_for(pending_user.phone_number), now=int(item.code_expires_at)
        )
    assert raised.value.code == "code_expired"


def test_an_unknown_username_gets_the_wrong_code_answer(aws: AwsStack) -> None:
    response = call("/auth/verify", {"username": "nobody", "code": "123456"})
    assert response["statusCode"] == 401
    assert body(response)["error"]["code"] == "invalid_code"


def test_resend_within_a_minute_of_registration_is_429_with_retry_after(pending_user: TestUser) -> None:
    response = call("/auth/verification-code", {"username": pending_user.username})
    assert response["statusCode"] == 429
    assert body(response)["error"]["code"] == "code_recently_sent"
    retry_after = int(response["multiValueHeaders"]["Retry-After"][0])
    assert 1 <= retry_after <= 60
    assert len(sent_sms()) == 1


def test_a_resent_code_replaces_the_old_one(pending_user: TestUser) -> None:
    old = last_code_for(pending_user.phone_number)
    registered_at = int(stored_user(pending_user.username).created_at)
    answer = registration.resend(pending_user.username, now=registered_at + 61)
    assert "on its way" in answer.message
    assert len(sent_sms()) == 2
    assert len(sent_emails()) == 2
    new = last_code_for(pending_user.phone_number)
    if new != old:  # one chance in a million that the two codes are equal
        refused = call("/auth/verify", {"username": pending_user.username, "code": old})
        assert body(refused)["error"]["code"] == "invalid_code"
    assert call("/auth/verify", {"username": pending_user.username, "code": new})["statusCode"] == 200


def test_at_most_five_codes_an_hour(pending_user: TestUser) -> None:
    from paycore.errors import Throttled

    t0 = int(stored_user(pending_user.username).created_at)
    for minute in (2, 4, 6, 8):  # the registration's code was the first of five
        registration.resend(pending_user.username, now=t0 + 60 * minute)
    with pytest.raises(Throttled) as raised:
        registration.resend(pending_user.username, now=t0 + 60 * 10)
    assert raised.value.code == "too_many_codes"
    assert raised.value.retry_after == 3600 - 600  # until the registration's send leaves the hour
    assert len(sent_sms()) == 5


def test_resend_for_an_unknown_or_active_user_sends_nothing(aws: AwsStack) -> None:
    response = call("/auth/verification-code", {"username": "nobody"})
    assert response["statusCode"] == 202
    assert sent_sms() == []
    assert sent_emails() == []


@pytest.mark.parametrize("field", ["username", "email", "phone_number"])
def test_a_taken_username_email_or_phone_is_409_and_changes_nothing(aws: AwsStack, field: str) -> None:
    first = register(new_user(1))
    second = new_user(2)
    setattr(second, field, getattr(first, field).upper() if field != "phone_number" else first.phone_number)
    response = call("/auth/register", second.registration())
    assert response["statusCode"] == 409
    assert body(response)["error"]["code"] == "user_exists"
    assert count_items(aws, "UsersTable") == 1
    assert count_items(aws, "UserClaimsTable") == 2
    assert len(sent_sms()) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"password": "password123"}, "weak_password"),
        ({"password": "short"}, "weak_password"),
        ({"phone_number": "13800138000"}, "validation_error"),
        ({"email": "not-an-email"}, "validation_error"),
        ({"username": "a b"}, "validation_error"),
        ({"extra": "field"}, "validation_error"),
    ],
)
def test_bad_registrations_are_422_and_write_nothing(aws: AwsStack, change: dict, code: str) -> None:
    response = call("/auth/register", {**new_user(1).registration(), **change})
    assert response["statusCode"] == 422
    assert body(response)["error"]["code"] == code
    assert count_items(aws, "UsersTable") == 0
    assert sent_sms() == []


def test_an_unverified_user_cannot_log_in(pending_user: TestUser) -> None:
    response = call("/auth/login", pending_user.credentials())
    assert response["statusCode"] == 403
    assert body(response)["error"]["code"] == "not_verified"


def test_a_failed_delivery_still_registers_and_a_resend_can_follow(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.config import reset_settings

    monkeypatch.setenv("SES_SENDER_ADDRESS", "unverified@example.com")  # SES (and moto) refuse it
    reset_settings()
    user = new_user(1)
    assert call("/auth/register", user.registration())["statusCode"] == 201
    assert sent_emails() == []
    assert len(sent_sms()) == 1  # the other channel still went out


def _container(n: int) -> ModuleType:
    """A separate copy of the register function's module, as a separate Lambda container holds."""
    spec = importlib.util.spec_from_file_location(f"register_container_{n}", ROOT / "functions/register/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ten_concurrent_registrations_of_one_username_create_exactly_one_user(aws: AwsStack) -> None:
    # Ten containers, warmed with a refused request, start the same registration together. Only a
    # conditional transaction lets exactly one win; read-then-write would let several through.
    containers = [_container(n) for n in range(10)]
    for module in containers:
        assert module.lambda_handler(api_event("/auth/register", {}), FakeContext())["statusCode"] == 422
    barrier = threading.Barrier(len(containers))
    statuses: list[int] = []

    def register_as(n: int) -> None:
        user = new_user(n)
        user.username = "contested"
        event = api_event("/auth/register", user.registration())
        barrier.wait()
        statuses.append(int(containers[n].lambda_handler(event, FakeContext())["statusCode"]))

    threads = [threading.Thread(target=register_as, args=(n,)) for n in range(len(containers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201] + [409] * 9
    winner = stored_user("contested")
    claims = aws.client("dynamodb").scan(TableName=aws.name("UserClaimsTable"))["Items"]
    assert sorted(c["claim"]["S"] for c in claims) == [f"email#{winner.email}", f"phone#{winner.phone_number}"]
    assert {c["username"]["S"] for c in claims} == {"contested"}
    assert [phone for phone, _ in sent_sms()] == [winner.phone_number]

import io
import json
import logging

import pytest

from paycore.observability import REDACTED, RedactingFormatter, redact

pytestmark = pytest.mark.unit


def test_secret_keys_are_masked_at_any_depth() -> None:
    given = {
        "username": "alice",
        "password": "hunter2hunter2",
        "nested": {"refresh_token": "r-123", "items": [{"code": "123456"}]},
    }
    out = redact(given)
    assert out["username"] == "alice"
    assert out["password"] == REDACTED
    assert out["nested"]["refresh_token"] == REDACTED
    assert out["nested"]["items"][0]["code"] == REDACTED


def test_error_codes_and_status_codes_are_not_masked() -> None:
    assert redact({"error_code": "invalid_state", "status_code": 409}) == {
        "error_code": "invalid_state",
        "status_code": 409,
    }


def test_jwt_and_bearer_values_are_masked_inside_free_text() -> None:
    jwt_like = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
    out = redact({"message": f"header was Bearer abc.def and token {jwt_like}"})
    assert jwt_like not in out["message"]
    assert "abc.def" not in out["message"]


def test_formatter_masks_extra_fields_in_the_emitted_json() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter())
    log = logging.getLogger("redaction-test")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    log.info("login", extra={"signing_key": "c2VjcmV0LWtleQ", "user_id": "u1"})
    line = json.loads(stream.getvalue())
    assert line["signing_key"] == REDACTED
    assert line["user_id"] == "u1"
    assert "c2VjcmV0LWtleQ" not in stream.getvalue()

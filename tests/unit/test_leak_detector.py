"""The log leak detector finds a secret in every form a log line writes it, and only there."""

from __future__ import annotations

import pytest

from paycore.observability import logger, redact
from tests.helpers import CapturedLogs
from tests.leaks import find_leaks, secret_strings

pytestmark = pytest.mark.unit

PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize(
    "line",
    [
        f'{{"message": "login failed for password {PASSWORD}"}}',
        '{"body": "{\\"password\\": \\"correct horse battery staple\\"}"}',  # a JSON body inside JSON
        "GET /channels?note=correct%20horse%20battery%20staple -> 200",
        "POST /auth/login body=username=a&password=correct+horse+battery+staple",
    ],
)
def test_a_password_is_found_raw_json_escaped_and_url_encoded(line: str) -> None:
    [leak] = find_leaks(f"start\n{line}\nend", {"password": PASSWORD})
    assert leak.name == "password"
    assert "start" not in leak.line


def test_a_short_code_counts_only_standing_alone() -> None:
    text = 'ts=1795635493817000 id=a4938170 {"code": "493817"}'
    [leak] = find_leaks(text, {"code": "493817"})
    assert leak.line.endswith('"493817"}')
    assert find_leaks("ts=1795635493817000 id=a4938170", {"code": "493817"}) == []


def test_any_hmac_signature_header_part_is_a_leak() -> None:
    leaks = find_leaks("Sandbox-Signature: t=1795635000,v1=" + "ab" * 32, {})
    assert [leak.form for leak in leaks] == ["signature pattern"]
    assert find_leaks("Sandbox-Signature: t=1795635000,v1=***", {}) == []


def test_what_the_redacting_formatter_masks_is_not_a_leak_and_free_text_it_cannot_know_is(
    captured_logs: CapturedLogs,
) -> None:
    refresh = "jdomtdcMuTvoH7Ebmx-J_KtFkNrPOluTk5csVLxtVhs"
    logger.info("refreshed", extra={"refresh_token": refresh, "headers": {"X-Signature": "t=1,n=a,v1=" + "cd" * 32}})
    assert find_leaks(captured_logs.text(), {"refresh token": refresh}) == []
    # a password in free text has no shape the formatter could recognise: only the detector sees it
    logger.info(f"user typed {PASSWORD} by mistake")
    assert redact({"m": f"user typed {PASSWORD}"})["m"].endswith(PASSWORD)
    assert [leak.name for leak in find_leaks(captured_logs.text(), {"password": PASSWORD})] == ["password"]


def test_secret_strings_lists_json_leaves_and_pem_lines() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\n" + "M" * 64 + "\n-----END PRIVATE KEY-----\n"
    found = secret_strings({"active": "kid-1", "keys": {"kid-1": pem}, "short": "abc"}, "jwt")
    assert found == {"jwt.keys.kid-1": pem, "jwt.keys.kid-1 line 1": "M" * 64}

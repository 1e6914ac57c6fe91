"""The verification code lifecycle, on a frozen clock (every function takes ``now``)."""

import pytest

from paycore.errors import Throttled
from paycore.identity import codes
from paycore.identity.codes import Outcome, StoredCode

pytestmark = pytest.mark.unit

T0 = 1_795_000_000  # the frozen "now" of these tests
PEPPER = b"p" * 32


def _stored(code: str = "123456", *, sent_at: int = T0, wrong_tries: int = 0) -> StoredCode:
    return StoredCode(codes.code_hash(PEPPER, "alice", code), sent_at + codes.CODE_SECONDS, wrong_tries)


def _try(stored: StoredCode, code: str, now: int) -> Outcome:
    return codes.check(stored, codes.code_hash(PEPPER, "alice", code), now=now)


def test_codes_are_six_digits_and_vary() -> None:
    drawn = {codes.new_code() for _ in range(500)}
    assert all(len(c) == 6 and c.isdigit() for c in drawn)
    assert len(drawn) > 450  # 500 draws from a million values rarely collide


def test_the_stored_hash_depends_on_the_pepper_the_user_and_the_code() -> None:
    base = codes.code_hash(PEPPER, "alice", "123456")
    assert base != "123456"
    assert len(base) == 64
    assert base != codes.code_hash(b"q" * 32, "alice", "123456")
    assert base != codes.code_hash(PEPPER, "bob", "123456")
    assert base != codes.code_hash(PEPPER, "alice", "123457")


def test_the_right_code_is_accepted_until_ten_minutes_have_passed() -> None:
    stored = _stored()
    assert _try(stored, "123456", T0) is Outcome.ACCEPTED
    assert _try(stored, "123456", T0 + 599) is Outcome.ACCEPTED
    assert _try(stored, "123456", T0 + 600) is Outcome.EXPIRED


def test_wrong_tries_count_and_the_fifth_burns_the_code() -> None:
    outcomes = [_try(_stored(wrong_tries=n), "000000", T0 + 10) for n in range(5)]
    assert outcomes == [Outcome.WRONG] * 4 + [Outcome.BURNT]
    # Once burnt, even the right code no longer works.
    assert _try(_stored(wrong_tries=5), "123456", T0 + 10) is Outcome.EXPIRED


def test_a_used_or_never_sent_code_is_expired() -> None:
    assert codes.check(StoredCode(None, None, 0), codes.code_hash(PEPPER, "alice", "123456"), now=T0) is Outcome.EXPIRED


def test_a_second_code_within_a_minute_is_throttled_with_retry_after() -> None:
    with pytest.raises(Throttled) as raised:
        codes.check_send_allowed([T0], now=T0 + 20)
    assert raised.value.code == "code_recently_sent"
    assert raised.value.headers == {"Retry-After": "40"}
    codes.check_send_allowed([T0], now=T0 + 60)  # a minute later it is allowed


def test_at_most_five_codes_an_hour() -> None:
    sends = [T0 + 600 * i for i in range(5)]  # T0, +10 min, ..., +40 min
    with pytest.raises(Throttled) as raised:
        codes.check_send_allowed(sends, now=T0 + 3000)
    assert raised.value.code == "too_many_codes"
    # The oldest send leaves the hour at T0 + 3600: that is when the next code may go.
    assert raised.value.retry_after == 600
    codes.check_send_allowed(sends, now=T0 + 3601)


def test_recent_sends_forget_what_is_older_than_an_hour() -> None:
    assert codes.recent_sends([T0 - 4000, T0 - 100, T0 - 3599], now=T0) == [T0 - 3599, T0 - 100]

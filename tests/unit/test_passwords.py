"""Password hashing parameters and the registration password policy."""

import pytest

from paycore.errors import InvalidRequest
from paycore.identity import passwords

pytestmark = pytest.mark.unit


def test_hashes_are_argon2id_at_the_owasp_parameters() -> None:
    # OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB (19456 KiB), t=2, p=1.
    stored = passwords.hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    hasher = passwords.hasher()
    assert (hasher.memory_cost, hasher.time_cost, hasher.parallelism) == (19456, 2, 1)
    assert (hasher.hash_len, hasher.salt_len) == (32, 16)


def test_the_same_password_hashes_differently_and_verifies() -> None:
    first = passwords.hash_password("correct horse battery staple")
    second = passwords.hash_password("correct horse battery staple")
    assert first != second  # a fresh salt each time
    assert passwords.verify_password(first, "correct horse battery staple")
    assert not passwords.verify_password(first, "correct horse battery stapler")


def test_passwords_are_compared_after_nfkc_normalisation() -> None:
    # Full-width letters (as some IMEs type them) normalise to ASCII under NFKC.
    stored = passwords.hash_password("\uff43\uff4f\uff52\uff52\uff45\uff43\uff54 horse battery")  # full-width "correct"
    assert passwords.verify_password(stored, "correct horse battery")


def test_no_stored_hash_costs_one_verify_and_never_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    calls: list[str] = []
    real_verify = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, h, p: calls.append(h) or real_verify(self, h, p))
    assert passwords.verify_password(None, "anything at all") is False
    assert len(calls) == 1
    assert calls[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_hash_made_with_weaker_parameters_needs_a_rehash() -> None:
    from argon2 import PasswordHasher, Type

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash("correct horse battery")
    assert passwords.needs_rehash(weak)
    assert not passwords.needs_rehash(passwords.hash_password("correct horse battery"))


@pytest.mark.parametrize(
    "password",
    [
        "eight ch",  # exactly 8
        "x" * 7 + "y",
        "a long passphrase with spaces and ünïcödé and 🙂 emoji",
        "p" * 30 + "q" * 34,  # 64: NIST asks that at least 64 be allowed
        "z" * 255 + "w",  # 256, the maximum
    ],
)
def test_acceptable_passwords_pass(password: str) -> None:
    passwords.check_policy(password, username="alice")


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("seven c", "at least 8"),
        ("a" * 257, "at most 256"),
        ("password123", "too common"),
        ("PassWord123", "too common"),  # case does not help
        ("qwertyuiop", "too common"),
        ("1q2w3e4r5t", "too common"),
        ("aaaaaaaaaaaa", "too easy"),
        ("Alice.Smith", "too easy"),  # the username itself
    ],
)
def test_weak_passwords_are_refused(password: str, why: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        passwords.check_policy(password, username="alice.smith")
    assert raised.value.code == "weak_password"
    assert why in raised.value.message


def test_the_bundled_common_password_list_is_loaded() -> None:
    common = passwords.common_passwords()
    assert len(common) > 200
    assert {"password", "12345678", "iloveyou", "qwerty123"} <= common
    assert all(entry == entry.casefold() for entry in common)
    # Shorter ones are refused by length already; the list only holds what length would let through.
    assert all(len(entry) >= passwords.MIN_LENGTH for entry in common)

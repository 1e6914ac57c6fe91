"""Password policy and argon2id hashing.

Parameters: argon2id with m = 19 MiB (19456 KiB), t = 2, p = 1, a 16-byte salt and a 32-byte tag:
the first configuration the OWASP Password Storage Cheat Sheet recommends ("a minimum
configuration of 19 MiB of memory, an iteration count of 2, and 1 degree of parallelism").
One verify takes ~20 ms on this project's 2-core development machine (docs/identity.md).

Policy (NIST SP 800-63B 5.1.1.2): at least 8 characters, up to 256 accepted (NIST: "at least 64"),
any printable characters including spaces and emoji, normalised to Unicode NFKC before hashing so
the same password typed on two keyboards hashes alike; no composition rules; refused when it is on
the bundled list of common passwords or is the username itself.

argon2 is imported on first use: only the register and login functions pay for it.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources
from typing import Any, Final

from paycore.errors import InvalidRequest

MIN_LENGTH: Final = 8
MAX_LENGTH: Final = 256

TIME_COST: Final = 2
MEMORY_COST_KIB: Final = 19 * 1024
PARALLELISM: Final = 1
HASH_LENGTH: Final = 32
SALT_LENGTH: Final = 16


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("paycore.identity").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_policy(password: str, *, username: str) -> None:
    """Raise InvalidRequest ``weak_password`` when ``password`` breaks the policy."""
    candidate = normalize(password)
    if len(candidate) < MIN_LENGTH:
        raise InvalidRequest(f"password: use at least {MIN_LENGTH} characters", code="weak_password")
    if len(candidate) > MAX_LENGTH:
        raise InvalidRequest(f"password: use at most {MAX_LENGTH} characters", code="weak_password")
    folded = candidate.casefold()
    if folded in common_passwords():
        raise InvalidRequest("password: this password is too common; choose another", code="weak_password")
    if folded == username.casefold() or len(set(folded)) == 1:
        raise InvalidRequest("password: too easy to guess; choose another", code="weak_password")


@cache
def hasher() -> Any:
    from argon2 import PasswordHasher, Type

    return PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_COST_KIB,
        parallelism=PARALLELISM,
        hash_len=HASH_LENGTH,
        salt_len=SALT_LENGTH,
        type=Type.ID,
    )


def hash_password(password: str) -> str:
    return str(hasher().hash(normalize(password)))


@cache
def _dummy_hash() -> str:
    # A hash of a random value with the live parameters: verifying against it costs what a real
    # verify costs, so an unknown username takes as long to refuse as a wrong password.
    import secrets

    return hash_password(secrets.token_urlsafe(32))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored_hash``; with no hash, verifies against a dummy one
    (always False) so that the caller's timing does not tell whether the user exists."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(hasher().verify(stored_hash or _dummy_hash(), normalize(password))) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when ``stored_hash`` was made with other parameters than today's (rehash at next login)."""
    return bool(hasher().check_needs_rehash(stored_hash))

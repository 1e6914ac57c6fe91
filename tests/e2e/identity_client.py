"""An HTTP client's view of identity on the local stack, for any e2e test that needs a Bearer token.

``new_account(base_url)`` registers a fresh user, reads the code from ``/_local/outbox``,
verifies it and logs in, exactly as a developer does with curl (docs/identity.md). Other suites'
e2e tests call it to reach Bearer routes::

    account = new_account(api_url)
    requests.get(f"{api_url}/channels", headers=account.bearer(), timeout=10)
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import requests

TIMEOUT = 10
PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    base_url: str
    username: str
    email: str
    phone_number: str
    password: str = PASSWORD
    user_id: str = ""
    tokens: dict[str, Any] = field(default_factory=dict)  # the last login or refresh answer

    def bearer(self, tokens: dict[str, Any] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {(tokens or self.tokens)['access_token']}"}

    def post(self, path: str, payload: dict[str, Any] | None = None, *, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(f"{self.base_url}{path}", json=payload, headers=headers, timeout=TIMEOUT)

    def register(self) -> Any:
        return self.post(
            "/auth/register",
            {
                "username": self.username,
                "password": self.password,
                "email": self.email,
                "phone_number": self.phone_number,
            },
        )

    def code_from_outbox(self) -> str:
        """The last code sent to this account, checked to be the same by SMS and by email."""
        outbox = f"{self.base_url}/_local/outbox"
        sms = requests.get(outbox, params={"to": self.phone_number}, timeout=TIMEOUT).json()["sms"]
        emails = requests.get(outbox, params={"to": self.email}, timeout=TIMEOUT).json()["emails"]
        assert sms, f"no SMS to {self.phone_number} in the outbox"
        assert emails, f"no email to {self.email} in the outbox"
        code = re.search(r"\b(\d{6})\b", sms[-1]["message"])
        assert code is not None, "the SMS carries no 6-digit code"
        assert code.group(1) in emails[-1]["body"]
        return code.group(1)

    def log_in(self) -> dict[str, Any]:
        answer = self.post("/auth/login", {"username": self.username, "password": self.password})
        assert answer.status_code == 200, answer.text
        self.tokens = answer.json()
        return self.tokens


def fresh_account(base_url: str) -> Account:
    """Names no other test uses (the local stack lives for the whole e2e session)."""
    suffix = secrets.token_hex(4)
    return Account(
        base_url=base_url.rstrip("/"),
        username=f"e2e-{suffix}",
        email=f"e2e-{suffix}@example.com",
        phone_number=f"+86138{secrets.randbelow(10**8):08d}",
    )


def new_account(base_url: str) -> Account:
    """A registered, verified and logged-in account."""
    account = fresh_account(base_url)
    registered = account.register()
    assert registered.status_code == 201, registered.text
    account.user_id = registered.json()["user_id"]
    verified = account.post("/auth/verify", {"username": account.username, "code": account.code_from_outbox()})
    assert verified.status_code == 200, verified.text
    account.log_in()
    return account

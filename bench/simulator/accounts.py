"""Virtual users' accounts: register → verify → login over HTTP.

Where the verification code comes from:

* the local stack: ``GET /_local/outbox?to=<phone>`` (the SMS the register function sent);
* a deployed stage: ``--codes-from 'COMMAND'``, run through the shell with ``SIM_USERNAME``,
  ``SIM_EMAIL`` and ``SIM_PHONE`` in its environment, printing the code (e.g. a script that reads
  a test mailbox); or ``--accounts FILE``, a JSON list of ``{"username", "password"}`` of accounts
  already verified, used in turn (no registration at all).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.simulator.client import Api

_CODE = re.compile(r"\b(\d{6})\b")
PASSWORD_WORDS = "simulated payer walks the whole flow"  # noqa: S105  # throwaway accounts of a test run


class AccountError(RuntimeError):
    pass


@dataclass(frozen=True)
class Identity:
    username: str
    email: str
    phone_number: str
    password: str


def identity(run_id: str, user: int, attempt: int = 0) -> Identity:
    digest = hashlib.sha256(f"{run_id}:{user}:{attempt}".encode()).hexdigest()
    name = f"sim-{run_id}-{user}" + (f"-{attempt}" if attempt else "")
    return Identity(
        username=name,
        email=f"{name}@example.com",
        phone_number=f"+86139{int(digest[:12], 16) % 10**8:08d}",
        password=f"{PASSWORD_WORDS} {run_id}",
    )


class Accounts:
    """Gives each virtual user a logged-in session (bearer token and signing key on its ``Api``)."""

    def __init__(
        self, *, run_id: str, local: bool, codes_from: str | None = None, accounts_file: Path | None = None
    ) -> None:
        self.run_id = run_id
        self.local = local
        self.codes_from = codes_from
        self._outbox_lock = threading.Lock()
        self.preset: list[dict[str, str]] = []
        if accounts_file is not None:
            data = json.loads(accounts_file.read_text())
            if not isinstance(data, list) or not all(
                isinstance(a, dict) and "username" in a and "password" in a for a in data
            ):
                raise AccountError(f"{accounts_file}: expected a JSON list of {{username, password}}")
            self.preset = data
        if not local and not codes_from and not self.preset:
            raise AccountError("a deployed stage needs --codes-from COMMAND or --accounts FILE (docs/simulator.md)")

    def sign_in(self, api: Api, user: int) -> str:
        """Register, verify and log in (or log in a preset account); returns the username."""
        if self.preset:
            account = self.preset[user % len(self.preset)]
            self._login(api, account["username"], account["password"])
            return account["username"]
        for attempt in range(3):
            who = identity(self.run_id, user, attempt)
            registered = api.call(
                "POST",
                "/auth/register",
                "POST /auth/register",
                payload={
                    "username": who.username,
                    "password": who.password,
                    "email": who.email,
                    "phone_number": who.phone_number,
                },
                auth=False,
            )
            if registered is not None and registered.status_code == 409:
                continue  # a phone number drawn twice across runs: draw another identity
            if registered is None or registered.status_code != 201:
                raise AccountError(f"register answered {getattr(registered, 'status_code', 'nothing')}")
            code = self._code(api, who)
            verified = api.call(
                "POST",
                "/auth/verify",
                "POST /auth/verify",
                payload={"username": who.username, "code": code},
                auth=False,
            )
            if verified is None or verified.status_code != 200:
                raise AccountError(f"verify answered {getattr(verified, 'status_code', 'nothing')}")
            self._login(api, who.username, who.password)
            return who.username
        raise AccountError("three identities in a row already existed")

    def _login(self, api: Api, username: str, password: str) -> None:
        answer = api.call(
            "POST", "/auth/login", "POST /auth/login", payload={"username": username, "password": password}, auth=False
        )
        if answer is None or answer.status_code != 200:
            raise AccountError(f"login answered {getattr(answer, 'status_code', 'nothing')}")
        api.tokens.update(answer.json())

    def _code(self, api: Api, who: Identity) -> str:
        if self.local:
            # The outbox reads moto's whole state (GET /moto-api/data.json), which takes longer as the
            # tables fill and holds moto meanwhile: one reader at a time, and few reads. The code is
            # sent during the register call, so the first read nearly always has it.
            delay = 0.2
            for _ in range(6):
                with self._outbox_lock:
                    outbox = api.call(
                        "GET", "/_local/outbox", "GET /_local/outbox", params={"to": who.phone_number}, auth=False
                    )
                sms = outbox.json().get("sms", []) if outbox is not None and outbox.status_code == 200 else []
                found = _CODE.search(sms[-1]["message"]) if sms else None
                if found:
                    return found.group(1)
                time.sleep(delay)
                delay *= 2
            raise AccountError(f"no code for {who.username} in the outbox")
        assert self.codes_from is not None
        env = dict(os.environ, SIM_USERNAME=who.username, SIM_EMAIL=who.email, SIM_PHONE=who.phone_number)
        result = subprocess.run(  # noqa: S602  # nosec B602  # the operator's own command, by design
            self.codes_from, shell=True, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        found = _CODE.search(result.stdout)
        if result.returncode != 0 or not found:
            raise AccountError(f"--codes-from printed no 6-digit code for {who.username} (exit {result.returncode})")
        return found.group(1)


def new_run_id() -> str:
    return secrets.token_hex(3)

"""The simulator's HTTP client: the API contract as a client app implements it, and a recorder of
every call's latency and answer per endpoint.

The client signs order requests itself from the contract (ARCHITECTURE.md, "Request signature";
docs/orders.md has the worked example a unit test holds this code to) rather than importing the
server's implementation: a second, independent implementation is what catches a drift between
the contract and the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import requests

TIMEOUT = 30.0  # seconds per request; the local stack answers in milliseconds to a second


def sign(key: bytes, t: int, nonce: str, method: str, path: str, body: bytes) -> str:
    """``t=<unix>,n=<nonce>,v1=<hex HMAC-SHA256(key, message)>`` with
    ``message = "<t>\\n<n>\\n<METHOD>\\n<path>\\n<hex SHA-256 of the body>"``."""
    message = f"{t}\n{nonce}\n{method.upper()}\n{path}\n{hashlib.sha256(body).hexdigest()}"
    mac = hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
    return f"t={t},n={nonce},v1={mac}"


def signing_key(b64url: str) -> bytes:
    return base64.urlsafe_b64decode(b64url + "=" * (-len(b64url) % 4))


@dataclass
class Recorder:
    """Latency and answers per endpoint (``POST /orders/{order_id}/refunds``), thread-safe."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answers: Counter[tuple[str, int, str]] = field(default_factory=Counter)  # (endpoint, status, error code)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, endpoint: str, status: int, code: str, seconds: float) -> None:
        with self._lock:
            self.latencies[endpoint].append(seconds)
            self.answers[(endpoint, status, code)] += 1

    def calls(self) -> int:
        return sum(len(v) for v in self.latencies.values())


def error_code(response: requests.Response | None) -> str:
    if response is None:
        return "no_answer"
    if response.status_code < 400:
        return ""
    try:
        body = response.json()
    except ValueError:
        return "non_json"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return str(error["code"])
        if isinstance(body.get("message"), str):  # an API Gateway default response
            return "gateway:" + str(body["message"])[:40]
    return "unknown"


@dataclass
class Tokens:
    """A logged-in session: the access token, the signing key and the refresh token, shared by every
    connection of one user (a twin connection for concurrent requests shares it, so a refresh
    rotates the refresh token once: presenting an old one again would end the session)."""

    bearer: str | None = None
    key: bytes | None = None
    refresh_token: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, answer: dict[str, Any]) -> None:
        self.bearer = str(answer["access_token"])
        self.key = signing_key(str(answer["signing_key"]))
        self.refresh_token = answer.get("refresh_token") or self.refresh_token


class Api:
    """One virtual user's connection to the API (a ``requests.Session`` is not shared across threads).

    An access token that has expired (401 ``unauthorized``) is refreshed with ``POST /auth/refresh``
    and the request sent once more (signed again), as a client app does: a long run outlives the
    token's lifetime."""

    def __init__(self, base_url: str, recorder: Recorder, timeout: float = TIMEOUT, tokens: Tokens | None = None):
        self.base_url = base_url.rstrip("/")
        self.recorder = recorder
        self.timeout = timeout
        self.session = requests.Session()
        self.tokens = tokens or Tokens()

    def twin(self) -> Api:
        """Another connection of the same user (for two requests at once)."""
        return Api(self.base_url, self.recorder, self.timeout, self.tokens)

    def close(self) -> None:
        self.session.close()

    def call(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        payload: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        signed: bool = False,
        headers: dict[str, str] | None = None,
        url: str | None = None,
        retry_auth: bool = True,
    ) -> requests.Response | None:
        """One request; ``None`` when no answer came (recorded as ``no_answer``)."""
        body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b""
        sent = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        bearer = self.tokens.bearer if auth else None
        if bearer:
            sent["Authorization"] = f"Bearer {bearer}"
        if signed:
            if self.tokens.key is None:
                raise RuntimeError("sign a request only after login")
            nonce = secrets.token_urlsafe(16)
            sent["X-Signature"] = sign(self.tokens.key, int(time.time()), nonce, method, path, body)
        start = time.perf_counter()
        try:
            response: requests.Response | None = self.session.request(
                method,
                url or f"{self.base_url}{path}",
                data=body or None,
                params=params,
                headers=sent,
                timeout=self.timeout,
            )
        except requests.RequestException:
            response = None
        elapsed = time.perf_counter() - start
        code = error_code(response)
        self.recorder.record(endpoint, response.status_code if response is not None else 0, code, elapsed)
        expired = response is not None and response.status_code == 401 and code == "unauthorized"
        if expired and bearer and retry_auth and self._refresh(bearer):
            return self.call(
                method,
                path,
                endpoint,
                payload=payload,
                params=params,
                auth=auth,
                signed=signed,
                headers=headers,
                url=url,
                retry_auth=False,
            )
        return response

    def _refresh(self, used: str) -> bool:
        """Refresh the session unless another connection already did since ``used`` was sent."""
        with self.tokens.lock:
            if self.tokens.bearer != used:
                return True
            if not self.tokens.refresh_token:
                return False
            answer = self.call(
                "POST",
                "/auth/refresh",
                "POST /auth/refresh",
                payload={"refresh_token": self.tokens.refresh_token},
                auth=False,
                retry_auth=False,
            )
            if answer is None or answer.status_code != 200:
                return False
            self.tokens.update(answer.json())
            return True

"""The operations the bench measures, each driven through its function's handler in-process, as API
Gateway, EventBridge or the authorizer would call it.

An :class:`Operation` prepares ``n`` ready calls (doing, unmeasured, whatever each needs first: a
registered user, a fresh refresh token, a pending order) and says which template functions it needs;
an operation whose functions are not in template.yaml yet is reported as not measured. Every call
checks its response, so a broken flow stops the bench instead of counting an error path.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.stack import Stack
from infra.local.events import HttpRequest, RouteMatch, proxy_event
from infra.local.template import ACCOUNT_ID

Call = Callable[[], Any]
PASSWORD = "correct horse battery staple"  # noqa: S105  # a bench user's password, not a secret


class FlowError(AssertionError):
    """A call the bench makes did not answer as the flow expects."""


def expect(response: dict[str, Any], status: int, what: str) -> dict[str, Any]:
    if response.get("statusCode") != status:
        raise FlowError(f"{what}: expected {status}, got {response.get('statusCode')}: {response.get('body')}")
    return json.loads(response["body"]) if response.get("body") else {}


@dataclass
class User:
    username: str
    email: str
    phone_number: str
    user_id: str = ""
    tokens: dict[str, Any] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)  # what the authorizer answered for the session

    @property
    def authorizer(self) -> dict[str, str]:
        """``requestContext.authorizer`` as API Gateway passes it: the authorizer's own context
        (user, session and the session's key version) for the current session."""
        claims = json.loads(_b64(self.tokens["access_token"].split(".")[1]))
        if self.context.get("session_id") != claims["sid"]:
            raise FlowError("no authorizer context for this session: Driver.authorize first")
        return {"principalId": self.user_id, **self.context}


def _b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Driver:
    """Calls the handlers of one :class:`Stack` the way their triggers do."""

    def __init__(self, stack: Stack, *, cold_caches: bool = False):
        self.stack = stack
        # Section 2 counts what a call costs when the container's caches have expired (the channels'
        # 30 s cache); the warm path measures the common case, with them held.
        self.cold_caches = cold_caches
        self._serial = 0
        self.pending: list[User] = []  # registered, not yet verified: verify takes these first
        self.pending_orders: list[dict[str, Any]] = []  # created, not yet paid: callbacks take these first
        self.paid_orders: list[dict[str, Any]] = []  # paid, not yet refunded: refunds take these first

    # ------------------------------------------------------------ events
    def api(
        self,
        function: str,
        method: str,
        resource: str,
        *,
        path: dict[str, str] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        user: User | None = None,
        raw: bytes | None = None,
        query: str = "",
    ) -> dict[str, Any]:
        concrete = resource
        for key, value in (path or {}).items():
            concrete = concrete.replace("{" + key + "}", value)
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        request = HttpRequest(
            method=method,
            path=concrete,
            query=query,
            headers=tuple(
                {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}.items()
            ),
            body=payload,
        )
        event = proxy_event(
            request, RouteMatch(resource, dict(path or {})), stage="bench", authorizer=user.authorizer if user else None
        )
        result: dict[str, Any] = self.stack.invoke(function, event)
        return result

    def next_serial(self) -> int:
        self._serial += 1
        return self._serial

    # ------------------------------------------------------------ identity
    def new_user(self) -> User:
        n = self.next_serial()
        return User(username=f"bench{n}", email=f"bench{n}@example.com", phone_number=f"+86139{n:08d}")

    def register(self, user: User) -> User:
        body = {"username": user.username, "password": PASSWORD, "email": user.email, "phone_number": user.phone_number}
        out = expect(self.api("RegisterFunction", "POST", "/auth/register", body=body), 201, "register")
        user.user_id = out["user_id"]
        self.pending.append(user)
        return user

    def code_for(self, user: User) -> str:
        from moto.sns.models import sns_backends

        messages = list(sns_backends[ACCOUNT_ID]["us-east-1"].sms_messages.values())
        texts = [text for phone, text in messages if phone == user.phone_number]
        match = re.search(r"\b(\d{6})\b", texts[-1]) if texts else None
        if match is None:
            raise FlowError(f"no verification code was texted to {user.phone_number}")
        return match.group(1)

    def verify(self, user: User, code: str) -> None:
        if user in self.pending:
            self.pending.remove(user)
        body = {"username": user.username, "code": code}
        expect(self.api("RegisterFunction", "POST", "/auth/verify", body=body), 200, "verify")

    def login(self, user: User) -> User:
        body = {"username": user.username, "password": PASSWORD}
        user.tokens = expect(self.api("LoginFunction", "POST", "/auth/login", body=body), 200, "login")
        return user

    def refresh(self, user: User) -> User:
        body = {"refresh_token": user.tokens["refresh_token"]}
        user.tokens = expect(self.api("LoginFunction", "POST", "/auth/refresh", body=body), 200, "refresh")
        return user

    def authorize(self, user: User) -> None:
        event = {
            "type": "TOKEN",
            "authorizationToken": f"Bearer {user.tokens['access_token']}",
            "methodArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:localapi/bench/GET/channels",
        }
        decision = self.stack.invoke("AuthorizerFunction", event)
        if decision["policyDocument"]["Statement"][0]["Effect"] != "Allow":
            raise FlowError("authorizer denied a fresh token")
        user.context = dict(decision["context"])

    def list_channels(self, user: User, *, cold: bool) -> None:
        if cold:  # the container's channel cache (CHANNELS_CACHE_SECONDS) expired: read the table
            import paycore.channels

            paycore.channels.reset_cache()
        response = self.api("ChannelsFunction", "GET", "/channels", query="amount=1000&currency=CNY", user=user)
        expect(response, 200, "list channels")

    def active_user(self) -> User:
        user = self.register(self.new_user())
        self.verify(user, self.code_for(user))
        self.login(user)
        self.authorize(user)  # the context API Gateway hands the backends
        return user


@dataclass(frozen=True)
class Staged:
    """A call whose set-up runs, unmeasured, just before it (the sweeper's due orders)."""

    setup: Callable[[], Any]
    run: Callable[[], Any]

    def __call__(self) -> Any:
        return self.run()


def set_up(call: Call) -> None:
    setup = getattr(call, "setup", None)
    if setup is not None:
        setup()


@dataclass(frozen=True)
class Operation:
    name: str
    functions: tuple[str, ...]  # template logical ids the operation needs
    prepare: Callable[[Driver, int], list[Call]]
    minimum: float  # DynamoDB requests the design needs at the least (per unit)
    why: str  # what those requests are and why no fewer will do
    kept: float = 0  # requests over the minimum kept by choice (``why`` says what they buy)
    warm: bool = True  # measured on the warm path (per-request API operations)
    # Batch operations: each call handles ``per`` units; ``baseline`` makes the same call over none,
    # and section 2 reports (call - baseline) / per.
    per: int = 1
    baseline: Callable[[Driver], Call] | None = None


def _register(d: Driver, n: int) -> list[Call]:
    users = [d.new_user() for _ in range(n)]
    return [lambda u=u: d.register(u) for u in users]


def _verify(d: Driver, n: int) -> list[Call]:
    users = d.pending[:n]  # the users the register operation made, then new ones
    users += [d.register(d.new_user()) for _ in range(n - len(users))]
    codes = [d.code_for(u) for u in users]
    return [lambda u=u, c=c: d.verify(u, c) for u, c in zip(users, codes, strict=True)]


def _login(d: Driver, n: int) -> list[Call]:
    user = d.active_user()
    return [lambda: d.login(user) for _ in range(n)]


def _refresh(d: Driver, n: int) -> list[Call]:
    user = d.active_user()  # each refresh hands the next one its token
    return [lambda: d.refresh(user) for _ in range(n)]


def _authorize(d: Driver, n: int) -> list[Call]:
    user = d.active_user()
    return [lambda: d.authorize(user) for _ in range(n)]


def _channels(d: Driver, n: int) -> list[Call]:
    user = d.active_user()
    return [lambda: d.list_channels(user, cold=d.cold_caches) for _ in range(n)]


IDENTITY = [
    Operation(
        "register",
        ("RegisterFunction",),
        _register,
        1,
        "one TransactWriteItems: the user and its email and phone claims, each conditioned on not existing "
        "(uniqueness without a read).",
    ),
    Operation(
        "verify",
        ("RegisterFunction",),
        _verify,
        2,
        "read the user (the code's hash, expiry and tries), then one conditional write: the check needs the "
        "stored hash, and every wrong try must be counted atomically.",
    ),
    Operation(
        "login",
        ("LoginFunction",),
        _login,
        4,
        "reserve an attempt (one conditional write), read the user (the argon2 hash), clear the attempts after "
        "the success (the design resets the window), and one TransactWriteItems for the session and its first "
        "refresh token.",
    ),
    Operation(
        "refresh",
        ("LoginFunction",),
        _refresh,
        2,
        "read the presented token (session, reuse; it carries the session's user, expiry and signing-key "
        "version), then one TransactWriteItems: mark it used, store the next, hold the session active (the "
        "condition that refuses an ended session).",
    ),
    Operation(
        "authorize",
        ("AuthorizerFunction",),
        _authorize,
        1,
        "one consistent GetItem of the session: the authorizer caches nothing (ReauthorizeEvery 0), so a "
        "logout refuses the very next call; it passes the session's signing-key version on in its context.",
    ),
    Operation(
        "list channels",
        ("ChannelsFunction",),
        _channels,
        2,
        "one read of the channel configuration when the container's cache (CHANNELS_CACHE_SECONDS, 30 s) has "
        "expired, as section 2 measures it, none while it holds (the warm path); with an amount and a currency "
        "(as here) the router ranks the eligible channels: one BatchGetItem of their router states, one key per "
        "channel (paycore/data/routing.py).",
    ),
]


def operations() -> list[Operation]:
    """Every operation the bench knows, identity first, then orders and the scheduled jobs."""
    from bench.orders_ops import JOBS, ORDERS

    return [*IDENTITY, *ORDERS, *JOBS]


def available(stack: Stack, operation: Operation) -> bool:
    return all(lid in stack.functions for lid in operation.functions)


def now() -> float:
    return time.time()

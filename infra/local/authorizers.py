"""Lambda authorizers as API Gateway (REST API) runs them: identity check, call, cache, policy.

The flow for a route guarded by a TOKEN or REQUEST authorizer:

1. Identity sources. TOKEN: the token header (``Identity.Header``, default ``Authorization``)
   must be present and non-empty, and match ``Identity.ValidationExpression`` if the template
   gives one. REQUEST: every declared header, query string, stage variable and context value must
   be present and non-empty. Otherwise API Gateway answers 401 UNAUTHORIZED without calling the
   authorizer.
2. The cache. With ``ReauthorizeEvery`` > 0 (SAM's default is 300 s), the authorizer's answer is
   kept for that long, keyed by the identity source values. A cached policy is evaluated against
   each new request's methodArn, as API Gateway does: a policy that names only the first
   resource it was issued for denies the others until it expires.
3. The call. An exception whose message is exactly ``Unauthorized`` is a 401 UNAUTHORIZED; any
   other failure, or an answer without ``principalId`` and a policy, is a 500
   AUTHORIZER_CONFIGURATION_ERROR (API Gateway logs it and answers ``{"message": null}``).
4. The policy. An explicit Deny wins; otherwise an Allow statement whose Action covers
   ``execute-api:Invoke`` and whose Resource matches the methodArn (``*`` any run of characters,
   ``?`` one) allows; nothing matching is an implicit deny. Both denials are 403 ACCESS_DENIED.
   On Allow, ``principalId`` and the ``context`` map (values stringified: ``true``, ``1``) go to
   ``requestContext.authorizer``, with ``integrationLatency``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from infra.local.events import HttpRequest
from infra.local.template import AuthorizerSpec

ALLOW = "allow"
EXPLICIT_DENY = "explicit_deny"
IMPLICIT_DENY = "implicit_deny"


class AuthorizerOutputError(ValueError):
    """The authorizer answered something API Gateway cannot use."""


@lru_cache(maxsize=256)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{regex}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def evaluate_policy(policy: dict[str, Any], arn: str) -> str:
    """IAM evaluation of an authorizer's policy for ``execute-api:Invoke`` on ``arn``."""
    statements = policy.get("Statement")
    if statements is None:
        raise AuthorizerOutputError("policyDocument has no Statement")
    allowed = False
    for statement in _as_list(statements):
        if not isinstance(statement, dict):
            raise AuthorizerOutputError("a policy Statement is not an object")
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise AuthorizerOutputError(f"a policy Statement has Effect {effect!r}")
        actions = _as_list(statement.get("Action", []))
        resources = _as_list(statement.get("Resource", []))
        # Actions are case-insensitive in IAM; resources (ARNs) are not.
        if not any(_wildcard(str(a), True).match("execute-api:Invoke") for a in actions):
            continue
        if not any(_wildcard(str(r), False).match(arn) for r in resources):
            continue
        if effect == "Deny":
            return EXPLICIT_DENY
        allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def authorizer_context(output: dict[str, Any]) -> dict[str, Any]:
    """``requestContext.authorizer`` for an allowed request (without ``integrationLatency``)."""
    context = output.get("context") or {}
    if not isinstance(context, dict):
        raise AuthorizerOutputError("context is not an object")
    for key, value in context.items():
        if isinstance(value, (dict, list)) or value is None:
            raise AuthorizerOutputError(f"context value {key!r} is not a string, number or boolean")
    return {"principalId": str(output["principalId"]), **{k: _stringify(v) for k, v in context.items()}}


def check_output(output: Any) -> dict[str, Any]:
    if not isinstance(output, dict):
        raise AuthorizerOutputError("the authorizer answered something other than an object")
    if not output.get("principalId"):
        raise AuthorizerOutputError("the answer has no principalId")
    policy = output.get("policyDocument")
    if not isinstance(policy, dict):
        raise AuthorizerOutputError("the answer has no policyDocument")
    authorizer_context(output)  # raises on a context API Gateway rejects
    return output


@dataclass(frozen=True)
class Decision:
    """What the gateway does next: ``response_type`` None means go on, with ``context``."""

    response_type: str | None
    message: str | None = None
    context: dict[str, Any] | None = None


def _dotted(data: dict[str, Any], path: str) -> str:
    value: Any = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def identity_sources(
    spec: AuthorizerSpec,
    request: HttpRequest,
    stage_variables: dict[str, str],
    request_context: dict[str, Any] | None = None,
) -> tuple[str, ...] | None:
    """The identity source values (the cache key), or None when one is missing or invalid."""
    if spec.payload_type == "TOKEN":
        token = request.header(spec.header)
        if not token:
            return None
        if spec.validation_expression and not re.fullmatch(spec.validation_expression, token):
            return None
        return (token,)
    query = dict(request.query_values())
    values: list[str] = []
    for name in spec.headers:
        values.append(request.header(name) or "")
    for name in spec.query_strings:
        values.append(query.get(name, ""))
    for name in spec.stage_variables:
        values.append(stage_variables.get(name, ""))
    for name in spec.context:
        values.append(_dotted(request_context or {}, name))  # e.g. identity.sourceIp
    if any(v == "" for v in values):
        return None
    return tuple(values)


class AuthorizerCache:
    """Answers of authorizers, kept ``ReauthorizeEvery`` seconds per (authorizer, identity sources)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._entries: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, key: tuple[str, ...]) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get((name, key))
            if entry is None:
                return None
            if self._clock() >= entry[0]:
                del self._entries[(name, key)]
                return None
            return entry[1]

    def put(self, name: str, key: tuple[str, ...], output: dict[str, Any], ttl: int) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._entries[(name, key)] = (self._clock() + ttl, output)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class AuthorizerFailed(Exception):
    """The authorizer raised or could not be called; ``unauthorized`` when it said "Unauthorized"."""

    def __init__(self, unauthorized: bool):
        super().__init__("Unauthorized" if unauthorized else "authorizer failure")
        self.unauthorized = unauthorized


def authorize(
    spec: AuthorizerSpec,
    request: HttpRequest,
    *,
    arn: str,
    build_event: Callable[[], dict[str, Any]],
    call: Callable[[dict[str, Any]], Any],
    cache: AuthorizerCache,
    stage_variables: dict[str, str] | None = None,
    request_context: dict[str, Any] | None = None,
) -> Decision:
    """Run the authorizer flow for one request (see the module docstring).

    ``build_event`` gives the authorizer's event; ``call`` invokes the authorizer function and
    raises :class:`AuthorizerFailed` when it fails."""
    key = identity_sources(spec, request, stage_variables or {}, request_context)
    if key is None:
        return Decision("UNAUTHORIZED", "Unauthorized")
    started = time.monotonic()
    output = cache.get(spec.name, key)
    if output is None:
        try:
            output = check_output(call(build_event()))
        except AuthorizerFailed as exc:
            if exc.unauthorized:
                return Decision("UNAUTHORIZED", "Unauthorized")
            return Decision("AUTHORIZER_CONFIGURATION_ERROR", None)
        except AuthorizerOutputError:
            return Decision("AUTHORIZER_CONFIGURATION_ERROR", None)
        cache.put(spec.name, key, output, spec.ttl)
    try:
        verdict = evaluate_policy(output["policyDocument"], arn)
    except AuthorizerOutputError:
        return Decision("AUTHORIZER_CONFIGURATION_ERROR", None)
    if verdict == EXPLICIT_DENY:
        return Decision("ACCESS_DENIED", "User is not authorized to access this resource with an explicit deny")
    if verdict == IMPLICIT_DENY:
        return Decision("ACCESS_DENIED", "User is not authorized to access this resource")
    context = authorizer_context(output)
    context["integrationLatency"] = int((time.monotonic() - started) * 1000)
    return Decision(None, context=context)

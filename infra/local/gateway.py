"""The local API Gateway: template.yaml's routes over HTTP, each turned into the function's event.

:class:`Gateway` is the REST API of the template (one ``AWS::Serverless::Api``): it matches a
request to a declared route, runs the route's Lambda authorizer, builds the proxy event, calls
the function in-process and turns its answer into the HTTP response. Failures answer with the
template's ``GatewayResponses`` (status, headers, body template), as API Gateway does:

* no route for the path or method: 403 MISSING_AUTHENTICATION_TOKEN ("Missing Authentication Token"),
  exactly what a deployed REST API answers (not 404), so clients meet the same status here;
* authorizer refusals: 401 UNAUTHORIZED, 403 ACCESS_DENIED, 500 AUTHORIZER_CONFIGURATION_ERROR;
* a handler that raised, timed out, failed to load or answered a malformed proxy response: 502
  with the DEFAULT_5XX response; the traceback goes to the console, never to the client.

:class:`GatewayServer` serves a Gateway (and the dev-only routes under ``/_local``) on a
stdlib threading HTTP server.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from infra.local.authorizers import AuthorizerCache, AuthorizerFailed, authorize
from infra.local.events import (
    HttpRequest,
    RouteMatch,
    last_header,
    method_arn,
    proxy_event,
    request_authorizer_event,
    token_authorizer_event,
)
from infra.local.runtime import FunctionError, FunctionRuntime
from infra.local.template import ApiSpec, AuthorizerSpec, Route

log = logging.getLogger("infra.local")

# Gateway response types: API Gateway's default status (supported-gateway-response-types.html) and
# the x-amzn-ErrorType header it sends with them ("-" where the local stack does not set one).
_RESPONSE_TYPES = """
ACCESS_DENIED                   403  AccessDeniedException
API_CONFIGURATION_ERROR         500  -
AUTHORIZER_CONFIGURATION_ERROR  500  AuthorizerConfigurationException
AUTHORIZER_FAILURE              500  -
BAD_REQUEST_PARAMETERS          400  BadRequestException
BAD_REQUEST_BODY                400  BadRequestException
EXPIRED_TOKEN                   403  -
INTEGRATION_FAILURE             504  -
INTEGRATION_TIMEOUT             504  -
INVALID_API_KEY                 403  -
INVALID_SIGNATURE               403  -
MISSING_AUTHENTICATION_TOKEN    403  MissingAuthenticationTokenException
QUOTA_EXCEEDED                  429  -
REQUEST_TOO_LARGE               413  -
RESOURCE_NOT_FOUND              404  -
THROTTLED                       429  -
UNAUTHORIZED                    401  UnauthorizedException
UNSUPPORTED_MEDIA_TYPE          415  -
WAF_FILTERED                    403  -
DEFAULT_4XX                     400  -
DEFAULT_5XX                     500  InternalServerErrorException
"""
_TABLE = [line.split() for line in _RESPONSE_TYPES.strip().splitlines()]
DEFAULT_STATUS = {name: int(status) for name, status, _ in _TABLE}
ERROR_TYPES = {name: error for name, _, error in _TABLE if error != "-"}
_DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'
API_GATEWAY_TIMEOUT_SECONDS = 29  # the REST API integration timeout


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    function: str | None = None  # who answered, for the access log

    def header(self, name: str) -> str | None:
        return last_header(self.headers, name)

    def json(self) -> Any:
        return json.loads(self.body)


def json_response(status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json"), *(headers or [])], json.dumps(data).encode())


# ---------------------------------------------------------------------- routes
@dataclass(frozen=True)
class _Resource:
    path: str
    segments: tuple[str, ...]
    routes: tuple[Route, ...]

    @property
    def rank(self) -> tuple[int, ...]:
        """Lower is more specific: a literal segment beats {param}, which beats {greedy+}."""
        return tuple(2 if s.endswith("+}") else 1 if s.startswith("{") else 0 for s in self.segments)


def _segments(path: str) -> tuple[str, ...]:
    stripped = path.strip("/")
    return tuple(stripped.split("/")) if stripped else ()


class RouteTable:
    """The template's routes, grouped by resource path, matched as API Gateway does: the most
    specific resource for the path first, then the method on it (exact, else ``ANY``)."""

    def __init__(self, routes: list[Route]):
        by_path: dict[str, list[Route]] = {}
        for route in routes:
            by_path.setdefault(route.path, []).append(route)
        self.resources = [_Resource(path, _segments(path), tuple(rs)) for path, rs in by_path.items()]
        for resource in self.resources:
            greedy = [s for s in resource.segments if s.endswith("+}")]
            if greedy and not resource.segments[-1].endswith("+}"):
                raise ValueError(f"{resource.path}: a greedy {{name+}} segment must be the last one")

    @staticmethod
    def _bind(resource: _Resource, parts: tuple[str, ...]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        for i, seg in enumerate(resource.segments):
            if seg.endswith("+}"):
                rest = parts[i:]
                if not rest or any(p == "" for p in rest):
                    return None
                params[seg[1:-2]] = unquote("/".join(rest))
                return params
            if i >= len(parts):
                return None
            if seg.startswith("{") and seg.endswith("}"):
                if parts[i] == "":
                    return None
                params[seg[1:-1]] = unquote(parts[i])
            elif seg != unquote(parts[i]):
                return None
        return params if len(parts) == len(resource.segments) else None

    def match(self, method: str, raw_path: str) -> tuple[Route, RouteMatch] | None:
        parts = _segments(raw_path)
        candidates = []
        for resource in self.resources:
            params = self._bind(resource, parts)
            if params is not None:
                candidates.append((resource.rank, resource, params))
        if not candidates:
            return None
        _, resource, params = min(candidates, key=lambda c: c[0])
        for wanted in (method.upper(), "ANY"):
            for route in resource.routes:
                if route.method == wanted:
                    return route, RouteMatch(resource.path, params)
        return None


# ---------------------------------------------------------------------- gateway responses
# $context.x.y, ${context.x.y}, and the quiet forms $!context.x.y / $!{context.x.y}
_VTL_REF = re.compile(r"\$(!?)(?:\{context\.([A-Za-z0-9_.]+)\}|context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*))")


def _header_value(expression: str, request: HttpRequest, path_parameters: Mapping[str, str]) -> str | None:
    """A gateway response header mapping: a 'static' value or method.request.{header,querystring,path}.X."""
    if len(expression) >= 2 and expression.startswith("'") and expression.endswith("'"):
        return expression[1:-1]
    for prefix, lookup in (
        ("method.request.header.", request.header),
        ("method.request.querystring.", lambda name: dict(request.query_values()).get(name)),
        ("method.request.path.", path_parameters.get),
    ):
        if expression.startswith(prefix):
            return lookup(expression[len(prefix) :])
    return None


class GatewayResponses:
    """The template's ``GatewayResponses``, with API Gateway's fallbacks to DEFAULT_4XX/DEFAULT_5XX."""

    def __init__(self, declared: Mapping[str, Any]):
        self.declared = dict(declared)

    def render(
        self,
        response_type: str,
        message: str | None,
        request: HttpRequest,
        *,
        request_id: str,
        stage: str,
        status: int | None = None,
        path_parameters: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        default_status = status or DEFAULT_STATUS.get(response_type, 500)
        family = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
        own = self.declared.get(response_type, {}) if response_type != family else {}
        fallback = self.declared.get(family, {})
        code = own.get("StatusCode") or fallback.get("StatusCode") or default_status
        headers_spec = {
            **fallback.get("ResponseParameters", {}).get("Headers", {}),
            **own.get("ResponseParameters", {}).get("Headers", {}),
        }
        templates = own.get("ResponseTemplates") or fallback.get("ResponseTemplates") or {}
        template = templates.get("application/json") or next(iter(templates.values()), None) or _DEFAULT_TEMPLATE
        values = {
            "error.message": "" if message is None else message,
            "error.messageString": json.dumps(message),
            "error.responseType": response_type,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "stage": stage,
            "httpMethod": request.method,
            "path": f"/{stage}{unquote(request.path)}",
            "identity.sourceIp": request.source_ip,
            "identity.userAgent": request.header("User-Agent") or "",
        }

        def substitute(match: re.Match[str]) -> str:
            quiet, name = match.group(1), match.group(2) or match.group(3)
            if name in values:
                return values[name]
            return "" if quiet else match.group(0)

        body = _VTL_REF.sub(substitute, template)
        headers: list[tuple[str, str]] = []
        for name, expression in headers_spec.items():
            value = _header_value(str(expression), request, path_parameters or {})
            if value is not None:
                headers.append((name, value))
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        if response_type in ERROR_TYPES:
            headers.append(("x-amzn-ErrorType", ERROR_TYPES[response_type]))
        headers.append(("x-amzn-RequestId", request_id))
        return HttpResponse(int(code), headers, body.encode())


# ---------------------------------------------------------------------- proxy response
class MalformedResponse(ValueError):
    pass


def proxy_response(result: Any) -> HttpResponse:
    """The HTTP response for a function's proxy integration answer; raises MalformedResponse."""
    if not isinstance(result, dict):
        raise MalformedResponse("the function answered something other than an object")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status!r} is not an HTTP status")
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedResponse("body is not a string")
    raw = (body or "").encode()
    if result.get("isBase64Encoded") and body:
        try:
            raw = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise MalformedResponse("isBase64Encoded is set but body is not base64") from exc
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedResponse("headers and multiValueHeaders must be objects")
    headers: list[tuple[str, str]] = []
    # Both maps are merged; where a name is in both, multiValueHeaders wins (API Gateway's rule).
    multi_names = {k.lower() for k in multi}
    for name, value in single.items():
        if name.lower() not in multi_names:
            headers.append((name, str(value)))
    for name, values in multi.items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((name, str(value)))
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))  # API Gateway's default
    return HttpResponse(status, headers, raw)


# ---------------------------------------------------------------------- gateway
DevHandler = Callable[[HttpRequest], HttpResponse | None]
# Besides /_local, the local stack serves the API's OpenAPI document and Swagger UI (devroutes.py).
DOC_PATHS = ("/openapi.json", "/docs")


def is_dev_path(path: str) -> bool:
    """Whether the local stack answers ``path`` itself (never a template route, never deployed)."""
    return any(path == p or path.startswith(p + "/") for p in ("/_local", *DOC_PATHS))


class Gateway:
    """The REST API of the template, served by calling its functions in ``runtime``."""

    def __init__(
        self,
        *,
        api: ApiSpec,
        routes: list[Route],
        authorizers: Mapping[str, AuthorizerSpec],
        runtime: FunctionRuntime,
        region: str,
        dev: DevHandler | None = None,
        cache: AuthorizerCache | None = None,
    ):
        self.api = api
        self.table = RouteTable(routes)
        self.authorizers = dict(authorizers)
        self.runtime = runtime
        self.region = region
        self.dev = dev
        self.cache = cache or AuthorizerCache()
        self.responses = GatewayResponses(api.gateway_responses)
        for route in routes:
            if is_dev_path(route.path):
                raise ValueError(
                    f"{route.function}: {route.path} is under /_local, /openapi.json or /docs, "
                    "which the local stack keeps for itself"
                )

    def _gateway_response(
        self, response_type: str, message: str | None, request: HttpRequest, request_id: str, **kw: Any
    ) -> HttpResponse:
        return self.responses.render(response_type, message, request, request_id=request_id, stage=self.api.stage, **kw)

    def handle(self, request: HttpRequest) -> HttpResponse:
        if self.dev is not None and is_dev_path(request.path):
            answered = self.dev(request)
            if answered is not None:
                return answered
        request_id = str(uuid.uuid4())
        found = self.table.match(request.method, request.path)
        if found is None:
            return self._gateway_response(
                "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", request, request_id
            )
        route, match = found
        event = proxy_event(
            request,
            match,
            stage=self.api.stage,
            binary_media_types=self.api.binary_media_types,
            request_id=request_id,
        )
        if route.authorizer_name is not None:
            decision = self._authorize(route, request, event)
            if decision.response_type is not None:
                response = self._gateway_response(
                    decision.response_type, decision.message, request, request_id, path_parameters=match.path_parameters
                )
                response.function = self.authorizers[route.authorizer_name].function
                return response
            event["requestContext"]["authorizer"] = decision.context
        response = self._invoke(route.function, event, request, request_id)
        response.function = route.function
        return response

    def _authorize(self, route: Route, request: HttpRequest, event: dict[str, Any]) -> Any:
        spec = self.authorizers[str(route.authorizer_name)]
        arn = method_arn(region=self.region, stage=self.api.stage, method=request.method, path=event["path"])

        def build() -> dict[str, Any]:
            if spec.payload_type == "TOKEN":
                return token_authorizer_event(request.header(spec.header) or "", arn)
            return request_authorizer_event(event, arn)

        def call(authorizer_event: dict[str, Any]) -> Any:
            try:
                return self.runtime.invoke(spec.function, authorizer_event).result
            except FunctionError as exc:
                raise AuthorizerFailed(unauthorized=exc.kind == "error" and exc.message == "Unauthorized") from exc

        return authorize(
            spec,
            request,
            arn=arn,
            build_event=build,
            call=call,
            cache=self.cache,
            stage_variables=event.get("stageVariables") or {},
            request_context=event["requestContext"],
        )

    def _invoke(self, function: str, event: dict[str, Any], request: HttpRequest, request_id: str) -> HttpResponse:
        started = time.monotonic()
        try:
            invocation = self.runtime.invoke(function, event, request_id=request_id)
        except FunctionError:
            if time.monotonic() - started > API_GATEWAY_TIMEOUT_SECONDS:
                return self._gateway_response("INTEGRATION_TIMEOUT", "Endpoint request timed out", request, request_id)
            return self._gateway_response("DEFAULT_5XX", "Internal server error", request, request_id, status=502)
        if time.monotonic() - started > API_GATEWAY_TIMEOUT_SECONDS:
            return self._gateway_response("INTEGRATION_TIMEOUT", "Endpoint request timed out", request, request_id)
        try:
            response = proxy_response(invocation.result)
        except MalformedResponse as exc:
            log.error("%s answered a malformed Lambda proxy response (request %s): %s", function, request_id, exc)
            return self._gateway_response("DEFAULT_5XX", "Internal server error", request, request_id, status=502)
        response.headers.append(("x-amzn-RequestId", request_id))
        return response


# ---------------------------------------------------------------------- HTTP server
class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GatewayServer

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        started = time.monotonic()
        body = self._read_body()
        target = urlsplit(self.path)
        request = HttpRequest(
            method=self.command.upper(),
            path=target.path or "/",
            query=target.query,
            headers=tuple((k, v) for k, v in self.headers.items() if k.lower() != "transfer-encoding"),
            body=body,
            source_ip=self.client_address[0],
            host=self.headers.get("Host") or self.server.url.removeprefix("http://"),
        )
        try:
            if self.server.gateway is None:
                raise RuntimeError("the gateway is not set")
            response = self.server.gateway.handle(request)
        except Exception:  # a defect of the local stack itself, not of a function
            log.exception("the local gateway failed on %s %s", request.method, request.path)
            response = json_response(500, {"message": "the local gateway failed; see its console"})
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command.upper() != "HEAD":
            self.wfile.write(response.body)
        elapsed = (time.monotonic() - started) * 1000
        who = f" {response.function}" if response.function else ""
        log.info("%s %s -> %d%s %.0f ms", request.method, self.path, response.status, who, elapsed)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, QUERY, ...) goes to the gateway too, which answers it like any
        method a route does not declare (403, as API Gateway does); the stdlib server alone would
        answer 501, a server error (schemathesis sends such methods)."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """The access line is written by _serve; keep the stdlib's own line off stderr."""


class GatewayServer(ThreadingHTTPServer):
    """A threading HTTP server for a :class:`Gateway` (port 0 picks a free port)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, gateway: Gateway | None, host: str = "127.0.0.1", port: int = 3000):
        self.gateway = gateway  # may be set after binding; requests are served only from serve_forever()
        super().__init__((host, port), _RequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

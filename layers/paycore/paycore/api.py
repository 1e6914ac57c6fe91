"""The REST resolver every API function uses, with the one error map of the API contract.

``build_resolver()`` returns a Powertools ``APIGatewayRestResolver`` with validation on, whose
exception handlers answer every domain error, validation failure and unknown route as
``{"error": {"code", "message"}}`` with the contract's status. Unexpected exceptions are not
caught here: they fail the invocation, API Gateway answers its DEFAULT_5XX response in the same
shape, and the function's Errors alarm sees them.

Every request's log lines carry the caller (``user_id``, ``session_id`` from the authorizer) and
the ``order_id`` of the path where there is one (:func:`paycore.observability.log_keys`), from the
first line to the error map's last; logic adds the order id where only the body names it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.errors import InvalidRequest, PaymentError, Unauthorized, UnsupportedMediaType
from paycore.observability import log_keys, logger

# The OpenAPI security scheme of the request signature (docs/orders.md). A route that checks
# X-Signature declares ``security=SIGNED`` so that the generated document (infra/openapi.py) says so;
# the Bearer requirement is added from template.yaml's authorizers.
SIGNATURE_SCHEME = "requestSignature"
SIGNATURE_HEADER = "X-Signature"
SIGNED: list[dict[str, list[str]]] = [{SIGNATURE_SCHEME: []}]


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": {"code": code, "message": message}}),
        headers=headers or {},
    )


def _describe_validation(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header"))
        msg = err.get("msg", "is invalid")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "The request is malformed."


def _request_keys(event: Mapping[str, Any]) -> dict[str, str | None]:
    """Who calls and on which order, as far as the proxy event says (never a header or body value)."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    path = event.get("pathParameters") or {}
    return {
        "user_id": context.get("user_id"),
        "session_id": context.get("session_id"),
        "order_id": path.get("order_id"),
    }


class PaymentsResolver(APIGatewayRestResolver):
    """The REST resolver with the request's caller and order in every log line it writes."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        with log_keys(**_request_keys(event)):
            return super().resolve(event, context)


class _JsonBodyValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, for an API whose request bodies are JSON only.

    Found by schemathesis (docs/reliability.md): Powertools also parses form and multipart bodies,
    and three inputs escaped its validation errors: random bytes sent as application/json
    (UnicodeDecodeError), ``multipart/form-data`` without a boundary (ValueError), both a 502; and
    text/plain, answered 415 in Powertools' own body shape instead of the contract's. A body route
    now answers 415 ``unsupported_media_type`` for anything but JSON and 422 for a body that is not
    UTF-8, before Powertools parses it. Routes that read a form themselves (the sandbox checkout,
    provider callbacks) declare no body parameter, so this never runs for them.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Powertools' __init__ is unannotated

    def _get_body(self, app: Any) -> dict[str, Any]:
        content_type = (app.current_event.headers.get("content-type") or "").strip().lower()
        if content_type and content_type.split(";", 1)[0].strip() != content_types.APPLICATION_JSON:
            raise UnsupportedMediaType("Send the body as application/json.")
        try:
            return super()._get_body(app)
        except UnicodeDecodeError as exc:
            raise InvalidRequest("The request body is not UTF-8 encoded JSON.") from exc


def build_resolver() -> APIGatewayRestResolver:
    app = PaymentsResolver(enable_validation=True)
    # Powertools keeps its request validation middleware here and runs it before any other.
    app._request_validation_middleware = _JsonBodyValidation()

    @app.exception_handler(PaymentError)
    def _payment_error(exc: PaymentError) -> Response[str]:
        logger.info("request refused", extra={"error_code": exc.code, "status_code": exc.status})
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    def _validation_error(exc: RequestValidationError) -> Response[str]:
        errors = list(exc.errors())
        # Log where the request failed validation, never the submitted values (they may be secrets).
        logger.info("request failed validation", extra={"locations": [e.get("loc") for e in errors[:10]]})
        return error_response(422, "validation_error", _describe_validation(errors))

    # Powertools' own refusal of a content type (e.g. "APPLICATION/JSON", which it matches
    # case-sensitively), in the contract's shape rather than Powertools' {"statusCode", "detail"}.
    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_content_type(_exc: RequestUnsupportedContentType) -> Response[str]:
        return error_response(415, UnsupportedMediaType.code, "Send the body as application/json.")

    @app.not_found
    def _not_found(_exc: Exception) -> Response[str]:
        return error_response(404, "not_found", "No such route.")

    return app


@dataclass(frozen=True)
class Caller:
    """Who is calling: what the JWT authorizer put in ``requestContext.authorizer``."""

    user_id: str
    session_id: str
    # The session's signing-key version as the authorizer read it in this request (None when the
    # authorizer did not pass it: the session is then read where the key is needed).
    key_version: str | None = None


def caller(app: APIGatewayRestResolver) -> Caller:
    """The authenticated caller of the current request; raises Unauthorized when the request did not
    come through the authorizer (API Gateway never lets such a request reach a Bearer route)."""
    context = app.current_event.request_context.authorizer.get_context()
    user_id, session_id = context.get("user_id"), context.get("session_id")
    if not isinstance(user_id, str) or not user_id or not isinstance(session_id, str) or not session_id:
        raise Unauthorized("A valid Bearer access token is required.", code="unauthorized")
    key_version = context.get("key_version")
    return Caller(
        user_id=user_id,
        session_id=session_id,
        key_version=key_version if isinstance(key_version, str) and key_version else None,
    )


def raw_body(event: Any) -> bytes:
    """The request body exactly as sent (what request and webhook signatures are computed over)."""
    import base64

    body = event.get("body") if isinstance(event, dict) else getattr(event, "body", None)
    encoded = event.get("isBase64Encoded") if isinstance(event, dict) else getattr(event, "is_base64_encoded", False)
    if body is None:
        return b""
    return base64.b64decode(body) if encoded else str(body).encode("utf-8")


def public_base_url(event: dict[str, Any]) -> str:
    """The base URL clients reached this API on (for links the API hands out, like a checkout page).

    ``https://<domain>/<stage>`` on an execute-api domain; the Host header (with http on loopback)
    on the local stack.
    """
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    host = headers.get("host") or str(context.get("domainName") or "")
    loopback = host.startswith(("127.0.0.1", "localhost", "[::1]"))
    scheme = headers.get("x-forwarded-proto") or ("http" if loopback else "https")
    stage = context.get("stage")
    prefix = f"/{stage}" if stage and host.endswith(".amazonaws.com") else ""
    return f"{scheme}://{host}{prefix}"

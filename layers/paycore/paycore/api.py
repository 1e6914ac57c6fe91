"""The REST resolver every API function uses, with the one error map of the API contract.

``build_resolver()`` returns a Powertools ``APIGatewayRestResolver`` with validation on, whose
exception handlers answer every domain error, validation failure and unknown route as
``{"error": {"code", "message"}}`` with the contract's status. Unexpected exceptions are not
caught here: they fail the invocation, API Gateway answers its DEFAULT_5XX response in the same
shape, and the function's Errors alarm sees them.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from paycore.errors import PaymentError
from paycore.observability import logger


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


def build_resolver() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

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

    @app.not_found
    def _not_found(_exc: Exception) -> Response[str]:
        return error_response(404, "not_found", "No such route.")

    return app

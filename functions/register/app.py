"""POST /auth/register, /auth/verify and /auth/verification-code: sign-up with a verification code."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.api import build_resolver
from paycore.identity import registration
from paycore.observability import logger, metrics, tracer
from paycore.schemas.identity import RegisterIn, RegisterOut, ResendIn, ResendOut, VerifyIn, VerifyOut

app = build_resolver()


@app.post("/auth/register", status_code=201, summary="Register a user", tags=["identity"])
@tracer.capture_method(capture_response=False)
def register(request: RegisterIn) -> RegisterOut:
    return registration.register(request)


@app.post("/auth/verify", summary="Verify a registration with the code sent", tags=["identity"])
@tracer.capture_method(capture_response=False)
def verify(request: VerifyIn) -> VerifyOut:
    return registration.verify(request.username, request.code)


@app.post("/auth/verification-code", status_code=202, summary="Send a new verification code", tags=["identity"])
@tracer.capture_method(capture_response=False)
def resend(request: ResendIn) -> ResendOut:
    return registration.resend(request.username)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

"""POST /auth/login, /auth/refresh, /auth/logout and GET /.well-known/jwks.json: sessions and keys."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from paycore.api import build_resolver, caller
from paycore.identity import keys, login, sessions
from paycore.observability import logger, metrics, tracer
from paycore.schemas.identity import Jwks, LoginIn, RefreshIn, TokenOut

app = build_resolver()


@app.post("/auth/login", summary="Log in: access token, refresh token and signing key", tags=["identity"])
@tracer.capture_method(capture_response=False)
def log_in(request: LoginIn) -> TokenOut:
    return login.login(request.username, request.password)


@app.post("/auth/refresh", summary="Exchange a refresh token (each works once)", tags=["identity"])
@tracer.capture_method(capture_response=False)
def refresh(request: RefreshIn) -> TokenOut:
    return sessions.refresh(request.refresh_token)


@app.post("/auth/logout", status_code=204, summary="End the caller's session", tags=["identity"])
@tracer.capture_method(capture_response=False)
def log_out() -> Response[None]:
    sessions.end_session(caller(app).session_id)
    return Response(status_code=204)


@app.get(
    "/.well-known/jwks.json",
    summary="The public keys of access tokens and order signatures",
    tags=["identity"],
    cache_control="public, max-age=300",
)
@tracer.capture_method(capture_response=False)
def jwks() -> Jwks:
    return Jwks.model_validate(keys.jwks())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

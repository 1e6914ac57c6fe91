"""The local stack's own routes under ``/_local`` (never in template.yaml, never deployed).

* ``GET /_local``: where everything is (the same as the start-up summary), as JSON; answers once
  the stack is ready, so it is also the readiness check.
* ``GET /_local/outbox[?to=<address, phone or topic>]``: emails, SMS and SNS topic messages sent
  so far, newest last (see outbox.py).
* ``GET /_local/schedules``: the scheduled functions.
* ``POST /_local/schedules/{function}``: run a scheduled function now with the JSON body as its
  input and answer its result as JSON. ``{function}`` is the function's folder (``stats``) or
  logical id.
* ``GET /openapi.json``: the API's OpenAPI 3.1 document (infra/openapi.py, built on first use),
  with this stack as its server.
* ``GET /docs``: Swagger UI on that document, with the Swagger UI assets that Powertools ships in
  its package (served from ``/docs/``), so the page works offline.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.error import URLError

from infra.local.events import HttpRequest
from infra.local.gateway import HttpResponse, json_response
from infra.local.outbox import read_outbox
from infra.local.runtime import FunctionError
from infra.local.schedules import ScheduleRunner, UnknownSchedule

log = logging.getLogger("infra.local")

_SCHEDULE = re.compile(r"^/_local/schedules/([^/]+)$")
# Swagger UI's assets as Powertools ships them (aws_lambda_powertools/event_handler/openapi/swagger_ui).
_SWAGGER_ASSETS = {
    "/docs/swagger-ui-bundle.min.js": ("swagger-ui-bundle.min.js", "application/javascript"),
    "/docs/swagger-ui.min.css": ("swagger-ui.min.css", "text/css"),
}


def _swagger_dir() -> Path:
    import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_ui

    return Path(swagger_ui.__file__).parent


def _error(status: int, code: str, message: str) -> HttpResponse:
    return json_response(status, {"error": {"code": code, "message": message}})


class DevRoutes:
    def __init__(
        self,
        *,
        info: Callable[[], dict[str, Any]],
        moto_url: str,
        schedules: ScheduleRunner,
        outbox: Callable[..., dict[str, Any]] = read_outbox,
        openapi: Callable[[str], dict[str, Any]] | None = None,
    ):
        self.info = info
        self.moto_url = moto_url
        self.schedules = schedules
        self.outbox = outbox
        self.openapi = openapi  # server URL -> the OpenAPI document
        self._documents: dict[str, str] = {}
        self._documents_lock = threading.Lock()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/") or "/"
        if path == "/_local" and request.method == "GET":
            return json_response(200, self.info())
        if path == "/_local/outbox" and request.method == "GET":
            return self._outbox(request)
        if path == "/_local/schedules" and request.method == "GET":
            return json_response(200, {"schedules": sorted(self.schedules.names())})
        match = _SCHEDULE.match(path)
        if match and request.method == "POST":
            return self._run_schedule(match.group(1), request.body)
        if request.method == "GET" and self.openapi is not None:
            if path == "/openapi.json" or (path == "/docs" and dict(request.query_values()).get("format") == "json"):
                return HttpResponse(200, [("Content-Type", "application/json")], self._document(request).encode())
            if path == "/docs":
                return self._swagger_ui(request)
            asset = _SWAGGER_ASSETS.get(path)
            if asset is not None:
                return HttpResponse(200, [("Content-Type", asset[1])], (_swagger_dir() / asset[0]).read_bytes())
        return _error(404, "not_found", f"No local route {request.method} {request.path}.")

    def _document(self, request: HttpRequest) -> str:
        server = f"http://{request.host}"
        with self._documents_lock:
            if server not in self._documents and self.openapi is not None:
                self._documents[server] = json.dumps(self.openapi(server), indent=2)
            return self._documents[server]

    def _swagger_ui(self, request: HttpRequest) -> HttpResponse:
        from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

        spec = self._document(request).replace("</", "<\\/")  # keep "</script>" in a value from ending the tag
        page = generate_swagger_html(
            spec, "/docs/swagger-ui-bundle.min.js", "/docs/swagger-ui.min.css", "/docs", oauth2_config=None
        )
        return HttpResponse(200, [("Content-Type", "text/html; charset=utf-8")], page.encode())

    def _outbox(self, request: HttpRequest) -> HttpResponse:
        to = dict(request.query_values()).get("to") or None
        try:
            return json_response(200, self.outbox(self.moto_url, to=to))
        except (URLError, OSError, ValueError) as exc:
            log.error("reading the outbox from %s failed: %s", self.moto_url, exc)
            return _error(502, "moto_unreachable", "The moto server did not answer; see the local stack's console.")

    def _run_schedule(self, name: str, body: bytes) -> HttpResponse:
        try:
            invocation = self.schedules.run(name, body)
        except UnknownSchedule:
            known = ", ".join(sorted(self.schedules.names())) or "none"
            return _error(404, "unknown_schedule", f"No scheduled function {name!r} (scheduled: {known}).")
        except ValueError:
            return _error(422, "invalid_json", "The body must be JSON (or empty for the scheduled event).")
        except FunctionError as exc:
            return _error(
                502, "function_error", f"{exc.function} failed ({exc.kind}); the traceback is on the console."
            )
        try:
            return HttpResponse(200, [("Content-Type", "application/json")], json.dumps(invocation.result).encode())
        except (TypeError, ValueError):
            return _error(502, "function_error", "The function answered something that is not JSON.")

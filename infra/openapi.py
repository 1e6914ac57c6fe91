"""``python -m infra.openapi``: the OpenAPI 3.1 document of the whole API, from the handlers themselves.

Every function of template.yaml that has ``Api`` events is one Powertools resolver (``app`` in its
handler module). Powertools generates each one's OpenAPI schema from the route signatures and
pydantic models (``get_openapi_schema``); this module merges them into one document and adds what
no single handler knows:

* the routes are checked against template.yaml: a route the template declares that the handler
  does not serve (or the reverse) fails the build, so the document is what API Gateway deploys;
* component schemas that two handlers name alike but define differently are renamed
  ``<function>.<Name>`` (and their ``$ref``s rewritten); identical ones are kept once;
* security comes from the template: a route guarded by a Lambda authorizer requires that
  authorizer's scheme (a TOKEN authorizer on ``Authorization: Bearer`` is an HTTP bearer scheme);
  a route whose handler declares ``security=paycore.api.SIGNED`` also requires ``X-Signature``;
  the callback route documents each provider's signature header;
* every 4xx/5xx response carries the contract's error body (``{"error": {"code", "message"}}``):
  Powertools' default 422 (``HTTPValidationError``, a FastAPI-style ``detail`` list) is not what
  ``paycore.api`` answers, so it is replaced by the error body, as are 401/429 and the ``4XX``/``5XX``
  ranges of the gateway's own responses.

``python -m infra.openapi`` writes docs/openapi.json; ``--check`` exits 1 when that copy is stale.
The local stack serves the same document at ``/openapi.json`` and Swagger UI at ``/docs``.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from infra.local.template import ROOT, TEMPLATE, Resolver, functions, load_template, routes

DOCUMENT = ROOT / "docs" / "openapi.json"
SCHEMA_REF = "#/components/schemas/"
ERROR_SCHEMA = "ErrorBody"
# Powertools' own validation-error models, which paycore.api never answers with (Powertools adds
# ResponseValidationError to every schema even where no route declares it).
_POWERTOOLS_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
_NUMERIC_KEYWORDS = frozenset({"maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf"})

LOCAL_SERVER = {"url": "http://127.0.0.1:3000", "description": "The local stack (`make run`)."}
DEPLOYED_SERVER = {
    "url": "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
    "description": "A deployed stage (the stack's ApiUrl output).",
    "variables": {
        "api_id": {"default": "api-id", "description": "The REST API id"},
        "region": {"default": "us-east-1"},
        "stage": {"default": "dev"},
    },
}

# The signature header(s) of each payment provider's callbacks (docs/providers.md). Alipay signs
# inside the form body (`sign`, `sign_type`), so it has no header. A test holds this table against
# the provider registry, so a new provider cannot be left out.
CALLBACK_SIGNATURE_HEADERS: dict[str, tuple[str, ...]] = {
    "stripe": ("Stripe-Signature",),
    "alipay": (),
    "wechatpay": ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial"),
    "sandbox": ("Sandbox-Signature",),
}
CALLBACK_PATH = "/callbacks/{provider}"


class DocumentError(ValueError):
    """The handlers and template.yaml disagree, or two handlers clash."""


# ---------------------------------------------------------------------- inputs
def _import_environment() -> None:
    """Handler modules are imported, never invoked: only Powertools needs a quiet setting or two."""
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ServerlessPayments")


def _version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def security_schemes(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The security schemes: one per Lambda authorizer of the template, and the request signature."""
    from infra.local.template import authorizers
    from paycore.api import SIGNATURE_HEADER, SIGNATURE_SCHEME

    schemes: dict[str, dict[str, Any]] = {}
    for name, spec in sorted(authorizers(template).items()):
        bearer = spec.payload_type == "TOKEN" and spec.header.lower() == "authorization"
        if bearer and (spec.validation_expression or "^Bearer").startswith("^Bearer"):
            schemes[name] = {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": f"An access token from POST /auth/login, checked by the {name} Lambda authorizer "
                "(EdDSA, 15 minutes; docs/identity.md).",
            }
        else:
            header = spec.header if spec.payload_type == "TOKEN" else (spec.headers or ("Authorization",))[0]
            schemes[name] = {
                "type": "apiKey",
                "in": "header",
                "name": header,
                "description": f"Checked by the {name} Lambda authorizer.",
            }
    schemes[SIGNATURE_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": SIGNATURE_HEADER,
        "description": "`t=<unix seconds>,n=<nonce>,v1=<hex HMAC-SHA256(key, message)>` where key is the "
        "base64url-decoded `signing_key` from login and message is "
        '`"<t>\\n<n>\\n<METHOD>\\n<path>\\n<hex SHA-256 of the raw body>"`; 300 s tolerance, each nonce '
        "once per session (docs/orders.md).",
    }
    for provider, headers in CALLBACK_SIGNATURE_HEADERS.items():
        if headers:
            schemes[f"{provider}Signature"] = {
                "type": "apiKey",
                "in": "header",
                "name": headers[0],
                "description": f"{provider}'s own webhook signature"
                + (f" (with {', '.join(headers[1:])})" if headers[1:] else "")
                + ", verified over the raw body (docs/providers.md).",
            }
    return schemes


def _powertools_schema(app: Any, schemes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

    model: OpenAPI = app.get_openapi_schema(title="part", version="0", security_schemes=schemes)
    return _integral_bounds(json.loads(model.model_dump_json(by_alias=True, exclude_none=True)))


def _integral_bounds(node: Any) -> Any:
    """Powertools' Schema model types numeric bounds as float (``le=10**15`` comes out 1e15): write
    integral bounds as integers, as the pydantic models declare them."""
    if isinstance(node, dict):
        return {
            k: int(v) if k in _NUMERIC_KEYWORDS and isinstance(v, float) and v.is_integer() else _integral_bounds(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_integral_bounds(v) for v in node]
    return node


def _error_schemas() -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema

    from paycore.schemas.common import ErrorBody

    _, top = models_json_schema([(ErrorBody, "serialization")], ref_template=SCHEMA_REF + "{model}")
    return dict(top["$defs"])


# ---------------------------------------------------------------------- merging
def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF):
                name = value[len(SCHEMA_REF) :]
                out[key] = SCHEMA_REF + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def merge_components(parts: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Merge each part's ``components.schemas``: identical definitions once, clashing ones renamed
    ``<part>.<Name>``. Returns the merged schemas and each part with its ``$ref``s rewritten."""
    definitions: dict[str, dict[str, str]] = {}  # name -> part -> canonical JSON
    for part, doc in parts.items():
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            definitions.setdefault(name, {})[part] = json.dumps(schema, sort_keys=True)
    clashing = {name for name, by_part in definitions.items() if len(set(by_part.values())) > 1}
    merged: dict[str, Any] = {}
    rewritten: dict[str, dict[str, Any]] = {}
    for part, doc in parts.items():
        renames = {name: f"{part}.{name}" for name in clashing if part in definitions[name]}
        doc = _rewrite_refs(doc, renames)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            merged[renames.get(name, name)] = schema
        rewritten[part] = doc
    return merged, rewritten


def _error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": SCHEMA_REF + ERROR_SCHEMA}}},
    }
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}


def _contract_responses(operation: dict[str, Any], *, authenticated: bool) -> None:
    """Every error response in the contract's shape (docs: ARCHITECTURE.md, API contract)."""
    responses = operation.setdefault("responses", {})
    for status in ("204", "304"):
        responses.get(status, {}).pop("content", None)  # no content, by definition (RFC 9110 15.3.5)
    declared_422 = responses.get("422", {})
    if "HTTPValidationError" in json.dumps(declared_422) or not declared_422:
        responses["422"] = _error_response("The request is malformed (`validation_error`); nothing changed.")
    if authenticated:
        responses.setdefault(
            "401",
            _error_response(
                "Unauthenticated: the Bearer token (or the X-Signature, where required) is missing or invalid.",
                {"WWW-Authenticate": {"schema": {"type": "string"}}},
            ),
        )
    throttled = _error_response("Throttled (the stage's rate limit, or a per-user limit).", _RETRY_AFTER)
    responses.setdefault("429", throttled)
    responses.setdefault("4XX", _error_response("Refused; `error.code` says why (e.g. not_found, invalid_state)."))
    responses.setdefault("5XX", _error_response("The service failed (`internal_error`); try again later."))
    for status, response in responses.items():
        if status[0] in "45" and status not in ("4XX", "5XX"):
            for media in response.get("content", {}).values():
                if media.get("schema", {}).get("$ref") != SCHEMA_REF + ERROR_SCHEMA:
                    raise DocumentError(
                        f"{operation.get('operationId')}: response {status} does not use the contract's error body"
                    )


def _callback_headers(operation: dict[str, Any], schemes: dict[str, dict[str, Any]]) -> None:
    """The provider signature requirements of POST /callbacks/{provider} (alternatives; Alipay's is in the body)."""
    alternatives: list[dict[str, list[str]]] = [
        {f"{provider}Signature": []} for provider, headers in CALLBACK_SIGNATURE_HEADERS.items() if headers
    ]
    alternatives.append({})  # alipay: signed inside the form body
    operation["security"] = alternatives
    for provider, headers in CALLBACK_SIGNATURE_HEADERS.items():
        for header in headers[1:]:
            operation.setdefault("parameters", []).append(
                {
                    "name": header,
                    "in": "header",
                    "required": False,
                    "description": f"Sent by {provider} with its signature.",
                    "schema": {"type": "string"},
                }
            )
    operation["description"] = (
        operation.get("description", "")
        + " Verified with the provider's own signature over the raw body: "
        + "; ".join(
            f"{provider}: {', '.join(h) if h else 'the form fields sign and sign_type'}"
            for provider, h in CALLBACK_SIGNATURE_HEADERS.items()
        )
        + ". A callback that fails verification is answered 400 `invalid_callback` and changes nothing."
    ).strip()
    missing = [name for alt in alternatives for name in alt if name not in schemes]
    if missing:
        raise DocumentError(f"callback security schemes missing: {missing}")


def _resource_links(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """OpenAPI links from a creating call to the calls on what it created: ``POST /orders`` answers
    201 with an ``order_id``, which ``/orders/{order_id}...`` take. Clients (and schemathesis'
    stateful phase) follow them to chain calls."""
    for path, item in paths.items():
        created = item.get("post", {}).get("responses", {}).get("201", {})
        ref = created.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
        fields = set(schemas.get(ref.removeprefix(SCHEMA_REF), {}).get("properties", {}))
        links: dict[str, Any] = {}
        for other, other_item in sorted(paths.items()):
            if not other.startswith(path.rstrip("/") + "/{"):
                continue
            params = [seg[1:-1] for seg in other.split("/") if seg.startswith("{")]
            if not params or not set(params) <= fields:
                continue
            for operation in other_item.values():
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {name: f"$response.body#/{name}" for name in params},
                }
        if links:
            created["links"] = links


# ---------------------------------------------------------------------- the document
def _api_functions(template: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    specs = functions(template, Resolver(template), base_dir=base_dir)
    with_routes = {r.function for r in routes(template)}
    return {lid: spec for lid, spec in specs.items() if lid in with_routes}


def _check_routes(part: str, template_routes: Iterable[tuple[str, str]], schema: dict[str, Any]) -> None:
    served = {(path, method.upper()) for path, item in schema.get("paths", {}).items() for method in item}
    declared = set(template_routes)
    if served != declared:
        raise DocumentError(
            f"{part}: template.yaml routes {sorted(declared - served)} are not served by the handler; "
            f"handler routes {sorted(served - declared)} are not in template.yaml"
        )


def build_document(template_path: Path = TEMPLATE, servers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The merged OpenAPI 3.1 document of every API function of ``template_path``."""
    _import_environment()
    template = load_template(template_path)
    schemes = security_schemes(template)
    api_routes = routes(template)
    parts: dict[str, dict[str, Any]] = {}
    for lid, spec in sorted(_api_functions(template, template_path.parent).items()):
        app = importlib.import_module(spec.module).app
        schema = _powertools_schema(app, schemes)
        _check_routes(spec.name, ((r.path, r.method) for r in api_routes if r.function == lid), schema)
        parts[spec.name] = schema

    schemas, parts = merge_components(parts)
    for name in _POWERTOOLS_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    for name, schema in _error_schemas().items():
        if schemas.setdefault(name, schema) != schema:
            raise DocumentError(f"a handler defines {name} unlike paycore.schemas.common")

    guarded = {(r.path, r.method.lower()): r.authorizer_name for r in api_routes if r.authorizer_name}
    paths: dict[str, Any] = {}
    operation_ids: set[str] = set()
    for doc in parts.values():
        for path, item in doc.get("paths", {}).items():
            for method, operation in item.items():
                operation = copy.deepcopy(operation)
                if operation["operationId"] in operation_ids:
                    raise DocumentError(f"operationId {operation['operationId']} is used twice")
                operation_ids.add(operation["operationId"])
                authorizer = guarded.get((path, method))
                requirements = operation.get("security") or []
                if authorizer:
                    requirements = [{authorizer: [], **req} for req in requirements] or [{authorizer: []}]
                    operation["security"] = requirements
                if path == CALLBACK_PATH:
                    _callback_headers(operation, schemes)
                _contract_responses(operation, authenticated=bool(requirements) and path != CALLBACK_PATH)
                paths.setdefault(path, {})[method] = operation

    _resource_links(paths, schemas)
    tags = sorted({tag for item in paths.values() for op in item.values() for tag in op.get("tags", [])})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "serverless-payments API",
            "version": _version(),
            "description": " ".join(str(template.get("Description", "")).split())
            + " Generated by `python -m infra.openapi` from the handlers' Powertools schemas and template.yaml;"
            ' errors are always `{"error": {"code", "message"}}`.',
        },
        "servers": servers if servers is not None else [LOCAL_SERVER, DEPLOYED_SERVER],
        "tags": [{"name": t} for t in tags],
        "paths": {path: paths[path] for path in sorted(paths)},
        "components": {
            "schemas": {name: schemas[name] for name in sorted(schemas)},
            "securitySchemes": schemes,
        },
    }


def validate(document: dict[str, Any]) -> None:
    """openapi-spec-validator's OpenAPI 3.1 checks; raises on an invalid document."""
    from openapi_spec_validator import validate as spec_validate

    spec_validate(document)


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.openapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DOCUMENT, help="where to write it (default: docs/openapi.json)")
    parser.add_argument("--check", action="store_true", help="exit 1 when --out differs from a fresh build")
    args = parser.parse_args(argv)
    document = build_document()
    validate(document)
    text = render(document)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run `make openapi` and commit it", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({len(document['paths'])} paths)")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(document['paths'])} paths, {len(document['components']['schemas'])} schemas)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

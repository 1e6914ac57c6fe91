"""The local stack serves the OpenAPI document at /openapi.json and Swagger UI at /docs, offline."""

from __future__ import annotations

import json
import re

import pytest
import requests

from infra.openapi import DOCUMENT

pytestmark = pytest.mark.e2e
TIMEOUT = 10


def test_openapi_json_is_the_committed_document_with_this_stack_as_server(api_url: str) -> None:
    answer = requests.get(f"{api_url}/openapi.json", timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    served = answer.json()
    committed = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert served["servers"] == [{"url": api_url, "description": "This local stack."}]
    assert {k: v for k, v in served.items() if k != "servers"} == {k: v for k, v in committed.items() if k != "servers"}


def test_docs_is_swagger_ui_on_that_document_with_local_assets(api_url: str) -> None:
    page = requests.get(f"{api_url}/docs", timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "SwaggerUIBundle" in page.text
    assert '"openapi": "3.1.0"' in page.text
    assets = re.findall(r"(?:src|href)='(/docs/[^']+)'", page.text)
    assert sorted(assets) == ["/docs/swagger-ui-bundle.min.js", "/docs/swagger-ui.min.css"]
    for asset in assets:  # served from the pinned Powertools package, no CDN
        answer = requests.get(f"{api_url}{asset}", timeout=TIMEOUT)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 100_000, asset
    # Swagger UI asks for ?format=json to offer the document for download.
    assert requests.get(f"{api_url}/docs?format=json", timeout=TIMEOUT).json()["openapi"] == "3.1.0"


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "PROPFIND"])
def test_any_method_no_route_declares_is_403_like_api_gateway_not_a_server_error(api_url: str, method: str) -> None:
    answer = requests.request(method, f"{api_url}/channels", timeout=TIMEOUT)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "gateway_rejected"

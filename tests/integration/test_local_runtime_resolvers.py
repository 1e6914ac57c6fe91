"""Two functions built on Powertools resolvers never see each other's request in the local stack.

Powertools keeps the current event on the resolver's class (``BaseRouter.current_event``), so two
resolver functions running at once in one process would read each other's event; the runtime
runs them one at a time (infra/local/runtime.py). The fixture function sleeps inside its route,
so without that lock the other invocation overwrites the event it then reads.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from infra.local.runtime import FunctionRuntime
from infra.local.template import FunctionSpec
from tests.fixtures.localstack import TEMPLATE

pytestmark = pytest.mark.integration

ROUTER = TEMPLATE.parent / "functions" / "router"


def _event(name: str) -> dict[str, Any]:
    return {
        "resource": "/{name}",
        "path": f"/{name}",
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"name": name},
        "stageVariables": None,
        "requestContext": {"resourcePath": "/{name}", "httpMethod": "GET", "stage": "test", "path": f"/test/{name}"},
        "body": None,
        "isBase64Encoded": False,
    }


def test_two_resolver_functions_invoked_at_once_each_read_their_own_event() -> None:
    specs = {
        lid: FunctionSpec(
            logical_id=lid,
            name="router",
            handler="app.lambda_handler",
            environment={},
            events={},
            physical_name=lid,
            timeout=10,
            code_dir=ROUTER,
        )
        for lid in ("RouterA", "RouterB")
    }
    with FunctionRuntime(specs, region="us-east-1", endpoint_url=None) as runtime:
        calls = [("RouterA", "alpha"), ("RouterB", "beta")] * 3
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            answers = list(pool.map(lambda call: runtime.invoke(call[0], _event(call[1])).result, calls))
    seen = [json.loads(answer["body"]) for answer in answers]
    assert [(s["route"], s["seen_path"]) for s in seen] == [(name, f"/{name}") for _, name in calls]

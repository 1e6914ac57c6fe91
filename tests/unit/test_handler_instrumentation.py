"""Every handler logs with the Lambda context (and API Gateway's request id as correlation id where
API Gateway calls it), flushes its metrics, and is traced without capturing responses; no tracer
decorator anywhere captures a response and nothing logs whole events (they carry credentials)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from infra.local.template import Resolver, functions, load_template
from tests.helpers import ROOT

pytestmark = pytest.mark.unit

SOURCES = sorted([*(ROOT / "functions").glob("*/app.py"), *(ROOT / "layers" / "paycore" / "paycore").rglob("*.py")])


def _decorators(path: Path, name: str) -> dict[str, ast.expr]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    [handler] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    return {ast.unparse(d.func if isinstance(d, ast.Call) else d): d for d in handler.decorator_list}


def _keywords(node: ast.expr) -> dict[str, str]:
    return {k.arg or "": ast.unparse(k.value) for k in node.keywords} if isinstance(node, ast.Call) else {}


def _specs() -> list:
    template = load_template()
    return list(functions(template, Resolver(template=template, parameters={"Stage": "t"})).values())


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: s.logical_id)
def test_every_handler_is_logged_measured_and_traced(spec) -> None:  # type: ignore[no-untyped-def]
    path = ROOT / "functions" / spec.name / "app.py"
    found = _decorators(path, spec.handler_function)
    assert {"logger.inject_lambda_context", "metrics.log_metrics", "tracer.capture_lambda_handler"} <= set(found)
    assert _keywords(found["tracer.capture_lambda_handler"]).get("capture_response") == "False"
    api = any(event["Type"] == "Api" for event in spec.events.values())
    correlation = _keywords(found["logger.inject_lambda_context"]).get("correlation_id_path")
    assert correlation == ("correlation_paths.API_GATEWAY_REST" if api else None), spec.logical_id


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_tracer_decorator_captures_a_response_and_nothing_logs_events(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = ast.unparse(node.func)
        keywords = _keywords(node)
        if called.startswith("tracer.capture_"):
            assert keywords.get("capture_response") == "False", f"{path.name}:{node.lineno} {called}"
        assert keywords.get("log_event") not in ("True", "1"), f"{path.name}:{node.lineno} logs the whole event"
    for node in ast.walk(tree):
        # a bare @tracer.capture_method (no call) captures responses by default
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                assert not ast.unparse(decorator).startswith("tracer.capture_") or isinstance(decorator, ast.Call), (
                    f"{path.name}:{decorator.lineno} bare {ast.unparse(decorator)} captures responses"
                )

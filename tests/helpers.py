"""Helpers shared by the suites: sample events, a Lambda context, and the template's names."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


def load_event(function: str, case: str) -> dict[str, Any]:
    """A sample event from events/<function>/<case>.json (the ones `sam local invoke -e` uses)."""
    return copy.deepcopy(json.loads((EVENTS / function / f"{case}.json").read_text(encoding="utf-8")))


@dataclass
class FakeContext:
    """The attributes of a LambdaContext that Powertools reads."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None


class CapturedLogs:
    """The JSON lines the paycore logger wrote while a test ran (the ``captured_logs`` fixture)."""

    def __init__(self) -> None:
        import io

        self.stream = io.StringIO()

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line.startswith("{")]

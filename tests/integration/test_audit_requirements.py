"""The pip-audit gate, run with the real pip-audit against an OSV service on 127.0.0.1.

pip-audit takes `--osv-url`, so these runs go through the same code path as `make lint` does
against api.osv.dev; only the address differs. `--no-deps --disable-pip` on a pinned file keeps
pip (and the package index) out of it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from infra import audit_requirements
from infra.audit_requirements import UNREACHABLE

pytestmark = pytest.mark.integration

PINNED = "requests==2.34.2\nidna==3.10\n"

# The shape of an OSV record, as OSV's API answers POST /v1/query (schema 1.x). The id is made up.
ADVISORY = {
    "vulns": [
        {
            "id": "GHSA-test-0000-0000",
            "aliases": ["CVE-2099-0001"],
            "summary": "A made-up advisory for the gate's test",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "requests"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.99.0"}]}],
                }
            ],
        }
    ]
}


class FakeOsv:
    """Answers every query with `answers.get(package, {})` (or `status`), and records what it was asked."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.status = 200
        self.queries: list[dict[str, Any]] = []
        osv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                osv.queries.append(query)
                body = json.dumps(osv.answers.get(query["package"]["name"], {})).encode()
                self.send_response(osv.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/query"


@pytest.fixture
def osv() -> Iterator[FakeOsv]:
    fake = FakeOsv()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(PINNED, encoding="utf-8")
    return path


def _gate(requirements: Path, osv_url: str, tmp_path: Path) -> int:
    extra = ["--osv-url", osv_url, "--no-deps", "--disable-pip", "--cache-dir", str(tmp_path / "cache")]
    return audit_requirements.main(["-r", str(requirements), "--", *extra])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_clean_when_the_service_knows_no_vulnerability(
    osv: FakeOsv, requirements: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _gate(requirements, osv.url, tmp_path) == 0

    out = capsys.readouterr().out
    assert "no known vulnerabilities in 2 packages" in out
    assert UNREACHABLE not in out
    assert sorted((q["package"]["name"], q["version"]) for q in osv.queries) == [
        ("idna", "3.10"),
        ("requests", "2.34.2"),
    ]


def test_a_finding_fails_the_build_and_is_printed(
    osv: FakeOsv, requirements: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    osv.answers["requests"] = ADVISORY

    assert _gate(requirements, osv.url, tmp_path) == 1

    out = capsys.readouterr().out
    assert "found 1 known vulnerabilities in 1 packages" in out
    finding = next(line for line in out.splitlines() if line.strip().startswith("requests 2.34.2:"))
    assert "GHSA-test-0000-0000" in finding
    assert "CVE-2099-0001" in finding
    assert "(fixed in: 2.99.0)" in finding


def test_an_unreachable_service_is_reported_as_not_checked_without_failing(
    requirements: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1/query"

    assert _gate(requirements, url, tmp_path) == 0

    out = capsys.readouterr().out
    assert out.startswith(UNREACHABLE)
    assert "Connection refused" in out


def test_a_service_that_is_down_is_not_checked_either(
    osv: FakeOsv, requirements: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    osv.status = 503

    assert _gate(requirements, osv.url, tmp_path) == 0

    assert capsys.readouterr().out.startswith(UNREACHABLE)


def test_a_service_that_rejects_the_query_fails_the_build(
    osv: FakeOsv, requirements: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    osv.status = 400

    assert _gate(requirements, osv.url, tmp_path) == 2

    out = capsys.readouterr().out
    assert "pip-audit failed" in out
    assert UNREACHABLE not in out

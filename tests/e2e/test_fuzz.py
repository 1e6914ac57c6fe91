"""schemathesis against the local stack, from the OpenAPI document it serves (docs/reliability.md).

Two fresh accounts are registered, verified and logged in over HTTP first: the main session's
Bearer token goes on every request (``-H``), its signing key to the hooks that sign the
``X-Signature`` routes (tests/e2e/schemathesis_hooks.py), and the second session is the one
``POST /auth/logout`` ends. Every check of tests/e2e/schemathesis.toml runs (not_a_server_error,
response_schema_conformance, negative_data_rejection and ignored_auth among them), with a fixed
seed, no example database, and a bounded number of examples per operation; the run must find
nothing. Its summary line is printed (``pytest -s``) and the JUnit report kept in the test's
temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.identity_client import new_account
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e

SEED = 20261125
MAX_EXAMPLES = 25  # per operation and phase; the whole run stays within a few minutes on 2 cores
RUN_TIMEOUT = 900  # seconds: a hung run fails the test instead of CI


def test_schemathesis_finds_no_failure(api_url: str, tmp_path: Path) -> None:
    main, logout = new_account(api_url), new_account(api_url)
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"signing_key": main.tokens["signing_key"]}))
    auth_file.chmod(0o600)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "paycore"), str(ROOT)]),
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "FUZZ_AUTH_FILE": str(auth_file),
        "FUZZ_LOGOUT_TOKEN": logout.tokens["access_token"],
    }
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(ROOT / "tests" / "e2e" / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{api_url}/openapi.json",
        "--url",
        api_url,
        "--header",
        f"Authorization: Bearer {main.tokens['access_token']}",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    output = run.stdout + run.stderr
    summary = [line for line in output.splitlines() if "generated" in line or (" in " in line and "=====" in line)]
    print("\n".join(summary))
    assert run.returncode == 0, output[-12000:]

"""The e2e suite's local stack: ``python -m infra.local`` started once per session on free ports.

The stack runs as a subprocess exactly as ``make run`` starts it (another port, so it does not
clash with one a developer has running). It writes its URLs to a ready file once it serves;
the fixture waits for that (with a timeout, showing the stack's output if it never comes), and
at the end stops it with SIGTERM (then SIGKILL if it hangs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.helpers import ROOT

START_TIMEOUT = 60.0  # seconds; the stack is ready in a few on this machine


@dataclass
class LocalStackProcess:
    process: subprocess.Popen[bytes]
    log: Path
    api_url: str
    moto_url: str

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_local_stack(workdir: Path, *extra: str) -> LocalStackProcess:
    """Start ``python -m infra.local`` on free ports and wait until it serves."""
    ready = workdir / "ready.json"
    log = workdir / "stack.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "paycore"), str(ROOT)])
    env["PYTHONUNBUFFERED"] = "1"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infra.local",
                "--port",
                "0",
                "--moto-port",
                "0",
                "--ready-file",
                str(ready),
                *extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(5)
            pytest.fail(f"the local stack did not start (exit {process.returncode}):\n{log.read_text()}")
        time.sleep(0.05)
    urls = json.loads(ready.read_text())
    stack = LocalStackProcess(process, log, urls["api_url"], urls["moto_url"])
    answer = requests.get(f"{stack.api_url}/_local", timeout=10)
    if answer.status_code != 200 or answer.json().get("status") != "ready":
        stack.stop(signal.SIGKILL)
        pytest.fail(f"the local stack answered {answer.status_code} on /_local:\n{stack.output()}")
    return stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    stack = start_local_stack(tmp_path_factory.mktemp("local-stack"))
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def api_url(local_stack: LocalStackProcess) -> str:
    return local_stack.api_url

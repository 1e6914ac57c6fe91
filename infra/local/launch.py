"""Start ``python -m infra.local`` as a child process on free ports and wait until it serves.

Used by the e2e suite (``tests/e2e/conftest.py``) and by the transaction simulator
(``bench/simulator``), which both need a stack of their own next to any that a developer runs on
port 3000. The child writes its URLs to a ready file once it serves; :func:`start` waits for that
and for ``GET /_local`` to answer ``ready``, and :meth:`LocalStackProcess.stop` ends it with
SIGTERM (then SIGKILL if it hangs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess  # nosec B404  # starts this interpreter on infra.local, never a shell
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from infra.local.template import ROOT

START_TIMEOUT = 60.0  # seconds; the stack is ready in a few on this machine (docs/local-stack.md)


class StackDidNotStart(RuntimeError):
    """The child exited, or did not serve within the timeout; the message carries its output."""


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


def start(workdir: Path, *extra: str, timeout: float = START_TIMEOUT) -> LocalStackProcess:
    """Start the stack on free ports (``extra`` are more ``python -m infra.local`` arguments)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / "ready.json"
    ready.unlink(missing_ok=True)
    log = workdir / "stack.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "paycore"), str(ROOT)])
    env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, "-m", "infra.local", "--port", "0", "--moto-port", "0", "--ready-file", str(ready)]
    with log.open("wb") as sink:
        process = subprocess.Popen(  # nosec B603  # this interpreter, fixed module, our own arguments
            [*argv, *extra],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(5)
            raise StackDidNotStart(f"the local stack did not start (exit {process.returncode}):\n{log.read_text()}")
        time.sleep(0.05)
    urls = json.loads(ready.read_text())
    stack = LocalStackProcess(process, log, urls["api_url"], urls["moto_url"])
    status = _status(f"{stack.api_url}/_local")
    if status != "ready":
        stack.stop(signal.SIGKILL)
        raise StackDidNotStart(f"the local stack answered {status!r} on /_local:\n{stack.output()}")
    return stack


def _status(url: str) -> str:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"not a local stack URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310  # nosec B310  # scheme checked above
            return str(json.loads(answer.read()).get("status"))
    except (OSError, ValueError) as exc:
        return f"no answer ({exc})"

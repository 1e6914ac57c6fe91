"""The e2e suite's local stack: ``python -m infra.local`` started once per session on free ports.

The stack runs as a subprocess exactly as ``make run`` starts it (another port, so it does not
clash with one a developer has running). It writes its URLs to a ready file once it serves;
the fixture waits for that (with a timeout, showing the stack's output if it never comes), and
at the end stops it with SIGTERM (then SIGKILL if it hangs).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local import launch
from infra.local.launch import LocalStackProcess

__all__ = ["LocalStackProcess", "start_local_stack"]


def start_local_stack(workdir: Path, *extra: str) -> LocalStackProcess:
    """Start ``python -m infra.local`` on free ports and wait until it serves (infra/local/launch.py)."""
    try:
        return launch.start(workdir, *extra)
    except launch.StackDidNotStart as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    stack = start_local_stack(tmp_path_factory.mktemp("local-stack"))
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def api_url(local_stack: LocalStackProcess) -> str:
    return local_stack.api_url

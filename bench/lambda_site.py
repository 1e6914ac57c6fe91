"""A Lambda-like file layout for cold starts: /opt/python (the layer) and /var/task (a function).

``sam build`` builds the layer for arm64 (binary wheels this x86_64 machine cannot load), so the
bench installs the same pinned layer requirements for this machine into ``.bench/lambda/opt/python``
with the runtime's interpreter (python3.13, found as ``make build`` finds it; the current
interpreter otherwise), then copies the current ``paycore`` source next to them and each
function's folder into ``.bench/lambda/task/<function>``.

Two layouts of the layer, side by side:

- ``bytecode=False``: no bytecode, as ``sam build``'s python3.13 build method packages a layer
  (checked then: ``find .aws-sam/build -name '*.pyc'`` found none), so a cold start compiles every
  module it imports outside the standard library, as it does on Lambda, where /opt and /var/task
  are read-only;
- ``bytecode=True``: the same files plus what ``layers/paycore/Makefile`` (the layer's
  ``BuildMethod: makefile``) adds: every module compiled by python3.13 into unchecked-hash pycs.

The functions' own folders carry no bytecode in either (their build method is unchanged). The floor
imports boto3 from the same layer, so it gets the same treatment as the functions in each layout.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, WORK

REQUIREMENTS = ROOT / "layers" / "paycore" / "requirements.txt"
SITE = WORK / "lambda"


@dataclass(frozen=True)
class LambdaSite:
    python: str  # the interpreter that plays the runtime
    version: str  # its version, e.g. 3.13.0
    opt: Path  # what Lambda mounts as /opt/python
    bytecode: bool = False  # the layer carries unchecked-hash pycs (layers/paycore/Makefile)

    def task(self, function_dir: str) -> Path:
        return SITE / "task" / function_dir


def _runtime_python() -> str:
    found = subprocess.run(
        [str(ROOT / "infra" / "find-python313.sh")], capture_output=True, text=True, check=False
    ).stdout.strip()
    return found or sys.executable


def _version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _install(python: str, target: Path) -> None:
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        args = [str(uv), "pip", "install", "--quiet", "--python", python, "--target", str(target)]
    else:  # pip compiles bytecode unless told not to; the layer that sam build makes has none
        args = [python, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(target)]
    subprocess.run([*args, "-r", str(REQUIREMENTS)], check=True)


def _copy(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def compile_tree(python: str, folder: Path) -> None:
    """What layers/paycore/Makefile does to the layer: unchecked-hash pycs made by the runtime's python."""
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(folder)], check=True
    )


def prepare(function_dirs: list[str], *, bytecode: bool = False) -> LambdaSite:
    """Install the layer's requirements once per requirements file and interpreter; copy the
    current paycore and function sources every time (and compile the layer when ``bytecode``)."""
    python = _runtime_python()
    version = _version(python)
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + python.encode() + version.encode()).hexdigest()[:12]
    deps = SITE / f"deps-{key}"
    if not (deps / ".complete").exists():
        if deps.exists():
            shutil.rmtree(deps)
        _install(python, deps / "python")
        for cache in (deps / "python").rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        (deps / ".complete").touch()
    if bytecode:
        compiled = SITE / f"deps-{key}-pyc"
        if not (compiled / ".complete").exists():
            if compiled.exists():
                shutil.rmtree(compiled)
            shutil.copytree(deps / "python", compiled / "python")
            compile_tree(python, compiled / "python")
            (compiled / ".complete").touch()
        deps = compiled
    opt = deps / "python"
    _copy(ROOT / "layers" / "paycore" / "paycore", opt / "paycore")
    if bytecode:
        compile_tree(python, opt / "paycore")
    for name in function_dirs:
        _copy(ROOT / "functions" / name, SITE / "task" / name)
    return LambdaSite(python=python, version=version, opt=opt, bytecode=bytecode)

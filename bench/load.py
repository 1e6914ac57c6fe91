"""Section 6 (for reference): throughput and latency of the local stack under load, over loopback.

    PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only load

With the transaction simulator (bench/simulator, docs/simulator.md) present, its ``smoke``
scenario (``busy-day`` in the full run) drives the whole payment flow against a fresh local stack
and its per-endpoint latencies are reported. Without it, a small generator of this module does:
it starts ``python -m infra.local`` on free ports, makes a few accounts over HTTP (the code from
``/_local/outbox``), then keeps ``concurrency`` clients calling ``GET /channels`` (gateway,
authorizer, channels function) and ``GET /.well-known/jwks.json`` (no authorizer) for a bounded
count and time, at 1 and at 4 clients. The local stack runs every function in one process on
moto: these figures describe the development stack on this machine, not AWS.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import ROOT, Section, command, percentile, table

START_TIMEOUT = 90.0
PASSWORD = "correct horse battery staple"  # noqa: S105  # throwaway accounts of a bench run


# ---------------------------------------------------------------- the local stack
class LocalStack:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.api_url = ""

    def __enter__(self) -> LocalStack:
        ready = self.workdir / "ready.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "paycore"), str(ROOT)])}
        with (self.workdir / "stack.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "infra.local", "--port", "0", "--moto-port", "0", "--ready-file", str(ready)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("the local stack did not start:\n" + (self.workdir / "stack.log").read_text())
            time.sleep(0.1)
        self.api_url = json.loads(ready.read_text())["api_url"].rstrip("/")
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"the bench only talks to 127.0.0.1, not {url}")
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310  # nosec B310  # loopback only, checked above
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None


def _account(api: str, n: int) -> str:
    """Register, verify and log in a fresh account over HTTP; returns its access token."""
    suffix = f"{os.getpid()}x{n}"
    phone = f"+86137{n:04d}{os.getpid() % 10000:04d}"
    user = {
        "username": f"load{suffix}",
        "password": PASSWORD,
        "email": f"load{suffix}@example.com",
        "phone_number": phone,
    }
    status, _ = _http("POST", f"{api}/auth/register", user)
    if status != 201:
        raise RuntimeError(f"register answered {status}")
    _, outbox = _http("GET", f"{api}/_local/outbox?to={urllib.request.quote(phone)}")
    code = re.search(r"\b(\d{6})\b", outbox["sms"][-1]["message"])
    if code is None:
        raise RuntimeError("no verification code in the outbox")
    _http("POST", f"{api}/auth/verify", {"username": user["username"], "code": code.group(1)})
    status, tokens = _http("POST", f"{api}/auth/login", {"username": user["username"], "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"login answered {status}")
    return str(tokens["access_token"])


def _drive(api: str, tokens: list[str], concurrency: int, requests_each: int, seconds: float) -> dict[str, Any]:
    routes = [
        ("GET /channels", "/channels?amount=1000&currency=CNY", True),
        ("GET /.well-known/jwks.json", "/.well-known/jwks.json", False),
    ]
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(i: int) -> None:
        token = tokens[i % len(tokens)]
        for k in range(requests_each):
            if time.monotonic() > stop_at:
                return
            name, path, bearer = routes[k % len(routes)]
            started = time.perf_counter()
            status, _ = _http("GET", f"{api}{path}", headers={"Authorization": f"Bearer {token}"} if bearer else {})
            took = time.perf_counter() - started
            with lock:
                latencies[name].append(took)
                if status != 200:
                    errors[name] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    done = sum(len(v) for v in latencies.values())
    return {
        "concurrency": concurrency,
        "requests": done,
        "seconds": elapsed,
        "throughput": done / elapsed,
        "routes": {
            name: {
                "count": len(v),
                "errors": errors[name],
                "p50_ms": percentile(v, 50) * 1000,
                "p90_ms": percentile(v, 90) * 1000,
                "p99_ms": percentile(v, 99) * 1000,
            }
            for name, v in sorted(latencies.items())
        },
    }


def own_load(quick: bool) -> dict[str, Any]:
    per_client = 60 if quick else 250
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, LocalStack(Path(tmp)) as stack:
        tokens = [_account(stack.api_url, n) for n in range(4)]
        _drive(stack.api_url, tokens, 1, 10, 30)  # warm every function once
        runs = [_drive(stack.api_url, tokens, c, per_client, 60 if quick else 120) for c in (1, 4)]
    return {"source": "bench.load", "runs": runs}


# ---------------------------------------------------------------- the simulator, when it is there
def simulator_load(quick: bool) -> dict[str, Any]:
    scenario = "smoke" if quick else "busy-day"
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        out = Path(tmp) / "report.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "paycore"), str(ROOT)])}
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.simulator",
                "--scenario",
                scenario,
                "--new-stack",
                "--no-progress",
                "--concurrency",
                "8",
                "--json",
                str(out),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if not out.exists():
            raise RuntimeError(
                f"the simulator wrote no report (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        document = json.loads(out.read_text())
    return {
        "source": "bench.simulator",
        "scenario": scenario,
        "seconds": elapsed,
        "exit": done.returncode,
        "document": document,
    }


def measure(quick: bool) -> dict[str, Any]:
    if importlib.util.find_spec("bench.simulator") is not None:
        return simulator_load(quick)
    return own_load(quick)


def report(figures: dict[str, Any]) -> str:
    if figures["source"] == "bench.simulator":
        doc = figures["document"]
        rows = doc.get("latency", [])
        calls = int(doc.get("requests") or sum(int(r.get("count", 0)) for r in rows))
        traffic = float(doc.get("traffic_seconds") or figures["seconds"])
        held = "held" if doc.get("ok") else "did NOT hold (see the simulator's report)"
        lines = [
            f"The transaction simulator's `{figures['scenario']}` scenario (docs/simulator.md) against a fresh "
            f"local stack: {doc.get('users', '?')} users, concurrency {doc.get('concurrency', '?')}, "
            f"{doc.get('planned_orders', '?')} orders planned; every invariant {held}. {calls} requests in "
            f"{traffic:.0f} s of traffic: **{calls / traffic:.1f} requests/s**; the whole run, stack start and "
            f"checks included, took {figures['seconds']:.0f} s.",
            "",
            table(
                ["endpoint", "calls", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                [
                    [
                        r.get("endpoint", "?"),
                        r.get("count", 0),
                        r.get("p50_ms"),
                        r.get("p95_ms"),
                        r.get("p99_ms"),
                        r.get("max_ms", ""),
                    ]
                    for r in rows
                ],
                align="lrrrrr",
            ),
        ]
        rerun = (
            "PYTHONPATH=layers/paycore:. .venv/bin/python -m bench.simulator "
            f"--scenario {figures['scenario']} --new-stack --concurrency 8"
        )
    else:
        lines = [
            "A small closed-loop generator (bench/load.py; the transaction simulator was not on this branch): "
            "clients call the two routes in turn against a fresh local stack over loopback.",
            "",
        ]
        body = []
        for run in figures["runs"]:
            for name, r in run["routes"].items():
                body.append(
                    [
                        run["concurrency"],
                        name,
                        r["count"],
                        r["errors"],
                        f"{r['p50_ms']:.1f}",
                        f"{r['p90_ms']:.1f}",
                        f"{r['p99_ms']:.1f}",
                        f"{run['throughput']:.1f}",
                    ]
                )
        lines.append(
            table(
                ["clients", "route", "calls", "errors", "p50 ms", "p90 ms", "p99 ms", "calls/s (all routes)"],
                body,
                align="rlrrrrrr",
            )
        )
        one, four = figures["runs"][0]["throughput"], figures["runs"][-1]["throughput"]
        lines += ["", f"Throughput with 4 clients ÷ with 1: {four / one:.2f} (2 cores; every function in one process)."]
        rerun = "PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only load"
    lines += [
        "",
        "The local stack serves every function from one Python process on moto server (docs/local-stack.md): "
        "these figures are the development stack's, for reference; they say nothing of Lambda's concurrency.",
        "",
        "Reproduce:",
        "",
        command(rerun),
    ]
    return "\n".join(lines)


def run(quick: bool) -> Section:
    figures = measure(quick)
    return Section("load", "6. For reference: the local stack under load", report(figures), figures)

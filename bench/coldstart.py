"""Section 1: cold start of every function in template.yaml against a boto3 floor, and package sizes.

    PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only coldstart [--runs 11]

Each sample is a fresh interpreter (the runtime's python3.13, ``-I -B``) on a Lambda-like layout
(bench/lambda_site.py; the layer with and without its bytecode, interleaved) with the function's
environment from template.yaml, the variables the Lambda runtime sets (tracing active, as
``Tracing: Active`` deploys it) and fake credentials; the only network a child could reach is
127.0.0.1 (every proxy variable points at a closed port).

- floor: ``import boto3`` and ``boto3.client("dynamodb")``;
- function: import the handler module (Lambda's init phase), create one DynamoDB client through
  ``paycore.aws.client`` (the floor's work, which every real first call pays), then one invocation
  of a path that needs no AWS call: an unknown route (404) for API functions, a request without a
  token (Deny) for authorizers; scheduled and queue functions have none.

Rounds interleave the floor and every function in a shuffled order, so a slow spell of this shared
machine hits all of them; the figure is the median over rounds of (function / floor of that round).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import subprocess
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import ROOT, Section, command, median, table
from bench.lambda_site import LambdaSite, prepare
from infra.local.template import FunctionSpec, Resolver, authorizers, functions, load_template

TARGET = 1.25
FLOOR = "floor"
# The layer with the bytecode layers/paycore/Makefile compiles (what `make build` now ships), and the
# layer without any (what sam build's python3.13 build method shipped before): bench/lambda_site.py.
LAYOUTS = ("bytecode", "source")

# Runs in each child with ``-I -B -c``: argv = task root, layer dir, handler ("" for the floor), event JSON.
CHILD = r"""
import sys, time
t0 = time.perf_counter()
task, opt, handler, event = sys.argv[1:5]
sys.path[:] = [task, opt] + [p for p in sys.path if p and "site-packages" not in p]
import json
if not handler:
    import boto3
    t1 = time.perf_counter()
    boto3.client("dynamodb")
    t2 = t3 = time.perf_counter()
else:
    import importlib
    module, _, attr = handler.rpartition(".")
    function = getattr(importlib.import_module(module), attr)
    t1 = time.perf_counter()
    from paycore.aws import client
    client("dynamodb")
    t2 = time.perf_counter()
    if event:
        class Context:
            function_name = "bench"
            memory_limit_in_mb = 512
            invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
            aws_request_id = "00000000-0000-4000-8000-000000000000"
            def get_remaining_time_in_millis(self):
                return 10000
        function(json.loads(event), Context())
    t3 = time.perf_counter()
sys.stdout.flush()
sys.stderr.write("\nBENCH " + json.dumps({"import": t1 - t0, "client": t2 - t1, "call": t3 - t2}) + "\n")
"""

# The floor's work, then one piece of the functions' stack, timed as a whole like the floor: what each
# piece adds to a cold start on its own. Pieces share dependencies (wrapt, typing_extensions), so
# they overlap; "all of them" is what they add together. argv = layer dir, the piece's code.
COMPONENT_CHILD = r"""
import sys, time
t0 = time.perf_counter()
opt, code = sys.argv[1:3]
sys.path[:] = [opt] + [p for p in sys.path if p and "site-packages" not in p]
import json
import boto3
boto3.client("dynamodb")
exec(code, {"__name__": "bench_component"})
t1 = time.perf_counter()
sys.stderr.write("\nBENCH " + json.dumps({"import": t1 - t0, "client": 0.0, "call": 0.0}) + "\n")
"""

# What paycore.observability creates at init, as it creates it; the REST resolver as paycore.api
# builds it (validation on); one pydantic model (the first class built pulls in pydantic's schema
# machinery); the PynamoDB model layer; paycore's settings module (eleven frozen dataclasses).
COMPONENTS: dict[str, str] = {
    "Powertools Logger + Metrics": "from aws_lambda_powertools import Logger, Metrics\nLogger(); Metrics()",
    "Powertools Tracer (X-Ray SDK, botocore and PynamoDB patched)": (
        "from aws_lambda_powertools import Tracer\nTracer(patch_modules=('botocore', 'pynamodb'))"
    ),
    "PynamoDB models": "import pynamodb.models, pynamodb.attributes",
    "pydantic + one model": "import pydantic\nclass M(pydantic.BaseModel):\n    a: int\n    b: str",
    "Powertools REST resolver, no validation": (
        "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\nAPIGatewayRestResolver()"
    ),
    "Powertools REST resolver with validation": (
        "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
        "APIGatewayRestResolver(enable_validation=True)"
    ),
    "paycore.config": "import paycore.config",
}
# What every function of the design needs (logs, metrics, traces, the tables), and that plus what every
# API function adds (the resolver; it builds pydantic models for its routes).
_BASE = (
    "Powertools Logger + Metrics",
    "Powertools Tracer (X-Ray SDK, botocore and PynamoDB patched)",
    "PynamoDB models",
)
COMPONENTS["every function: Logger + Metrics + Tracer + PynamoDB"] = "\n".join(COMPONENTS[k] for k in _BASE)
COMPONENTS["every API function: the above + REST resolver + pydantic model"] = "\n".join(
    COMPONENTS[k] for k in (*_BASE, "Powertools REST resolver with validation", "pydantic + one model")
)

_TRACE_ID = "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1"


def _api_event() -> dict[str, Any]:
    """An API Gateway REST proxy event for a route no function serves: the resolver answers 404."""
    return {
        "resource": "/{proxy+}",
        "path": "/__bench/cold-start",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": "__bench/cold-start"},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": "GET",
            "path": "/bench/__bench/cold-start",
            "stage": "bench",
            "requestId": "00000000-0000-4000-8000-000000000000",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"},
            "accountId": "123456789012",
            "apiId": "bench",
        },
        "body": None,
        "isBase64Encoded": False,
    }


def cheap_event(spec: FunctionSpec, authorizer_functions: set[str]) -> tuple[str, dict[str, Any] | None]:
    """The first call a cold start measures, and what it is (generic over the template)."""
    if any(e.get("Type") == "Api" for e in spec.events.values()):
        return "unknown route (404)", _api_event()
    if spec.logical_id in authorizer_functions:
        return "no token (Deny)", {"type": "TOKEN", "methodArn": "arn:aws:execute-api:us-east-1:123456789012:x/y"}
    return "none (no AWS-free path)", None


def child_env(spec: FunctionSpec | None, site: LambdaSite) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        # Nothing leaves the machine: a request that slipped through would meet a closed local port.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        # What the Lambda runtime sets (Tracing: Active): Powertools' Tracer patches and traces.
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{'.'.join(site.version.split('.')[:2])}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.physical_name if spec else "floor",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory if spec else 512),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "LAMBDA_TASK_ROOT": str(site.task(spec.name) if spec else site.opt),
        "_HANDLER": spec.handler if spec else "",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_X_AMZN_TRACE_ID": _TRACE_ID,
    }
    if spec is not None:
        env.update({k: v for k, v in spec.environment.items() if v != ""})
    return env


def _spawn(site: LambdaSite, spec: FunctionSpec | None, argv: list[str], what: str) -> dict[str, float]:
    """One fresh child (``-I -B -c`` argv) in ``spec``'s environment: its BENCH timings in ms."""
    started = time.perf_counter()
    done = subprocess.run(
        [site.python, "-I", "-B", "-c", *argv],
        env=child_env(spec, site),
        capture_output=True,
        text=True,
        check=False,
        cwd=str(site.opt.parent),
        timeout=120,
    )
    wall = time.perf_counter() - started
    match = re.search(r"^BENCH (.*)$", done.stderr, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"cold start of {what} failed:\n{done.stderr[-3000:]}")
    timings = {k: v * 1000 for k, v in json.loads(match.group(1)).items()}
    timings["total"] = timings["import"] + timings["client"] + timings["call"]
    timings["wall"] = wall * 1000
    return timings


def _run_child(site: LambdaSite, spec: FunctionSpec | None, event: dict[str, Any] | None) -> dict[str, float]:
    task = str(site.task(spec.name)) if spec else str(site.opt)
    handler = spec.handler if spec else ""
    argv = [CHILD, task, str(site.opt), handler, json.dumps(event) if event else ""]
    return _spawn(site, spec, argv, spec.logical_id if spec else FLOOR)


def _run_component(site: LambdaSite, spec: FunctionSpec, code: str) -> dict[str, float]:
    """A floor child plus one piece of the stack (COMPONENT_CHILD), in an environment like ``spec``'s."""
    return _spawn(site, spec, [COMPONENT_CHILD, str(site.opt), code], "a piece of the stack")


def _import_costs(site: LambdaSite, spec: FunctionSpec | None) -> dict[str, float]:
    """Self time (ms) per top-level package in one ``-X importtime`` run of the child."""
    done = subprocess.run(
        [
            site.python,
            "-I",
            "-B",
            "-X",
            "importtime",
            "-c",
            CHILD,
            str(site.task(spec.name)) if spec else "",
            str(site.opt),
            spec.handler if spec else "",
            "",
        ],
        env=child_env(spec, site),
        capture_output=True,
        text=True,
        check=True,
        cwd=str(site.opt.parent),
        timeout=120,
    )
    costs: dict[str, float] = defaultdict(float)
    for match in re.finditer(r"^import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)$", done.stderr, re.MULTILINE):
        costs[match.group(2).split(".")[0]] += int(match.group(1)) / 1000
    return dict(costs)


def measure(runs: int, seed: int = 7) -> dict[str, Any]:
    template = load_template()
    specs = functions(template, Resolver(template=template, parameters={"Stage": "bench"}))
    authorizer_functions = {a.function for a in authorizers(template).values()}
    dirs = sorted({s.name for s in specs.values()})
    sites = {"bytecode": prepare(dirs, bytecode=True), "source": prepare(dirs)}
    events = {lid: cheap_event(spec, authorizer_functions) for lid, spec in specs.items()}
    names = [FLOOR, *sorted(specs)]
    keys = [(layout, name) for layout in LAYOUTS for name in names]
    # the pieces of the stack, each on the floor's work, in the same rounds (deployed layout only)
    pieces = [("component", name) for name in COMPONENTS]
    samples: dict[tuple[str, str], list[dict[str, float]]] = {k: [] for k in keys + pieces}
    piece_env = specs[sorted(specs)[0]]
    rng = random.Random(seed)
    for round_no in range(runs + 1):  # round 0 warms the file cache and is not kept
        order = keys + pieces
        rng.shuffle(order)
        for layout, name in order:
            spec = specs.get(name)
            if layout == "component":
                timings = _run_component(sites["bytecode"], piece_env, COMPONENTS[name])
            else:
                timings = _run_child(sites[layout], spec, events[name][1] if spec else None)
            if round_no:
                samples[(layout, name)].append(timings)
    site = sites["bytecode"]  # where the import time goes, as the deployed layer loads
    floor_costs = _import_costs(site, None)
    extra: dict[str, list[tuple[str, float]]] = {}
    for lid, spec in specs.items():
        costs = _import_costs(site, spec)
        beyond = {pkg: ms for pkg, ms in costs.items() if pkg not in floor_costs}
        extra[lid] = sorted(beyond.items(), key=lambda kv: -kv[1])[:6]
    rows: dict[str, dict[str, dict[str, float]]] = {layout: {} for layout in LAYOUTS}
    for layout, name in keys:
        per_round, floor = samples[(layout, name)], samples[(layout, FLOOR)]
        row = {key: median(t[key] for t in per_round) for key in ("import", "client", "call", "total", "wall")}
        row["ratio"] = median(t["total"] / f["total"] for t, f in zip(per_round, floor, strict=True))
        row["wall_ratio"] = median(t["wall"] / f["wall"] for t, f in zip(per_round, floor, strict=True))
        # the same function with and without the layer's bytecode, in the same rounds
        source = samples[("source", name)]
        row["vs_source"] = median(t["total"] / u["total"] for t, u in zip(per_round, source, strict=True))
        rows[layout][name] = row
    floor_rounds = samples[("bytecode", FLOOR)]
    components = {
        name: {
            "added_ms": median(t["total"] - f["total"] for t, f in zip(samples[key], floor_rounds, strict=True)),
            "ratio": median(t["total"] / f["total"] for t, f in zip(samples[key], floor_rounds, strict=True)),
        }
        for key in pieces
        for name in [key[1]]
    }
    return {
        "components": components,
        "python": site.python,
        "python_version": site.version,
        "runs": runs,
        "rows": rows,
        "first_call": {lid: events[lid][0] for lid in specs},
        "import_costs": extra,
    }


# ---------------------------------------------------------------- package sizes after sam build
def _zipped_size(folder: Path) -> tuple[int, int, int]:
    """(files, bytes unzipped, bytes as a deflated zip), the way the deployment package is zipped."""
    buffer = io.BytesIO()
    files = raw = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder))
            files += 1
            raw += path.stat().st_size
    return files, raw, buffer.tell()


def package_sizes() -> dict[str, Any] | None:
    build = ROOT / ".aws-sam" / "build"
    if not build.exists():
        return None
    sizes: dict[str, Any] = {}
    for folder in sorted(p for p in build.iterdir() if p.is_dir()):
        files, raw, zipped = _zipped_size(folder)
        sizes[folder.name] = {"files": files, "bytes": raw, "zipped": zipped}
    layer = build / "PaycoreLayer" / "python"
    if layer.exists():
        per_package: dict[str, int] = defaultdict(int)
        for path in layer.rglob("*"):
            if path.is_file():
                top = path.relative_to(layer).parts[0]
                per_package[re.sub(r"-[\d.]+(\.post\d+)?\.dist-info$", "", top)] += path.stat().st_size
        sizes["_layer_top"] = sorted(per_package.items(), key=lambda kv: -kv[1])[:8]
    sizes["_pyc_files"] = sum(1 for _ in build.rglob("*.pyc"))
    return sizes


# ---------------------------------------------------------------- report
def _mb(value: int) -> str:
    return f"{value / 1_000_000:.2f} MB"


def report(figures: dict[str, Any], sizes: dict[str, Any] | None) -> str:
    rows, source = figures["rows"]["bytecode"], figures["rows"]["source"]
    floor = rows[FLOOR]
    out = [
        f"Fresh `{Path(figures['python']).name}` ({figures['python_version']}) processes on a Lambda-like layout, "
        "tracing on, as deployed. Median of "
        f"{figures['runs']} interleaved rounds; **ratio** = median over rounds of function ÷ floor in the same round "
        f"(target ≤ {TARGET}). Times are this machine's, loaded by other work: read the ratios.",
        "",
        '- floor: `import boto3` + `boto3.client("dynamodb")`, boto3 taken from the same layer as the functions.',
        "- function: import the handler module + one DynamoDB client through `paycore.aws.client` + one call of a "
        "path that needs no AWS (first call column).",
        "- two layer layouts, every child of both interleaved in the same rounds: **with bytecode** (the layer as "
        "`make build` now builds it: layers/paycore/Makefile compiles every module with python3.13 into "
        "unchecked-hash pycs) and **source only** (as `sam build`'s python3.13 build method shipped it: no pyc, "
        "so every cold start compiled every module; the function folders carry none in either). The floor gets "
        "the same layout as the functions in each, so each ratio compares like with like. Whether Lambda's own "
        "boto3 in /var/runtime carries bytecode is not something this machine can check; a floor function "
        "without a layer would use that one.",
        "",
        "With the layer's bytecode:",
        "",
        table(
            ["function", "import ms", "client ms", "first call", "call ms", "total ms", "ratio", "process ratio", ""],
            [
                [FLOOR, floor["import"], floor["client"], "—", 0.0, floor["total"], "1.00", "1.00", ""],
                *[
                    [
                        lid,
                        r["import"],
                        r["client"],
                        figures["first_call"][lid],
                        r["call"],
                        r["total"],
                        f"{r['ratio']:.2f}",
                        f"{r['wall_ratio']:.2f}",
                        "ok" if r["ratio"] <= TARGET else "over",
                    ]
                    for lid, r in sorted(rows.items())
                    if lid != FLOOR
                ],
            ],
            align="lrrlrrrrl",
        ),
        "",
        "process ratio: the same comparison on the whole child process as the parent saw it (interpreter start "
        "and exit included).",
        "",
        "Source only (the layer as it was built before), and what the bytecode saves each child:",
        "",
        table(
            ["function", "total ms, source only", "ratio to its floor, source only", "with bytecode ÷ source only"],
            [
                [lid, source[lid]["total"], f"{source[lid]['ratio']:.2f}", f"{rows[lid]['vs_source']:.2f}"]
                for lid in [FLOOR, *sorted(k for k in rows if k != FLOOR)]
            ],
            align="lrrr",
        ),
        "",
        "Where a function's import time goes beyond the floor's packages (self time per top-level package, one "
        "`-X importtime` run of the import alone, with the layer's bytecode, ms):",
        "",
        table(
            ["function", "largest imports the floor does not make"],
            [
                [lid, ", ".join(f"{pkg} {ms:.0f}" for pkg, ms in costs) or "—"]
                for lid, costs in sorted(figures["import_costs"].items())
            ],
            align="ll",
        ),
    ]
    budget = (TARGET - 1) * floor["total"]
    components = figures.get("components", {})
    if components:
        out += [
            "",
            "What each piece of the stack adds to a cold start on its own: a child that does the floor's work and "
            "then only that piece, in the same rounds as the table above (median over rounds of child - floor, and "
            f"child / floor). The target leaves **{budget:.0f} ms** ({TARGET}x the floor's {floor['total']:.0f} ms) "
            "for everything a function adds:",
            "",
            table(
                ["piece", "adds ms", "ratio to floor"],
                [[name, c["added_ms"], f"{c['ratio']:.2f}"] for name, c in components.items()],
                align="lrr",
            ),
        ]
    out += ["", "### Package sizes after `sam build`", ""]
    if sizes is None:
        out.append("Not measured: `.aws-sam/build` is missing (`make build` needs a python3.13 interpreter).")
    else:
        out.append(
            table(
                ["artifact", "files", "unzipped", "zipped"],
                [[name, s["files"], _mb(s["bytes"]), _mb(s["zipped"])] for name, s in sizes.items() if name[0] != "_"],
                align="lrrr",
            )
        )
        top = ", ".join(f"{name} {_mb(size)}" for name, size in sizes.get("_layer_top", []))
        out += [
            "",
            f"Largest packages in the layer (unzipped): {top}. Bytecode files in the build: {sizes['_pyc_files']}. "
            "Lambda's quota is 250 MB unzipped for a function and all its layers "
            "(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).",
        ]
    out += [
        "",
        "Reproduce:",
        "",
        command("make build && PYTHONPATH=layers/paycore:. .venv/bin/python -m bench --only coldstart"),
    ]
    return "\n".join(out)


def run(quick: bool, runs: int | None = None) -> Section:
    figures = measure(runs or (5 if quick else 10))
    sizes = package_sizes()
    figures["sizes"] = sizes
    return Section("coldstart", "1. Cold start and package size", report(figures, sizes), figures)


if __name__ == "__main__":
    print(report(measure(3), package_sizes()))

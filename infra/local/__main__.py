"""``python -m infra.local``: the Docker-free local stack (what ``make run`` starts).

``python -m infra.local env-vars > env.json`` writes the per-function environment for
``sam local invoke/start-api --env-vars`` against the same moto server (see docs/local-stack.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path

from infra.local.template import ROOT, TEMPLATE, load_template

IMPORT_PATH = [ROOT / "layers" / "paycore", ROOT]  # what Lambda mounts (/opt/python) and the code root


def _ensure_import_path(argv: list[str]) -> None:
    """Functions import ``paycore`` (the layer) and ``functions.<name>.app``: when the layer is not
    importable, start again with PYTHONPATH naming both, as the Lambda runtime's path would."""
    if importlib.util.find_spec("paycore") is not None:
        return
    if os.environ.get("_INFRA_LOCAL_REEXEC"):
        sys.exit(f"cannot import paycore from {IMPORT_PATH[0]}")
    env = dict(os.environ, _INFRA_LOCAL_REEXEC="1")
    env["PYTHONPATH"] = os.pathsep.join([*map(str, IMPORT_PATH), *filter(None, [env.get("PYTHONPATH")])])
    os.execve(sys.executable, [sys.executable, "-m", "infra.local", *argv], env)  # noqa: S606  # nosec B606  # same interpreter, fixed argv


def _stage(value: str) -> str:
    pattern = load_template(TEMPLATE)["Parameters"]["Stage"].get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, value):
        raise argparse.ArgumentTypeError(f"{value!r} does not match the template's Stage pattern {pattern}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", type=_stage, default="local", help="stage name in resource names (default: local)")
    parser.add_argument("--region", default="us-east-1", help="region the stack answers as (default: us-east-1)")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help=argparse.SUPPRESS)


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local",
        description="Run template.yaml's API on this machine without Docker: moto server, the template's "
        "resources and seed data, and a gateway that calls each function's handler in-process.",
        epilog="`python -m infra.local env-vars --help`: the env.json for sam local against this moto server.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="API port; 0 picks a free one (default: 3000)")
    parser.add_argument(
        "--moto-port",
        type=int,
        default=None,
        help="moto server port; 0 picks a free one (default: 5000, or a free one when 5000 is taken)",
    )
    _common(parser)
    parser.add_argument("--fire-schedules", action="store_true", help="also fire rate() schedules on their rate")
    parser.add_argument("--no-seed", action="store_true", help="create the resources but load no seed data")
    parser.add_argument("--ready-file", type=Path, help="write {api_url, moto_url} as JSON here once ready")
    return parser


def _env_vars_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local env-vars",
        description="Print the --env-vars JSON for `sam local invoke/start-api` against the local moto server.",
    )
    _common(parser)
    parser.add_argument(
        "--moto-port", type=int, default=5000, help="the moto port of the running stack (default: 5000)"
    )
    parser.add_argument(
        "--endpoint-url",
        help="the moto URL as the function containers reach it (default: http://127.0.0.1:<moto-port>, "
        "for `--docker-network host`; on Docker Desktop: http://host.docker.internal:<moto-port>)",
    )
    return parser


def _log_to_console() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s local  %(message)s", "%H:%M:%S"))
    log = logging.getLogger("infra.local")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def serve(argv: list[str]) -> int:
    args = _serve_parser().parse_args(argv)
    _ensure_import_path(argv)
    _log_to_console()
    from infra.local.stack import LocalStack, StackOptions

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    stack = LocalStack(
        StackOptions(
            host=args.host,
            port=args.port,
            moto_port=args.moto_port,
            stage=args.stage,
            region=args.region,
            template=args.template.resolve(),
            seed=not args.no_seed,
            fire_schedules=args.fire_schedules,
        )
    )
    try:
        stack.start()
    except OSError as exc:
        print(
            f"the local stack could not start: {exc} (is another one running? try --port/--moto-port)", file=sys.stderr
        )
        return 2
    print(stack.summary(), flush=True)
    if args.ready_file:
        partial = args.ready_file.with_suffix(".partial")
        partial.write_text(json.dumps({"api_url": stack.api_url, "moto_url": stack.moto_url, "pid": os.getpid()}))
        partial.replace(args.ready_file)
    while not stop.wait(0.2):  # a signal does not cut a wait short (PEP 475), so wake often
        pass
    print("\nstopping the local stack...", flush=True)
    stack.stop()
    print("stopped.", flush=True)
    return 0


def env_vars(argv: list[str]) -> int:
    args = _env_vars_parser().parse_args(argv)
    from infra.local.sam_env import dumps
    from infra.local.sam_env import env_vars as build

    endpoint = args.endpoint_url or f"http://127.0.0.1:{args.moto_port}"
    sys.stdout.write(
        dumps(build(endpoint_url=endpoint, stage=args.stage, region=args.region, template_path=args.template.resolve()))
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["env-vars"]:
        return env_vars(argv[1:])
    if argv[:1] == ["serve"]:
        argv = argv[1:]
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())

"""What one authorizer call costs, and what the login's argon2 verify costs, on this machine.

    PYTHONPATH=layers/paycore:. .venv/bin/python -m bench.authorizer [--calls 300]

Prints medians (and 90th percentiles) of:
- the JWT check alone (EdDSA verify and claims, keys in memory);
- a whole authorizer invocation in-process on moto (JWT check + the session's consistent GetItem,
  through botocore and moto: moto's in-process cost stands in for DynamoDB's network round trip,
  which is ~2 to 10 ms in a region and is the real price of not caching);
- one argon2id verify at the login's parameters;
- a cold import of the authorizer's handler module in a fresh interpreter.
Not a test: nothing is asserted (docs/identity.md quotes the figures).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(func: Callable[[], object], calls: int) -> tuple[float, float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


def _cold_import_ms(runs: int = 5) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'layers' / 'paycore'}{os.pathsep}{ROOT}",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    code = (
        "import time; t = time.perf_counter(); import functions.authorizer.app; print((time.perf_counter() - t) * 1000)"
    )
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "ServerlessPayments",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)

    import boto3
    from moto import mock_aws

    from infra.local.provision import provision
    from infra.local.secrets import prepare_identity
    from infra.local.template import functions
    from paycore.config import identity_settings, reset_settings
    from paycore.identity import keys, passwords, sessions, tokens
    from paycore.identity.authorizer import authorize

    with mock_aws():
        session = boto3.session.Session()
        resolver = provision(session, stage="bench")
        prepare_identity(session, resolver)
        for spec in functions(resolver.template, resolver).values():
            os.environ.update(spec.environment)
        reset_settings()
        settings = identity_settings()
        issued = sessions.start_session("bench-user")
        event = {"type": "TOKEN", "authorizationToken": f"Bearer {issued.access_token}", "methodArn": "arn:bench"}
        key_set = keys.current_key_set()
        assert authorize(event)["policyDocument"]["Statement"][0]["Effect"] == "Allow"

        jwt_only = _timed(
            lambda: tokens.decode_access_token(
                issued.access_token, key_set, issuer=settings.issuer, audience=settings.audience
            ),
            args.calls,
        )
        whole = _timed(lambda: authorize(event), args.calls)
        stored = passwords.hash_password("correct horse battery staple")
        argon2 = _timed(lambda: passwords.verify_password(stored, "correct horse battery staple"), 30)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.calls} calls each")
    print(f"JWT check alone (EdDSA verify + claims):        median {jwt_only[0]:.3f} ms, p90 {jwt_only[1]:.3f} ms")
    print(f"authorizer call on in-process moto (+ GetItem): median {whole[0]:.3f} ms, p90 {whole[1]:.3f} ms")
    print(f"argon2id verify (m=19 MiB, t=2, p=1):           median {argon2[0]:.1f} ms, p90 {argon2[1]:.1f} ms")
    print(f"cold import of functions.authorizer.app:        median {_cold_import_ms():.0f} ms (5 fresh interpreters)")


if __name__ == "__main__":
    main()

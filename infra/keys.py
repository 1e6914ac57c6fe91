"""Create and rotate a deployed stage's identity keys in Secrets Manager (``make keys``).

The secrets are the template's ``JwtSigningKeysSecret`` and ``IdentityHmacSecret``, named from
template.yaml for the stage. Runs with the caller's AWS credentials (or ``AWS_ENDPOINT_URL`` for a
local moto); prints kids and versions, never key material. docs/identity.md, "Key rotation",
says when to run which action.

    python -m infra.keys --stage dev init            # first JWT key, active (no-op if there is one)
    python -m infra.keys --stage dev status          # kids (active marked) and HMAC versions
    python -m infra.keys --stage dev add             # new JWT key: published, not signing yet
    python -m infra.keys --stage dev activate KID    # KID signs from now on
    python -m infra.keys --stage dev retire KID      # KID is no longer published nor accepted
    python -m infra.keys --stage dev rotate-hmac     # new HMAC version, current for new sessions
    python -m infra.keys --stage dev retire-hmac V   # drop version V (after its sessions expired)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from infra.local.template import Resolver, load_template


def secret_ids(stage: str) -> dict[str, str]:
    template = load_template()
    resolver = Resolver(template=template, parameters={"Stage": stage})
    return {
        lid: str(resolver.resolve(template["Resources"][lid]["Properties"]["Name"]))
        for lid in ("JwtSigningKeysSecret", "IdentityHmacSecret")
    }


def _read(client: Any, secret_id: str) -> dict[str, Any] | None:
    try:
        raw = client.get_secret_value(SecretId=secret_id).get("SecretString")
    except client.exceptions.ResourceNotFoundException:
        return None  # the secret exists without a value (as CloudFormation creates it)
    value = json.loads(raw) if raw else None
    return value if isinstance(value, dict) and value else None


def _write(client: Any, secret_id: str, value: dict[str, Any]) -> None:
    client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(value))


def _edits() -> dict[str, tuple[Callable[[dict[str, Any], str], dict[str, Any]], str, str]]:
    from paycore.identity import derived, keys

    return {
        "activate": (keys.activate_key, "jwt", "JWT key {arg} is active"),
        "retire": (keys.retire_key, "jwt", "JWT key {arg} retired"),
        "retire-hmac": (derived.remove_version, "hmac", "HMAC version {arg} removed"),
    }


def run(action: str, arg: str | None, *, stage: str, client: Any) -> list[str]:
    """Apply ``action``; returns the lines to print."""
    from paycore.identity import derived, keys

    edits = _edits()
    ids = secret_ids(stage)
    jwt_id, hmac_id = ids["JwtSigningKeysSecret"], ids["IdentityHmacSecret"]
    jwt_value, hmac_value = _read(client, jwt_id), _read(client, hmac_id)
    out: list[str] = []
    if action == "init":
        if not jwt_value or not jwt_value.get("keys"):
            jwt_value, kid = keys.add_key(None, activate=True)
            _write(client, jwt_id, jwt_value)
            out.append(f"created JWT key {kid} (active)")
        if not hmac_value or "current" not in hmac_value:
            hmac_value = derived.new_secret()
            _write(client, hmac_id, hmac_value)
            out.append("created HMAC version v1 (current)")
    elif action == "add":
        jwt_value, kid = keys.add_key(jwt_value, activate=False)
        _write(client, jwt_id, jwt_value)
        out.append(f"added JWT key {kid} (published, not active)")
    elif action in edits:
        if not arg:
            raise SystemExit(f"{action} needs an argument (a kid or a version)")
        edit, which, done = edits[action]
        if which == "jwt":
            jwt_value = edit(jwt_value or {}, arg)
            _write(client, jwt_id, jwt_value)
        else:
            hmac_value = edit(hmac_value or {}, arg)
            _write(client, hmac_id, hmac_value)
        out.append(done.format(arg=arg))
    elif action == "rotate-hmac":
        hmac_value, version = derived.add_version(hmac_value or {})
        _write(client, hmac_id, hmac_value)
        out.append(f"HMAC version {version} is current")
    elif action != "status":
        raise SystemExit(f"unknown action {action!r}")
    active = (jwt_value or {}).get("active")
    kids = [f"{k}{' (active)' if k == active else ''}" for k in ((jwt_value or {}).get("keys") or {})]
    versions = sorted(k for k in (hmac_value or {}) if k != "current")
    out.append(f"{jwt_id}: keys {', '.join(kids) or 'none'}")
    out.append(f"{hmac_id}: versions {', '.join(versions) or 'none'}; current {(hmac_value or {}).get('current')}")
    return out


def main(argv: list[str] | None = None) -> None:
    import boto3

    parser = argparse.ArgumentParser(description="Create and rotate identity keys in a stage's secrets")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", default=None, help="defaults to the AWS configuration's region")
    parser.add_argument("action", choices=["init", "status", "add", "activate", "retire", "rotate-hmac", "retire-hmac"])
    parser.add_argument("arg", nargs="?", help="the kid (activate, retire) or version (retire-hmac)")
    args = parser.parse_args(argv)
    client = boto3.session.Session().client("secretsmanager", region_name=args.region)
    try:
        lines = run(args.action, args.arg, stage=args.stage, client=client)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

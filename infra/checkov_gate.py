"""checkov over template.yaml and over what `sam deploy` makes of it; zero failed checks.

checkov 3.3 reads the SAM resource types itself (it merges Globals into AWS::Serverless::Function/Api
and has ten checks written for them), but it does not run the SAM transform: the IAM role SAM builds
from a function's `Policies`, the Lambda permissions and the API stage are never scanned in
template.yaml. So the gate scans two files in one checkov run:

1. template.yaml as written, so failures point at its lines;
2. the template after the SAM transform (translated offline as `sam validate` does), with each SAM
   resource's suppressions carried to the resources generated from it.

Suppressions live only in a resource's Metadata, each with a one-line reason::

    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_116
            comment: Called synchronously by API Gateway; a DLQ only receives failed asynchronous events.

Comment-style skips (`# checkov:skip=...`) are refused: they would not reach the transformed template.
checkov runs with --skip-download (no call to the vendor's API) from its own virtualenv
(.venv-checkov, infra/requirements-checkov.txt). See docs/security-gates.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess  # nosec B404  # runs a pinned dev tool, never a shell
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
TRANSFORMED = ROOT / ".aws-sam" / "lint" / "template.transformed.json"
CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")
COMMENT_SKIP = re.compile(r"checkov:skip\s*=", re.IGNORECASE)


def _skips(resource: dict[str, Any]) -> Any:
    """A resource's Metadata.checkov.skip ([] when absent; whatever is there otherwise, to be checked)."""
    metadata = resource.get("Metadata") or {}
    checkov = metadata.get("checkov", {}) if isinstance(metadata, dict) else {}
    return checkov.get("skip", []) if isinstance(checkov, dict) else checkov


def suppression_problems(template: dict[str, Any], text: str) -> list[str]:
    """Every suppression is a Metadata entry with a check id and a one-line reason; no comment skips."""
    problems = [
        f"template line {number}: use Metadata.checkov.skip with a comment instead of a checkov:skip comment"
        for number, line in enumerate(text.splitlines(), start=1)
        if COMMENT_SKIP.search(line)
    ]
    for logical_id, resource in (template.get("Resources") or {}).items():
        skips = _skips(resource)
        if not isinstance(skips, list):
            problems.append(f"{logical_id}: Metadata.checkov.skip must be a list of {{id, comment}}")
            continue
        for entry in skips:
            check_id = entry.get("id") if isinstance(entry, dict) else None
            reason = entry.get("comment") if isinstance(entry, dict) else None
            if not isinstance(check_id, str) or not CHECK_ID.match(check_id):
                problems.append(f"{logical_id}: suppression {entry!r} needs an id like CKV_AWS_116")
            elif not isinstance(reason, str) or not reason.strip() or "\n" in reason.strip():
                problems.append(f"{logical_id}: suppression {check_id} needs a one-line comment giving the reason")
    return problems


class _OfflinePolicyLoader:
    """Managed policy names resolve from the map bundled with samtranslator; nothing asks IAM."""

    def load(self) -> dict[str, str]:
        return {}


def transform(template: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
    """The CloudFormation SAM deploys, translated offline the way `sam validate` does it."""
    from samcli.lib.translate.sam_template_validator import SamTemplateValidator
    from samcli.yamlhelper import yaml_parse

    validator = SamTemplateValidator(copy.deepcopy(template), _OfflinePolicyLoader(), region=region)  # type: ignore[arg-type]
    translated: dict[str, Any] = yaml_parse(validator.get_translated_template_if_valid())
    carry_suppressions(template, translated)
    return translated


def carry_suppressions(source: dict[str, Any], translated: dict[str, Any]) -> None:
    """Give each generated resource (ChannelsFunctionRole, PaymentsApiStage, ...) its SAM resource's skips.

    SAM names what it generates after the resource it comes from, so the owner is the SAM resource
    whose logical id is the longest prefix of the generated one.
    """
    sam_ids = sorted(
        (lid for lid, res in source["Resources"].items() if str(res.get("Type", "")).startswith("AWS::Serverless::")),
        key=len,
        reverse=True,
    )
    for logical_id, resource in translated["Resources"].items():
        if logical_id in source["Resources"]:
            continue  # written in template.yaml: a plain resource, or a SAM one (SAM copies its Metadata)
        owner = next((sid for sid in sam_ids if logical_id.startswith(sid)), None)
        if owner is None:
            continue
        inherited = _skips(source["Resources"][owner]) or []
        if inherited:
            checkov = resource.setdefault("Metadata", {}).setdefault("checkov", {})
            checkov["skip"] = [*checkov.get("skip", []), *inherited]


def _reports(raw: str) -> Iterable[dict[str, Any]]:
    data = json.loads(raw)
    return data if isinstance(data, list) else [data]


def verdict(raw_json: str, scanned: list[Path]) -> tuple[int, list[str]]:
    """Exit code and lines to print from checkov's JSON report; parse errors or no resources also fail."""
    lines: list[str] = []
    failed = parsing_errors = resources = passed = skipped = 0
    for report in _reports(raw_json):
        summary = report.get("summary", {})
        failed += summary.get("failed", 0)
        passed += summary.get("passed", 0)
        skipped += summary.get("skipped", 0)
        parsing_errors += summary.get("parsing_errors", 0)
        resources += summary.get("resource_count", 0)
        for check in report.get("results", {}).get("failed_checks", []):
            where = f"{check.get('file_path', '?').lstrip('/')}:{'-'.join(map(str, check.get('file_line_range', [])))}"
            lines.append(f"FAILED {check['check_id']} {check['resource']} ({where}): {check['check_name']}")
    names = ", ".join(path.name for path in scanned)
    if parsing_errors or not resources:
        lines.append(f"checkov could not parse {names} ({parsing_errors} parsing errors, {resources} resources)")
        return 1, lines
    lines.append(f"checkov on {names}: {passed} passed, {skipped} suppressed with a reason, {failed} failed")
    if failed:
        lines.append("Fix the resource, or suppress with a one-line reason: see docs/security-gates.md")
    return (1 if failed else 0), lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkov", required=True, help="the checkov executable (in .venv-checkov)")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--transformed", type=Path, default=TRANSFORMED)
    args = parser.parse_args(argv)

    from samcli.yamlhelper import yaml_parse

    text = args.template.read_text(encoding="utf-8")
    template = yaml_parse(text)
    problems = suppression_problems(template, text)
    if problems:
        print("\n".join(problems))
        return 1
    args.transformed.parent.mkdir(parents=True, exist_ok=True)
    args.transformed.write_text(json.dumps(transform(template), indent=1), encoding="utf-8")

    scanned = [args.template, args.transformed]
    command = [args.checkov, "--quiet", "--compact", "--skip-download", "--framework", "cloudformation", "-o", "json"]
    for path in scanned:
        command += ["-f", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # nosec B603  # fixed argv
    try:
        code, lines = verdict(result.stdout, scanned)
    except (ValueError, KeyError) as exc:
        print(f"checkov gave no readable report (exit {result.returncode}): {exc}\n{result.stderr[-2000:]}")
        return 1
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())

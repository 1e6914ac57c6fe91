"""pip-audit over the pinned requirements, with an honest answer when the service cannot be asked.

pip-audit resolves the requirements files (their dependencies too) and asks a vulnerability service
(OSV here) about every package. Three outcomes, and the build follows them:

- clean: every package was checked and none has a known vulnerability -> exit 0;
- finding: any known vulnerability in a package -> each is printed and the exit is 1, always;
- unreachable: the service (or the index pip-audit resolves against) cannot be reached, or it
  answered for no package -> "pip-audit could not reach the vulnerability service; not checked",
  exit 0. pip-audit itself says "No known vulnerabilities found" with exit 0 when the PyPI service
  answers 404 for every package (as this machine's PyPI mirror does), so the report is read, not
  the exit code.

Anything else pip-audit fails on (a bad requirements file, a resolution conflict) fails the build.
Extra arguments after `--` go to pip-audit (the tests point --osv-url at a service on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess  # nosec B404  # runs a pinned dev tool, never a shell
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UNREACHABLE = "pip-audit could not reach the vulnerability service; not checked"

# How requests/urllib3 and pip say that a host could not be reached; pip-audit lets most of these
# through as a traceback, and turns only ConnectTimeout into its own message.
_NETWORK_ERROR = re.compile(
    r"ConnectionError|ConnectTimeout|ReadTimeout|Max retries exceeded|Failed to resolve|"
    r"Name or service not known|Temporary failure in name resolution|Connection refused|"
    r"Network is unreachable|timed out|Could not connect to|"
    # the service answered but is not serving (overloaded, down, rate limiting): not a verdict either
    r"HTTPError: (?:5\d\d|429) ",
)


@dataclass
class Verdict:
    exit_code: int
    lines: list[str] = field(default_factory=list)


def _finding_lines(dep: dict[str, Any]) -> list[str]:
    lines = []
    for vuln in dep["vulns"]:
        ids = ", ".join([vuln["id"], *vuln.get("aliases", [])])
        fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed version yet"
        description = (vuln.get("description") or "").strip()
        lines.append(f"  {dep['name']} {dep['version']}: {ids} (fixed in: {fixed}) {description[:160]}")
    return lines


def judge(returncode: int, report: str | None, stderr: str) -> Verdict:
    """Turn pip-audit's exit code, JSON report (None when it wrote none) and stderr into the build's answer."""
    if not report:
        cause = next((line.strip() for line in reversed(stderr.splitlines()) if _NETWORK_ERROR.search(line)), None)
        if cause is not None:
            return Verdict(0, [UNREACHABLE, f"  ({cause[:300]})"])
        return Verdict(2, [f"pip-audit failed (exit {returncode}) without a report:", stderr.strip()[-3000:]])

    dependencies = json.loads(report)["dependencies"]
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    audited = [dep for dep in dependencies if "vulns" in dep]
    skipped = [dep for dep in dependencies if "skip_reason" in dep]
    lines = []
    if vulnerable:
        count = sum(len(dep["vulns"]) for dep in vulnerable)
        lines.append(f"pip-audit found {count} known vulnerabilities in {len(vulnerable)} packages:")
        for dep in vulnerable:
            lines.extend(_finding_lines(dep))
    if skipped:
        if not audited:
            lines.append(UNREACHABLE)
        names = ", ".join(dep["name"] for dep in skipped)
        lines.append(f"  not checked ({len(skipped)}): {names}; first reason: {skipped[0]['skip_reason']}")
    if vulnerable:
        return Verdict(1, lines)
    if returncode != 0:
        return Verdict(2, [*lines, f"pip-audit exited {returncode} with no finding:", stderr.strip()[-3000:]])
    if audited:
        lines.insert(0, f"pip-audit: no known vulnerabilities in {len(audited)} packages")
    elif not skipped:
        lines.append("pip-audit: the requirements resolved to no package")
        return Verdict(2, lines)
    return Verdict(0, lines)


def run(requirements: list[Path], extra: list[str], pip_audit: list[str]) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="pip-audit-") as tmp:
        output = Path(tmp) / "report.json"
        command = [*pip_audit, "--vulnerability-service", "osv", "--format", "json", "--output", str(output)]
        command += ["--progress-spinner", "off", "--timeout", "20"]
        for path in requirements:
            command += ["--requirement", str(path)]
        result = subprocess.run([*command, *extra], capture_output=True, text=True, check=False)  # nosec B603  # fixed argv
        report = output.read_text(encoding="utf-8") if output.exists() else None
    return judge(result.returncode, report, result.stderr)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in args:
        args, extra = args[: args.index("--")], args[args.index("--") + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--requirement", type=Path, action="append", required=True)
    parser.add_argument(
        "--pip-audit", default=f"{sys.executable} -m pip_audit", help="the pip-audit command (default: this venv's)"
    )
    options = parser.parse_args(args)
    verdict = run(options.requirement, extra, shlex.split(options.pip_audit))
    print("\n".join(verdict.lines))
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())

"""Find secrets in captured log output: the detector of tests/e2e/test_no_secrets_in_logs.py.

``find_leaks(text, secrets)`` names every secret whose value appears in ``text`` as written, as a
JSON string escapes it, or URL-encoded (a value in a logged path or form body). Short values (a
6-digit code) count only standing alone, not inside a longer run of letters or digits (a
timestamp or an id). Beyond known values, any HMAC-SHA256 signature header part (``v1=<64 hex>``)
is a leak whatever its key: the test cannot know every signature the sandbox computed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

SHORT = 12  # values shorter than this must stand alone to count
_SIGNATURE_HEADER_PART = re.compile(r"\bv1=[0-9a-f]{64}\b")


@dataclass(frozen=True)
class Leak:
    name: str
    form: str  # "raw", "json", "url" or "signature pattern"
    line: str  # the line it was found on, cut to 300 characters around it


def forms(value: str) -> dict[str, str]:
    """The ways a value is written in a log line."""
    return {"raw": value, "json": json.dumps(value)[1:-1], "url": quote(value, safe=""), "url+": quote_plus(value)}


def _line_around(text: str, start: int, end: int) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start : line_end if line_end != -1 else len(text)]
    offset = start - line_start
    return line[max(0, offset - 150) : offset + 150]


def find_leaks(text: str, secrets: dict[str, str]) -> list[Leak]:
    leaks: list[Leak] = []
    for name, value in secrets.items():
        if not value:
            continue
        for form, written in dict.fromkeys(forms(value).items()):
            if len(written) < SHORT:
                pattern = re.compile(rf"(?<![0-9A-Za-z]){re.escape(written)}(?![0-9A-Za-z])")
            else:
                pattern = re.compile(re.escape(written))
            match = pattern.search(text)
            if match:
                leaks.append(Leak(name, form, _line_around(text, match.start(), match.end())))
                break
    for match in _SIGNATURE_HEADER_PART.finditer(text):
        leaks.append(Leak("an HMAC signature header part", "signature pattern", _line_around(text, *match.span())))
    return leaks


def secret_strings(value: object, name: str = "secret", min_length: int = 16) -> dict[str, str]:
    """Every string in a secret's JSON value long enough to be key material, by path; a PEM's
    base64 lines are listed one by one too (a log may carry a part of the key)."""
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            found |= secret_strings(inner, f"{name}.{key}", min_length)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found |= secret_strings(inner, f"{name}[{index}]", min_length)
    elif isinstance(value, str) and len(value) >= min_length:
        found[name] = value
        if "-----BEGIN" in value:
            for number, line in enumerate(value.splitlines()):
                if len(line) >= 32 and not line.startswith("-----"):
                    found[f"{name} line {number}"] = line
    return found

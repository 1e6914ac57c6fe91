"""The logic of the checkov and pip-audit gates (infra/checkov_gate.py, infra/audit_requirements.py).

The reports below have the shapes the pinned tools write (checkov 3.3.30 `-o json`, pip-audit 2.10.1
`--format json`); the pip-audit runs against a service on 127.0.0.1 are in tests/integration.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.audit_requirements import UNREACHABLE, judge
from infra.checkov_gate import carry_suppressions, suppression_problems, transform, verdict

pytestmark = pytest.mark.unit

SCANNED = [Path("template.yaml"), Path("template.transformed.json")]


def _skip(check_id: str, comment: str) -> dict:
    return {"Metadata": {"checkov": {"skip": [{"id": check_id, "comment": comment}]}}}


# ---------------------------------------------------------------- checkov: suppressions


def test_a_suppression_needs_a_check_id_and_a_one_line_reason() -> None:
    template = {
        "Resources": {
            "Good": {"Type": "AWS::SNS::Topic", **_skip("CKV_AWS_26", "a reason")},
            "NoReason": {"Type": "AWS::SNS::Topic", **_skip("CKV_AWS_26", "  ")},
            "TwoLines": {"Type": "AWS::SNS::Topic", **_skip("CKV_AWS_26", "one\ntwo")},
            "BadId": {"Type": "AWS::SNS::Topic", **_skip("AWS_26", "a reason")},
            "NotAList": {"Type": "AWS::SNS::Topic", "Metadata": {"checkov": {"skip": "CKV_AWS_26"}}},
            "Plain": {"Type": "AWS::SNS::Topic", "Metadata": {"BuildMethod": "python3.13"}},
        }
    }

    problems = suppression_problems(template, "Resources:\n")

    assert [p.split(":")[0] for p in problems] == ["NoReason", "TwoLines", "BadId", "NotAList"]


def test_comment_skips_are_refused_because_they_do_not_reach_the_transformed_template() -> None:
    text = "Resources:\n  T:\n    # checkov:skip=CKV_AWS_26:reason\n    Type: AWS::SNS::Topic\n"

    assert suppression_problems({"Resources": {}}, text) == [
        "template line 3: use Metadata.checkov.skip with a comment instead of a checkov:skip comment"
    ]


def test_template_yaml_suppressions_all_carry_a_reason() -> None:
    from samcli.yamlhelper import yaml_parse

    from tests.helpers import ROOT

    text = (ROOT / "template.yaml").read_text(encoding="utf-8")

    assert suppression_problems(yaml_parse(text), text) == []


def test_generated_resources_inherit_the_skips_of_the_sam_resource_they_come_from() -> None:
    source = {
        "Resources": {
            "Orders": {"Type": "AWS::Serverless::Function", **_skip("CKV_AWS_117", "no VPC")},
            "OrdersTable": {"Type": "AWS::DynamoDB::Table", **_skip("CKV_AWS_119", "managed key")},
            "Api": {"Type": "AWS::Serverless::Api", **_skip("CKV_AWS_120", "no cache")},
        }
    }
    translated = {
        "Resources": {
            "Orders": {"Type": "AWS::Lambda::Function", **_skip("CKV_AWS_117", "no VPC")},
            "OrdersRole": {"Type": "AWS::IAM::Role"},
            "OrdersTable": {"Type": "AWS::DynamoDB::Table", **_skip("CKV_AWS_119", "managed key")},
            "ApiStage": {"Type": "AWS::ApiGateway::Stage", "Metadata": {"checkov": {"skip": []}}},
        }
    }

    carry_suppressions(source, translated)

    res = translated["Resources"]
    assert res["OrdersRole"]["Metadata"]["checkov"]["skip"] == [{"id": "CKV_AWS_117", "comment": "no VPC"}]
    assert res["ApiStage"]["Metadata"]["checkov"]["skip"] == [{"id": "CKV_AWS_120", "comment": "no cache"}]
    # a plain resource and the SAM resource's own are left as they are (no doubled entries)
    assert len(res["OrdersTable"]["Metadata"]["checkov"]["skip"]) == 1
    assert len(res["Orders"]["Metadata"]["checkov"]["skip"]) == 1


def test_the_transform_shows_the_roles_and_stage_that_template_yaml_does_not_have() -> None:
    from samcli.yamlhelper import yaml_parse

    from tests.helpers import ROOT

    source = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))

    translated = transform(source)["Resources"]

    assert translated["ChannelsFunctionRole"]["Type"] == "AWS::IAM::Role"
    assert translated["PaymentsApiStage"]["Type"] == "AWS::ApiGateway::Stage"
    inherited = {s["id"] for s in translated["PaymentsApiStage"]["Metadata"]["checkov"]["skip"]}
    assert "CKV_AWS_120" in inherited
    assert not [lid for lid, r in translated.items() if r["Type"].startswith("AWS::Serverless::")]


# ---------------------------------------------------------------- checkov: the verdict


def _checkov_report(failed: list[dict] | None = None, parsing_errors: int = 0, resources: int = 12) -> str:
    failed = failed or []
    return json.dumps(
        {
            "check_type": "cloudformation",
            "results": {"failed_checks": failed},
            "summary": {
                "passed": 27,
                "failed": len(failed),
                "skipped": 16,
                "parsing_errors": parsing_errors,
                "resource_count": resources,
                "checkov_version": "3.3.30",
            },
        }
    )


def test_checkov_clean_passes() -> None:
    code, lines = verdict(_checkov_report(), SCANNED)

    assert code == 0
    assert lines == [
        "checkov on template.yaml, template.transformed.json: 27 passed, 16 suppressed with a reason, 0 failed"
    ]


def test_checkov_failed_check_fails_and_names_the_resource() -> None:
    failed = {
        "check_id": "CKV_AWS_116",
        "check_name": "Ensure that AWS Lambda function is configured for a Dead Letter Queue(DLQ)",
        "resource": "AWS::Serverless::Function.OrdersFunction",
        "file_path": "/template.yaml",
        "file_line_range": [200, 230],
    }

    code, lines = verdict(_checkov_report([failed]), SCANNED)

    assert code == 1
    assert lines[0].startswith("FAILED CKV_AWS_116 AWS::Serverless::Function.OrdersFunction (template.yaml:200-230)")


@pytest.mark.parametrize(("parsing_errors", "resources"), [(1, 12), (1, 0), (0, 0)])
def test_checkov_that_could_not_parse_fails_although_it_exits_0(parsing_errors: int, resources: int) -> None:
    # checkov exits 0 with "Parsing errors: 1" and no checks when it cannot read a template.
    code, lines = verdict(_checkov_report(parsing_errors=parsing_errors, resources=resources), SCANNED)

    assert code == 1
    assert "could not parse" in lines[-1]


# ---------------------------------------------------------------- pip-audit: the verdict


def _dep(name: str, version: str, vulns: list[dict] | None = None) -> dict:
    return {"name": name, "version": version, "vulns": vulns or []}


def _skipped(name: str) -> dict:
    return {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} (1.0)"}


def _audit(*deps: dict) -> str:
    return json.dumps({"dependencies": list(deps), "fixes": []})


VULN = {"id": "PYSEC-2099-1", "fix_versions": ["2.0"], "aliases": ["CVE-2099-1"], "description": "bad"}


def test_pip_audit_saying_clean_while_it_checked_nothing_is_not_checked() -> None:
    # What pip-audit's PyPI service gives here: a 404 for every package, exit 0, "No known vulnerabilities".
    result = judge(0, _audit(_skipped("boto3"), _skipped("pydantic")), "No known vulnerabilities found\n")

    assert result.exit_code == 0
    assert result.lines[0] == UNREACHABLE
    assert "not checked (2): boto3, pydantic" in result.lines[1]


def test_a_finding_fails_even_when_other_packages_were_not_checked() -> None:
    result = judge(1, _audit(_dep("jwt", "1.0", [VULN]), _skipped("boto3")), "Found 1 known vulnerability\n")

    assert result.exit_code == 1
    assert "jwt 1.0: PYSEC-2099-1, CVE-2099-1 (fixed in: 2.0) bad" in result.lines[1]
    assert "not checked (1): boto3" in result.lines[2]


def test_a_finding_fails_whatever_pip_audit_exits_with() -> None:
    assert judge(0, _audit(_dep("jwt", "1.0", [VULN])), "").exit_code == 1


def test_partly_checked_says_what_was_not_checked() -> None:
    result = judge(0, _audit(_dep("jwt", "2.0"), _skipped("boto3")), "")

    assert result.exit_code == 0
    assert result.lines[0] == "pip-audit: no known vulnerabilities in 1 packages"
    assert UNREACHABLE not in result.lines
    assert "not checked (1): boto3" in result.lines[1]


def test_pip_audit_failing_for_another_reason_fails_the_build() -> None:
    stderr = "ERROR: No matching distribution found for pydantic==9.9.9\n"

    result = judge(1, None, stderr)

    assert result.exit_code == 2
    assert "pydantic==9.9.9" in result.lines[1]


def test_a_resolution_that_could_not_reach_the_index_is_not_checked() -> None:
    stderr = (
        "WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError(\"...: "
        "Failed to establish a new connection: [Errno 111] Connection refused\")': /simple/pydantic/\n"
        "ERROR: No matching distribution found for pydantic==2.13.5\n"
    )

    result = judge(1, None, stderr)

    assert result.exit_code == 0
    assert result.lines[0] == UNREACHABLE

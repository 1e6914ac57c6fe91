"""An ``--env-vars`` file for ``sam local invoke`` / ``sam local start-api`` against the local moto server.

``python -m infra.local env-vars > env.json`` writes, per function (logical id), the environment
the local stack gives it: the template's variables resolved for the stage, plus
``AWS_ENDPOINT_URL`` at the moto server. SAM only overrides variables a function declares in
template.yaml (aws-sam-cli issues #6145, #1553), so the template's Globals declare
``AWS_ENDPOINT_URL`` empty (an empty value is ignored by botocore and by paycore's settings).
Credentials and region are SAM's own: it passes the shell's ``AWS_*`` credentials and
``--region`` into the container.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.local.runtime import function_environment
from infra.local.template import TEMPLATE, Resolver, functions, load_template


def env_vars(
    *, endpoint_url: str, stage: str = "local", region: str = "us-east-1", template_path: Path = TEMPLATE
) -> dict[str, dict[str, str]]:
    template = load_template(template_path)
    resolver = Resolver(template=template, region=region, parameters={"Stage": stage})
    specs = functions(template, resolver, base_dir=template_path.parent)
    # Only what each function declares: SAM ignores the rest (and sets AWS_SAM_LOCAL, which turns
    # Powertools' tracer off by itself).
    return {
        lid: {k: v for k, v in function_environment(spec, endpoint_url=endpoint_url).items() if k in spec.environment}
        for lid, spec in sorted(specs.items())
    }


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"

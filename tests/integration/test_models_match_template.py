"""Every PynamoDB model matches the table that template.yaml declares for it.

moto accepts a GSI key of the wrong type silently where DynamoDB rejects it, so the models and
the template are held together here rather than found apart in production.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from pynamodb.models import Model

import paycore.data
from infra.local.template import load_template

pytestmark = pytest.mark.integration

_TYPES = {"S": "S", "N": "N", "B": "B"}


def _models() -> list[type[Model]]:
    for info in pkgutil.iter_modules(paycore.data.__path__):
        importlib.import_module(f"paycore.data.{info.name}")
    found: list[type[Model]] = []

    def walk(cls: type) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("paycore.data"):
                found.append(sub)
            walk(sub)

    walk(Model)
    return found


def test_there_are_models_to_check() -> None:
    assert _models(), "no PynamoDB models found under paycore.data"


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_model_keys_and_indexes_match_the_template(model: type[Model]) -> None:
    logical_id = getattr(model.Meta, "template_table", None)
    assert logical_id, f"{model.__name__}.Meta.template_table names no table"
    table = load_template()["Resources"][logical_id]["Properties"]
    declared_types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    schema = model._get_schema()

    model_keys = {k["AttributeName"]: k["KeyType"] for k in schema["key_schema"]}
    template_keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
    assert model_keys == template_keys

    model_types = {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
    for name, kind in model_types.items():
        assert declared_types.get(name) == kind, (
            f"{logical_id}.{name}: model {kind}, template {declared_types.get(name)}"
        )

    model_gsis = {
        g["index_name"]: {k["AttributeName"]: k["KeyType"] for k in g["key_schema"]}  # PynamoDB's spelling
        for g in schema["global_secondary_indexes"]
    }
    template_gsis = {
        g["IndexName"]: {k["AttributeName"]: k["KeyType"] for k in g["KeySchema"]}
        for g in table.get("GlobalSecondaryIndexes", [])
    }
    for name, keys in model_gsis.items():
        assert template_gsis.get(name) == keys, f"{logical_id}: index {name} differs from the template"
    for gsi in schema["global_secondary_indexes"]:
        declared_projection = next(
            g["Projection"]["ProjectionType"]
            for g in table["GlobalSecondaryIndexes"]
            if g["IndexName"] == gsi["index_name"]
        )
        assert gsi["projection"]["ProjectionType"] == declared_projection, (
            f"{logical_id}: {gsi['index_name']} projection"
        )

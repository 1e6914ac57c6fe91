"""The in-process stack the DynamoDB, growth and warm-path sections run on: moto ``mock_aws`` with
every resource of template.yaml, real identity keys, the seeded channels, each function's
environment from the template, and the request recorder installed.

With ``mirror=True`` the template's tables are created a second time under the stage ``bare``:
the warm-path section replays each handler's requests there with plain boto3, so the replayed
conditions meet the same item states the handler's requests met.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from bench.recorder import Recorder, Replayer

REGION = "us-east-1"
STAGE = "bench"
MIRROR_STAGE = "bare"

ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SECURITY_TOKEN": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    # No X-Ray daemon in-process; the cold-start section measures with tracing on.
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_DEV": "false",
}


@dataclass
class FakeContext:
    """The attributes of a LambdaContext that Powertools reads."""

    function_name: str = "bench"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    remaining_ms: int = 10_000  # the function's whole Timeout, set per invocation

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Stack:
    def __init__(self, resolver: Any, recorder: Recorder, replayer: Replayer | None, session: Any):
        from infra.local.template import functions

        self.resolver = resolver
        self.recorder = recorder
        self.replayer = replayer
        self.session = session
        self.functions = functions(resolver.template, resolver)
        self.context = FakeContext()

    def provider_side(self, call: Any) -> bool:
        """Whether ``call`` is the sandbox provider's own (its table or webhook queue), not the service's."""
        if not hasattr(self, "_provider_names"):
            self._provider_names = {
                self.name(lid) for lid in self.resolver.template["Resources"] if lid.startswith("Sandbox")
            }
        p = call.params
        names = {p.get("TableName"), p.get("QueueUrl")}
        names |= {a.get("TableName") for e in p.get("TransactItems", []) for a in e.values()}
        names |= set(p.get("RequestItems", {}))
        return bool(names & self._provider_names)

    def name(self, logical_id: str) -> str:
        return str(self.resolver.ref(logical_id))

    def has(self, logical_id: str) -> bool:
        return logical_id in self.resolver.template["Resources"]

    def handler(self, logical_id: str) -> Any:
        module: ModuleType = importlib.import_module(self.functions[logical_id].module)
        return module.lambda_handler

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        self.context.aws_request_id = str(uuid.uuid4())
        self.context.remaining_ms = self.functions[logical_id].timeout * 1000
        return self.handler(logical_id)(event, self.context)

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=REGION)


@contextmanager
def item_level_transactions() -> Iterator[None]:
    """Make moto's TransactWriteItems cost what DynamoDB's does: nothing that grows with the table.

    moto 5.2.5 deep-copies every table a transaction touches, to restore it if the transaction is
    cancelled (moto/dynamodb/models/__init__.py): each transaction costs time and memory in proportion
    to the whole table, which made a 100,000-order table take minutes per sweep and gigabytes. Here
    the items the transaction names are saved instead and put back on a cancellation; that is all
    moto's rollback amounts to, since a transaction changes no other item.
    """
    import copy

    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    class NoTableCopy:
        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            _, action = next(iter(entry.items()))
            name = action.get("TableName")
            if name not in backend.tables:
                continue
            table = backend.tables[name]
            source = action.get("Item") or action.get("Key") or {}
            key = {a: source[a] for a in (table.hash_key_attr, table.range_key_attr) if a and a in source}
            try:
                item = backend.get_item(name, key)
            except Exception:  # noqa: S112  # a malformed key: moto answers it properly below
                continue
            saved.append((name, key, None if item is None else copy.deepcopy(item.to_json()["Attributes"])))
        try:
            original(backend, transact_items)
        except Exception:
            for name, key, item in saved:
                if item is not None:
                    backend.put_item(name, item)
                elif backend.get_item(name, key) is not None:
                    backend.delete_item(name, key)
            raise

    saved_copy = models.copy
    models.copy = NoTableCopy()  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        models.copy = saved_copy
        models.DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]


def reset_paycore() -> None:
    from paycore.aws import reset_clients
    from paycore.config import reset_settings

    reset_settings()
    reset_clients()
    import paycore.channels

    paycore.channels.reset_cache()


@contextmanager
def stack(*, mirror: bool = False) -> Iterator[Stack]:
    import boto3
    from moto import mock_aws
    from moto.dynamodb.models import dynamodb_backends

    from infra.local.provision import provision
    from infra.local.secrets import prepare_identity
    from infra.local.template import ACCOUNT_ID, functions, load_template, resources_of_type

    saved = dict(os.environ)
    os.environ.update(ENV)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)
    with ExitStack() as cleanup:
        cleanup.callback(_restore_env, saved)
        cleanup.enter_context(mock_aws())
        cleanup.enter_context(item_level_transactions())
        session = boto3.session.Session()
        resolver = provision(session, stage=STAGE, region=REGION)
        prepare_identity(session, resolver)
        for spec in functions(resolver.template, resolver).values():
            os.environ.update(spec.environment)
        os.environ.pop("AWS_ENDPOINT_URL", None)
        recorder = Recorder(dynamodb_backends[ACCOUNT_ID][REGION])
        replayer = None
        if mirror:
            bare = provision(session, stage=MIRROR_STAGE, region=REGION)
            tables = resources_of_type(load_template(), "AWS::DynamoDB::Table")
            replayer = Replayer(recorder, {str(resolver.ref(t)): str(bare.ref(t)) for t in tables})
        recorder.install()
        cleanup.callback(recorder.uninstall)
        reset_paycore()
        cleanup.callback(reset_paycore)
        result = Stack(resolver, recorder, replayer, session)
        from infra.seed.channels import seed_channels

        if replayer is not None:
            with recorder.capture() as calls:
                seed_channels()
            replayer.run(replayer.prepare(calls))
        else:
            seed_channels()
        yield result


def _restore_env(saved: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(saved)

"""Fixtures shared by every suite.

``aws`` runs a test inside moto's ``mock_aws`` with every resource of template.yaml created
(infra/local/provision.py) and the environment of the functions set from the template, then
drops every cached client so nothing leaks into the next test.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

# Fixtures of the identity suites (users at each stage of registration, logged-in sessions).
pytest_plugins = ["tests.identity_support"]

# Tests never reach real AWS: fake credentials, a fixed region, and no IMDS lookups.
_SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "ServerlessPayments",
    "POWERTOOLS_DEV": "false",
}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in _SAFE_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    yield
    _reset_paycore()


def _reset_paycore() -> None:
    from paycore.aws import reset_clients
    from paycore.config import reset_settings

    reset_settings()
    reset_clients()
    import paycore.channels

    paycore.channels.reset_cache()


class AwsStack:
    """What a test sees of the provisioned stack: resolved names and each function's environment."""

    def __init__(self, resolver: Any, session: Any):
        from infra.local.template import functions

        self.resolver = resolver
        self.session = session
        self.functions = functions(resolver.template, resolver)

    def name(self, logical_id: str) -> str:
        return str(self.resolver.ref(logical_id))

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name="us-east-1")

    def use_function_env(self, monkeypatch: pytest.MonkeyPatch, logical_id: str) -> None:
        for key, value in self.functions[logical_id].environment.items():
            monkeypatch.setenv(key, value)
        _reset_paycore()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    import boto3
    from moto import mock_aws

    from infra.local.moto_lock import serialize_moto_requests
    from infra.local.provision import provision
    from infra.local.secrets import prepare_identity

    serialize_moto_requests()
    with mock_aws():
        session = boto3.session.Session()
        resolver = provision(session, stage="test", region="us-east-1")
        # Real key material in the template's (empty) secrets and an SES sender moto accepts.
        prepare_identity(session, resolver)
        stack = AwsStack(resolver, session)
        # Every function's variables at once (they are names, not secrets); a test that needs one
        # function's exact environment calls use_function_env.
        for spec in stack.functions.values():
            for key, value in spec.environment.items():
                monkeypatch.setenv(key, value)
        _reset_paycore()
        yield stack
        _reset_paycore()


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py the way the local stack does."""
    return importlib.import_module(f"functions.{function}.app")


@pytest.fixture
def seeded_channels(aws: AwsStack) -> AwsStack:
    from infra.seed.channels import seed_channels

    seed_channels()
    return aws


@pytest.fixture
def identity(aws: AwsStack) -> Any:
    """Logged-in users for the order suites (tests/orders_support.py), through the identity functions."""
    from tests.orders_support import Identity

    return Identity()


os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
# paycore.observability creates Metrics at import (during collection): it reads the namespace then.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ServerlessPayments")


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver (a provider's API played locally) listens on 127.0.0.1 only, on a free port."""
    return ("127.0.0.1", 0)


@pytest.fixture
def captured_logs() -> Iterator[Any]:
    """Point the paycore logger's handler at a buffer for the test (``CapturedLogs`` in tests/helpers.py)."""
    from paycore.observability import logger
    from tests.helpers import CapturedLogs

    capture = CapturedLogs()
    previous = logger.registered_handler.setStream(capture.stream)
    try:
        yield capture
    finally:
        logger.registered_handler.setStream(previous)

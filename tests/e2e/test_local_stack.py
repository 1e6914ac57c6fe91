"""Real HTTP against the local stack (python -m infra.local), as a client app would call it."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import LocalStackProcess, start_local_stack
from tests.e2e.identity_client import new_account

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bearer(api_url: str) -> dict[str, str]:
    """GET /channels is a Bearer route: a registered, verified and logged-in account's header."""
    return new_account(api_url).bearer()


def test_channels_for_1000_cny_lists_the_sandbox_channel(api_url: str, bearer: dict[str, str]) -> None:
    answer = requests.get(f"{api_url}/channels", params={"amount": 1000, "currency": "CNY"}, headers=bearer, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    data = answer.json()
    assert data["recommended"] == "sandbox"
    sandbox = next(c for c in data["channels"] if c["id"] == "sandbox")
    assert sandbox["available"] is True
    assert "CNY" in sandbox["currencies"]


def test_a_bad_currency_is_422_in_the_contract_error_shape(api_url: str, bearer: dict[str, str]) -> None:
    answer = requests.get(f"{api_url}/channels", params={"amount": 1000, "currency": "XXX"}, headers=bearer, timeout=10)
    assert answer.status_code == 422
    assert answer.json() == {
        "error": {"code": "invalid_currency", "message": "currency 'XXX' is not an ISO 4217 currency code"}
    }


def test_an_unknown_route_answers_the_gateway_response_in_the_contract_shape(api_url: str) -> None:
    for method, path in (("GET", "/no/such/route"), ("DELETE", "/channels")):
        answer = requests.request(method, f"{api_url}{path}", timeout=10)
        assert answer.status_code == 403  # what a deployed REST API answers for an undeclared route
        assert answer.json() == {"error": {"code": "gateway_rejected", "message": "Missing Authentication Token"}}
        assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_the_outbox_answers_json(api_url: str) -> None:
    answer = requests.get(f"{api_url}/_local/outbox", timeout=10)
    assert answer.status_code == 200
    assert set(answer.json()) == {"emails", "sms", "sns"}
    filtered = requests.get(f"{api_url}/_local/outbox", params={"to": "nobody@example.com"}, timeout=10)
    assert filtered.json() == {"emails": [], "sms": [], "sns": []}


def test_running_an_unknown_schedule_is_404_json(api_url: str) -> None:
    answer = requests.post(f"{api_url}/_local/schedules/no-such-function", json={}, timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_schedule"


def test_the_stack_says_where_everything_is(local_stack: LocalStackProcess) -> None:
    info = requests.get(f"{local_stack.api_url}/_local", timeout=10).json()
    assert info["moto_url"] == local_stack.moto_url
    assert info["tables"]["ChannelsTable"] == "serverless-payments-local-channels"
    assert {
        "method": "GET",
        "path": "/channels",
        "function": "ChannelsFunction",
        "authorizer": "AuthorizerFunction",
    } in info["routes"]
    assert info["functions_failed_to_load"] == {}
    # The moto server is the one the functions use: the seeded table is there.
    tables = requests.post(
        local_stack.moto_url,
        headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261125/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
        data="{}",
        timeout=10,
    ).json()
    assert "serverless-payments-local-channels" in tables["TableNames"]


def _port_is_free(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        # As a server binds: connections the stopped server closed may linger in TIME_WAIT, which
        # does not keep a new server (SO_REUSEADDR) off the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError:
            return False
        return True


def test_ctrl_c_stops_the_stack_cleanly_and_frees_its_ports(tmp_path: Path) -> None:
    stack = start_local_stack(tmp_path)
    assert requests.get(f"{stack.api_url}/_local", timeout=10).status_code == 200
    assert stack.stop(signal.SIGINT) == 0
    output = stack.output()
    assert "Traceback" not in output
    assert "stopped." in output
    assert _port_is_free(stack.api_url)
    assert _port_is_free(stack.moto_url)

"""Where the simulator meets the stack outside the public API: the target (a local stack, started
when none answers, or a deployed stage), the scheduled jobs, and the sandbox provider's own
ledger and behaviour knobs.

The API is driven over HTTP only. Three things have no public route, by design:

* **The sandbox's knobs** are stored in its table (``paycore.sandbox.service.set_behaviour``,
  docs/orders.md); the simulator calls that function in this process with the sandbox's
  environment pointed at the stack's store (the local moto server, or the stage's DynamoDB with the
  operator's AWS credentials).
* **The provider's own record** (payments, refunds, webhook events) is read the same way, from the
  sandbox's table: the checker compares the service with it, so it must not come through the
  service's API.
* **The service's history** (how many ``paid`` transitions an order has) is read from the orders
  table with ``paycore.data.orders``; the API shows only the current state.

paycore reads its settings from the environment, so this process takes the sweeper function's
environment from template.yaml (``infra.local.sam_env``: the same names the stack created; the
sweeper's is a superset of what the sandbox and the order reads need).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from infra.local import launch
from infra.local.sam_env import env_vars

DEFAULT_BASE_URL = "http://127.0.0.1:3000"
FUNCTION_ENV = "SweeperFunction"  # its environment names the orders, sandbox and channels tables
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class TargetError(RuntimeError):
    """The target cannot be used as asked (nothing answers, or a local-only feature on a stage)."""


def _local_info(base_url: str) -> dict[str, Any] | None:
    try:
        answer = requests.get(f"{base_url.rstrip('/')}/_local", timeout=3)
    except requests.RequestException:
        return None
    if answer.status_code != 200:
        return None
    try:
        info = answer.json()
    except ValueError:
        return None
    return info if isinstance(info, dict) and info.get("status") == "ready" else None


@dataclass
class Target:
    """The stack under test."""

    base_url: str
    local: bool
    stage: str
    region: str
    moto_url: str | None = None
    started: launch.LocalStackProcess | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    def open(
        cls,
        base_url: str | None,
        *,
        stage: str | None = None,
        region: str = "us-east-1",
        new_stack: bool = False,
        workdir: Path | None = None,
    ) -> Target:
        """``base_url`` None: the local stack on :3000, or a new one on free ports when nothing answers
        there. A URL with ``/_local``: that local stack. Any other URL: a deployed stage (``stage`` needed)."""
        if new_stack and base_url:
            raise TargetError("--new-stack starts its own local stack: leave out --base-url")
        url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        info = None if new_stack else _local_info(url)
        if info is None and base_url is None:
            stack = launch.start(workdir or Path(tempfile.mkdtemp(prefix="simulator-stack-")))
            info = _local_info(stack.api_url)
            if info is None:
                stack.stop()
                raise TargetError(f"the local stack started but does not answer:\n{stack.output()}")
            target = cls._local(stack.api_url, info)
            target.started = stack
            return target
        if info is not None:
            return cls._local(url, info)
        if not stage:
            raise TargetError(
                f"{url} is not a local stack (no /_local): name the deployed stage with --stage, "
                "or start one (make run)"
            )
        return cls(base_url=url, local=False, stage=stage, region=region)

    @classmethod
    def _local(cls, url: str, info: dict[str, Any]) -> Target:
        return cls(base_url=url, local=True, stage=info["stage"], region=info["region"], moto_url=info["moto_url"])

    def close(self) -> None:
        if self.started is not None:
            self.started.stop()
            self.started = None

    # ------------------------------------------------------------------ paycore in this process

    def paycore_environment(self) -> dict[str, str]:
        """The variables that point paycore at the target's tables (see the module's docstring)."""
        environment = env_vars(endpoint_url=self.moto_url or "", stage=self.stage, region=self.region)[FUNCTION_ENV]
        environment = {k: v for k, v in environment.items() if v != ""}
        environment |= {"AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region}
        environment |= {"POWERTOOLS_SERVICE_NAME": "simulator", "POWERTOOLS_TRACE_DISABLED": "1"}
        environment |= {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "1"}
        if self.local:
            environment |= LOCAL_CREDENTIALS
        return environment

    def bind_paycore(self) -> dict[str, str]:
        """Point this process's paycore at the target's tables."""
        environment = self.paycore_environment()
        if self.local:
            os.environ.pop("AWS_PROFILE", None)
        os.environ.update(environment)
        from paycore.aws import reset_clients
        from paycore.config import reset_settings

        reset_settings()
        reset_clients()
        return environment

    # ------------------------------------------------------------------ scheduled jobs

    def run_schedule(self, function: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a scheduled function now: ``POST /_local/schedules/<function>`` locally, a synchronous
        Lambda invoke (``serverless-payments-<stage>-<function>``, the operator's credentials) on a stage."""
        body = payload or {}
        if self.local:
            answer = requests.post(f"{self.base_url}/_local/schedules/{function}", json=body, timeout=120)
            if answer.status_code != 200:
                raise TargetError(
                    f"POST /_local/schedules/{function} answered {answer.status_code}: {answer.text[:300]}"
                )
            result: dict[str, Any] = answer.json()
            return result
        import boto3

        response = boto3.client("lambda", region_name=self.region).invoke(
            FunctionName=f"serverless-payments-{self.stage}-{function}", Payload=json.dumps(body).encode()
        )
        data = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise TargetError(f"{function} failed: {data}")
        return data if isinstance(data, dict) else {"result": data}

    def webhook_backlog(self) -> int:
        """Webhook deliveries still queued, in flight or delayed at the sandbox's queue."""
        import boto3

        from paycore.config import sandbox_settings

        sqs = boto3.client("sqs", region_name=self.region, endpoint_url=self.moto_url or None)
        url = sandbox_settings().webhook_queue_url
        if self.local:  # the template's URL names AWS; the queue is the same name on moto
            url = sqs.get_queue_url(QueueName=url.rsplit("/", 1)[-1])["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    def now(self) -> float:
        return time.time()


def utc_date(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d")

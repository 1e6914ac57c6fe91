"""The whole local stack: moto server, the template's resources and seed data, the gateway,
SQS pollers and schedules, started in that order and stopped in reverse.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local.devroutes import DevRoutes
from infra.local.gateway import Gateway, GatewayServer
from infra.local.provision import provision
from infra.local.runtime import FAKE_CREDENTIALS, FunctionRuntime
from infra.local.schedules import ScheduleRunner, expression_of
from infra.local.seed import SEEDERS, run_seeders, sender_addresses, verify_senders
from infra.local.sqs import SqsPoller
from infra.local.template import (
    TEMPLATE,
    api,
    authorizers,
    functions,
    global_environment,
    load_template,
    resources_of_type,
    routes,
    schedules,
    sqs_sources,
)

log = logging.getLogger("infra.local")

DEFAULT_MOTO_PORT = 5000  # moto_server's own default; `env-vars` assumes it

# Template parameters that differ on the local stack, for the templates that declare them: the
# sandbox provider posts its webhooks to this gateway, and retries on a compressed schedule
# (seconds between attempts; deployed stages keep the ~3-day one, docs/orders.md).
LOCAL_PARAMETERS = {
    "SandboxCallbackBaseUrl": "{api_url}",
    "SandboxWebhookRetrySchedule": "2,4,8,16,32,64,128,256,512",
}


def local_parameters(template: dict[str, Any], api_url: str) -> dict[str, str]:
    declared = template.get("Parameters", {})
    return {name: value.format(api_url=api_url) for name, value in LOCAL_PARAMETERS.items() if name in declared}


class MotoServer:
    """moto's server (every service on one endpoint) on a thread of this process.

    Built from the parts ``moto.server`` exports rather than ThreadedMotoServer, whose start()
    waits forever when its port is taken: here the port is bound in the constructor, so a busy
    port raises OSError at once."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_MOTO_PORT):
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        from infra.local.moto_lock import serialize_moto_requests

        serialize_moto_requests()  # each AWS request atomic, as on AWS (infra/local/moto_lock.py)

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per AWS call on the console
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="moto", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def local_process_environment(region: str, endpoint_url: str) -> None:
    """Point this process at moto only: fake credentials, the region, no profile or IMDS, the
    moto endpoint, and no service-specific endpoint left over from the caller's shell."""
    for key in list(os.environ):
        if key.startswith("AWS_ENDPOINT_URL_") or key in (
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ):
            del os.environ[key]
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": endpoint_url,
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )


@dataclass
class StackOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    moto_port: int | None = None  # None: 5000, or a free port when 5000 is taken
    stage: str = "local"
    region: str = "us-east-1"
    template: Path = TEMPLATE
    seed: bool = True
    fire_schedules: bool = False
    sqs_interval: float = 0.5
    notes: list[str] = field(default_factory=list)


class LocalStack:
    def __init__(self, options: StackOptions):
        self.options = options
        self.template = load_template(options.template)
        self.moto: MotoServer | None = None
        self.server: GatewayServer | None = None
        self.runtime: FunctionRuntime | None = None
        self.pollers: list[SqsPoller] = []
        self.schedule_runner: ScheduleRunner | None = None
        self.seeded: dict[str, str] = {}
        self.verified_senders: list[str] = []
        self.load_errors: dict[str, str] = {}
        self.started_in = 0.0
        self._serve_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ start
    def _start_moto(self) -> MotoServer:
        host, wanted = "127.0.0.1", self.options.moto_port  # moto never listens beyond this machine
        if wanted is not None:
            return MotoServer(host, wanted)
        try:
            return MotoServer(host, DEFAULT_MOTO_PORT)
        except OSError:
            self.options.notes.append(
                f"port {DEFAULT_MOTO_PORT} is taken, so moto listens on a free port; "
                "pass that port to `python -m infra.local env-vars --moto-port`"
            )
            return MotoServer(host, 0)

    def start(self) -> None:
        started = time.monotonic()
        opts = self.options
        try:
            # Bind the API port first: a busy port fails before anything else starts.
            self.server = GatewayServer(None, opts.host, opts.port)
            self.moto = self._start_moto()
            self.moto.start()
            moto_url = self.moto.url
            local_process_environment(opts.region, moto_url)

            import boto3

            session = boto3.session.Session()
            resolver = provision(
                session,
                stage=opts.stage,
                region=opts.region,
                endpoint_url=moto_url,
                template=self.template,
                parameters=local_parameters(self.template, self.api_url),
            )
            self.resolver = resolver
            specs = functions(self.template, resolver, base_dir=opts.template.parent)
            self.specs = specs
            self.runtime = FunctionRuntime(specs, region=opts.region, endpoint_url=moto_url)
            self.runtime.open()

            # The Globals environment (template names) pointed at moto: the template declares
            # AWS_ENDPOINT_URL empty, which must not win over the moto URL.
            shared_env = {**os.environ, **global_environment(self.template, resolver), "AWS_ENDPOINT_URL": moto_url}
            if opts.seed:
                with self.runtime.environment(shared_env, owner="seed"):
                    self.seeded = dict(run_seeders(SEEDERS))
            ses = session.client("ses", region_name=opts.region, endpoint_url=moto_url)
            self.verified_senders = verify_senders(ses, sender_addresses(specs.values()))

            self.load_errors = self.runtime.load_all()

            declared_schedules = {lid: resolver.resolve(props) for lid, props in schedules(self.template).items()}
            self.schedule_runner = ScheduleRunner(
                declared_schedules, specs=specs, runtime=self.runtime, region=opts.region
            )
            api_spec = api(self.template, resolver)
            self.api_spec = api_spec
            gateway = Gateway(
                api=api_spec,
                routes=routes(self.template),
                authorizers=authorizers(self.template),
                runtime=self.runtime,
                region=opts.region,
                dev=DevRoutes(info=self.info, moto_url=moto_url, schedules=self.schedule_runner, openapi=self._openapi),
            )
            self.server.gateway = gateway

            sqs = session.client("sqs", region_name=opts.region, endpoint_url=moto_url)
            for source in sqs_sources(self.template, resolver):
                if not source.enabled:
                    continue
                if source.has_filters:
                    opts.notes.append(f"{source.function}: FilterCriteria are not applied locally")
                poller = SqsPoller(
                    source, sqs=sqs, runtime=self.runtime, region=opts.region, interval=opts.sqs_interval
                )
                poller.start()
                self.pollers.append(poller)
            if opts.fire_schedules:
                opts.notes.extend(self.schedule_runner.start_firing())

            self._serve_thread = threading.Thread(
                target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="gateway", daemon=True
            )
            self._serve_thread.start()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - started

    def _openapi(self, server_url: str) -> dict[str, Any]:
        from infra.openapi import build_document

        return build_document(self.options.template, servers=[{"url": server_url, "description": "This local stack."}])

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Stop everything that started, in reverse order; safe to call twice."""
        if self.server is not None:
            if self._serve_thread is not None:
                self.server.shutdown()
                self._serve_thread.join(timeout=10)
            self.server.server_close()
            self.server = None
        for poller in self.pollers:
            poller.stop()
        self.pollers = []
        if self.schedule_runner is not None:
            self.schedule_runner.stop()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None

    # ------------------------------------------------------------------ where things are
    @property
    def api_url(self) -> str:
        if self.server is None:
            raise RuntimeError("the local stack is not running")
        return self.server.url

    @property
    def moto_url(self) -> str:
        if self.moto is None:
            raise RuntimeError("the local stack is not running")
        return self.moto.url

    def _names(self, kind: str) -> dict[str, str]:
        return {lid: str(self.resolver.ref(lid)) for lid in resources_of_type(self.template, kind)}

    def info(self) -> dict[str, Any]:
        schedules_by_name = self.schedule_runner.names() if self.schedule_runner else {}
        return {
            "status": "ready",
            "stage": self.options.stage,
            "region": self.options.region,
            "api_url": self.api_url,
            "moto_url": self.moto_url,
            "routes": [
                {"method": r.method, "path": r.path, "function": r.function, "authorizer": r.authorizer}
                for r in routes(self.template)
            ],
            "tables": self._names("AWS::DynamoDB::Table"),
            "topics": self._names("AWS::SNS::Topic"),
            "queues": self._names("AWS::SQS::Queue"),
            "event_buses": self._names("AWS::Events::EventBus"),
            "secrets": self._names("AWS::SecretsManager::Secret"),
            "parameters": self._names("AWS::SSM::Parameter"),
            "outbox_url": f"{self.api_url}/_local/outbox",
            "schedules": {
                name: {
                    "url": f"{self.api_url}/_local/schedules/{name}",
                    "expression": expression_of(self.schedule_runner.schedules[lid]) if self.schedule_runner else "",
                }
                for name, lid in schedules_by_name.items()
            },
            "sqs_sources": {p.source.function: p.queue_name for p in self.pollers},
            "seeded": self.seeded,
            "verified_senders": self.verified_senders,
            "functions_failed_to_load": self.load_errors,
            "started_in_seconds": round(self.started_in, 2),
        }

    def summary(self) -> str:
        info = self.info()
        width = 12
        lines = [f"serverless-payments local stack, stage {info['stage']}, ready in {self.started_in:.1f} s", ""]

        def row(label: str, value: str) -> None:
            lines.append(f"  {label:<{width}}{value}")

        row("API", info["api_url"])
        for r in info["routes"]:
            guard = f"  (authorizer {r['authorizer']})" if r["authorizer"] else ""
            row("", f"{r['method']:<6} {r['path']:<36} {r['function']}{guard}")
        row("moto", f"{info['moto_url']}  (its dashboard: {info['moto_url']}/moto-api/)")
        for label, key in (
            ("tables", "tables"),
            ("topics", "topics"),
            ("queues", "queues"),
            ("buses", "event_buses"),
            ("secrets", "secrets"),
            ("parameters", "parameters"),
        ):
            for lid, name in info[key].items():
                row(label, f"{name}  ({lid})")
                label = ""
        row("outbox", f"GET {info['outbox_url']}  (?to=<email, phone or topic>)")
        if info["schedules"]:
            for name, item in info["schedules"].items():
                row(
                    "schedules" if name == next(iter(info["schedules"])) else "",
                    f"POST {item['url']}  ({item['expression']})",
                )
        else:
            row("schedules", "none declared in the template")
        for function, queue in info["sqs_sources"].items():
            row("sqs", f"{queue} -> {function}")
        for line in info["seeded"].values():
            row("seeded", line)
        for address in info["verified_senders"]:
            row("ses sender", f"{address} (verified in moto)")
        for lid, error in info["functions_failed_to_load"].items():
            row("NOT LOADED", f"{lid}: {error} (its routes answer 502)")
        for note in self.options.notes:
            row("note", note)
        lines += ["", "  Ctrl-C stops it."]
        return "\n".join(lines)

"""Run the template's functions in this process, each with its own environment, as Lambda would.

Every function gets the environment of template.yaml (Globals merged, names resolved for the
stage), the variables the Lambda runtime sets, and the local additions (``AWS_ENDPOINT_URL`` of the
moto server, fake credentials, tracing off). Handlers share one process, so ``os.environ`` is
replaced, while the runtime is open, by :class:`LayeredEnviron`: a thread that runs a function sees
that function's environment and nobody else's. That lets two functions run at once (a function
that calls the local API over HTTP, as a webhook sender does, must not wait for itself), while
one function runs one invocation at a time (a per-function lock, like one warm container).

Functions built on a Powertools event-handler resolver (an ``app`` in the handler's module) also
share one lock: the resolver keeps the current event and context on its *class*
(``BaseRouter.current_event``), not on each function's ``app``, so two of them running at once in
one process read each other's request. The transaction simulator found it as a 401 from the orders
function, which had read the sandbox checkout's event (no authorizer context). On Lambda each
function has its own process. Plain handlers (SQS consumers, schedules, authorizers, a webhook
sender) do not take that lock, so they can still call the API while they run; a resolver function
that called the local API over HTTP would wait for itself.

paycore caches settings per process (``lru_cache``); :func:`paycore.config.reset_settings` runs
whenever a different function is invoked than the one those caches were read for.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from infra.local.template import ACCOUNT_ID, FunctionSpec

log = logging.getLogger("infra.local")

# Credentials moto accepts; never real ones (the launcher drops AWS_PROFILE and friends).
FAKE_CREDENTIALS = dict.fromkeys(
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"), "testing"
)


def runtime_environment(spec: FunctionSpec, *, region: str) -> dict[str, str]:
    """The variables Lambda itself sets for a function (reserved: a template cannot declare them)."""
    return {
        **FAKE_CREDENTIALS,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": spec.physical_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.physical_name}",
        "_HANDLER": spec.handler,
    }


def function_environment(spec: FunctionSpec, *, endpoint_url: str | None) -> dict[str, str]:
    """The template's variables of a function plus what pointing it at moto needs."""
    env = dict(spec.environment)
    env["POWERTOOLS_TRACE_DISABLED"] = "1"  # no X-Ray daemon here
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return env


class LayeredEnviron(MutableMapping[str, str]):
    """``os.environ`` with a per-thread layer: a thread inside :meth:`using` sees only that mapping.

    Threads outside any layer (the gateway's own, the launcher) see and change the process
    environment as usual."""

    def __init__(self, base: MutableMapping[str, str]):
        self.base = base
        self._local = threading.local()

    def _current(self) -> MutableMapping[str, str]:
        layer: MutableMapping[str, str] | None = getattr(self._local, "layer", None)
        return self.base if layer is None else layer

    @contextmanager
    def using(self, layer: MutableMapping[str, str]) -> Iterator[None]:
        previous = getattr(self._local, "layer", None)
        self._local.layer = layer
        try:
            yield
        finally:
            self._local.layer = previous

    def __getitem__(self, key: str) -> str:
        return self._current()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._current()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._current()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._current()))

    def __len__(self) -> int:
        return len(self._current())

    def copy(self) -> dict[str, str]:
        return dict(self._current())

    def __repr__(self) -> str:
        return f"LayeredEnviron({len(self)} variables)"


@dataclass
class LocalLambdaContext:
    """The context object Lambda passes to a handler (the attributes Powertools reads)."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """An invocation that failed: the handler raised, ran past its Timeout, or never loaded."""

    def __init__(self, function: str, kind: str, message: str, error_type: str = ""):
        super().__init__(f"{function}: {kind}: {message}")
        self.function = function
        self.kind = kind  # "error", "timeout" or "init"
        self.message = message
        self.error_type = error_type


@dataclass
class Invocation:
    result: Any
    request_id: str
    duration_ms: float


@dataclass
class _Loaded:
    spec: FunctionSpec
    env: dict[str, str]  # the function's whole environment; a handler's writes stay in it, as in a container
    lock: threading.Lock = field(default_factory=threading.Lock)
    handler: Callable[[Any, Any], Any] | None = None
    init_error: str | None = None
    uses_resolver: bool = False  # an event-handler resolver in its module: see the module's docstring


def _has_resolver(module: object) -> bool:
    try:
        from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
    except ImportError:  # no Powertools: no resolver
        return False
    return any(isinstance(value, BaseRouter) for value in vars(module).values())


def _reset_settings() -> None:
    from paycore.config import reset_settings

    reset_settings()


class FunctionRuntime:
    """Loads and invokes the template's functions; use as a context manager (installs the layered
    ``os.environ`` on enter and restores the original on exit)."""

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        *,
        region: str,
        endpoint_url: str | None,
        on_env_change: Callable[[], None] = _reset_settings,
    ):
        self.region = region
        self.endpoint_url = endpoint_url
        self.specs = dict(specs)
        self._on_env_change = on_env_change
        self._functions: dict[str, _Loaded] = {}
        self._settings_owner: object = None
        self._settings_lock = threading.Lock()
        self._resolver_lock = threading.Lock()  # one resolver invocation at a time: see the module's docstring
        self._environ: LayeredEnviron | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FunctionRuntime:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._environ is None:
            self._environ = LayeredEnviron(os.environ)
            os.environ = self._environ  # type: ignore[assignment]  # noqa: B003 - replaced on purpose, see the class

    def close(self) -> None:
        if self._environ is not None and os.environ is self._environ:
            os.environ = self._environ.base  # type: ignore[assignment]  # noqa: B003
        self._environ = None

    def environment_of(self, logical_id: str) -> dict[str, str]:
        spec = self.specs[logical_id]
        return {
            **runtime_environment(spec, region=self.region),
            **function_environment(spec, endpoint_url=self.endpoint_url),
        }

    @contextmanager
    def environment(self, env: Mapping[str, str], owner: object) -> Iterator[MutableMapping[str, str]]:
        """Run the block with ``env`` over the process environment (for this thread only).

        ``owner`` names whose environment it is; paycore's cached settings are dropped when it
        differs from the last one they were read for."""
        if self._environ is None:
            raise RuntimeError("the function runtime is not open")
        layer = env if isinstance(env, dict) else dict(env)
        with self._environ.using(layer):
            with self._settings_lock:
                if self._settings_owner != owner:
                    self._on_env_change()
                    self._settings_owner = owner
            yield layer

    def load(self, logical_id: str) -> _Loaded:
        """Import a function's handler module in its own environment (its init phase)."""
        loaded = self._functions.get(logical_id)
        if loaded is not None:
            return loaded
        spec = self.specs[logical_id]
        loaded = _Loaded(spec=spec, env={**self._base_snapshot(), **self.environment_of(logical_id)})
        with loaded.lock, self.environment(loaded.env, logical_id):
            try:
                module = importlib.import_module(spec.module)
                loaded.handler = getattr(module, spec.handler_function)
                loaded.uses_resolver = _has_resolver(module)
            except Exception as exc:  # an import error fails every invocation, as Runtime.ImportModuleError does
                loaded.init_error = f"{type(exc).__name__}: {exc}"
                log.error("%s failed to load %s:\n%s", logical_id, spec.module, traceback.format_exc())
        self._functions[logical_id] = loaded
        return loaded

    def load_all(self) -> dict[str, str]:
        """Load every function; returns the ones that failed, with why."""
        return {lid: err for lid in self.specs if (err := self.load(lid).init_error) is not None}

    def _base_snapshot(self) -> dict[str, str]:
        base = self._environ.base if self._environ is not None else os.environ
        return dict(base)

    # ------------------------------------------------------------------ invoke
    def context_for(self, logical_id: str, request_id: str) -> LocalLambdaContext:
        spec = self.specs[logical_id]
        return LocalLambdaContext(
            function_name=spec.physical_name,
            memory_limit_in_mb=spec.memory,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{spec.physical_name}",
            aws_request_id=request_id,
            timeout_seconds=spec.timeout,
            log_group_name=f"/aws/lambda/{spec.physical_name}",
        )

    def invoke(self, logical_id: str, event: Any, *, request_id: str | None = None) -> Invocation:
        """Call a function's handler with ``event``; raises :class:`FunctionError` when it fails.

        A handler cannot be stopped from outside its thread, so one that returns after its
        Timeout is counted as timed out (Lambda would have stopped it and reported an error)."""
        if logical_id not in self.specs:
            raise KeyError(f"template.yaml declares no function {logical_id!r}")
        loaded = self.load(logical_id)
        request_id = request_id or str(uuid.uuid4())
        if loaded.handler is None:
            raise FunctionError(logical_id, "init", loaded.init_error or "the handler did not load")
        context = self.context_for(logical_id, request_id)
        shared = self._resolver_lock if loaded.uses_resolver else nullcontext()
        with shared, loaded.lock, self.environment(loaded.env, logical_id):
            started = time.monotonic()
            try:
                result = loaded.handler(event, context)
            except Exception as exc:
                log.error("%s failed (request %s):\n%s", logical_id, request_id, traceback.format_exc())
                raise FunctionError(logical_id, "error", str(exc), type(exc).__name__) from exc
            finally:
                elapsed = time.monotonic() - started
        if elapsed > loaded.spec.timeout:
            log.error(
                "%s ran %.1f s, past its Timeout of %d s (request %s)",
                logical_id,
                elapsed,
                loaded.spec.timeout,
                request_id,
            )
            raise FunctionError(logical_id, "timeout", f"Task timed out after {loaded.spec.timeout} seconds")
        return Invocation(result=result, request_id=request_id, duration_ms=elapsed * 1000)

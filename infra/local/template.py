"""Read template.yaml and resolve what the local stack and the tests need from it.

template.yaml is the single list of tables, topics, secrets, functions and routes: the local
stack and the integration tests derive everything from it, so they cannot drift from what
`sam deploy` creates. CloudFormation's short-form tags (!Ref, !Sub, ...) are read into their
long form, and the few intrinsic functions the template uses are evaluated for a stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"  # moto's default account

_TAGS = {
    "Ref": "Ref",
    "Sub": "Fn::Sub",
    "GetAtt": "Fn::GetAtt",
    "If": "Fn::If",
    "Not": "Fn::Not",
    "Equals": "Fn::Equals",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "ImportValue": "Fn::ImportValue",
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "Condition": "Condition",
}


class _CfnLoader(yaml.SafeLoader):
    pass


def _make_constructor(long_name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if long_name == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {long_name: value}

    return construct


for _short, _long in _TAGS.items():
    _CfnLoader.add_constructor(f"!{_short}", _make_constructor(_long))


@lru_cache(maxsize=4)
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_CfnLoader)  # noqa: S506  # nosec B506  # SafeLoader subclass with CFN tags only


@dataclass
class Resolver:
    """Evaluates intrinsic functions for one stage. ``physical`` maps logical ids to what Ref gives."""

    template: dict[str, Any]
    region: str = "us-east-1"
    parameters: dict[str, Any] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def parameter_values(self) -> dict[str, Any]:
        values = {name: spec.get("Default") for name, spec in self.template.get("Parameters", {}).items()}
        values.update(self.parameters)
        return values

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": f"serverless-payments-{self.parameter_values().get('Stage', 'local')}",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        params = self.parameter_values()
        if name in params:
            return params[name]
        if name in self.physical:
            return self.physical[name]
        return self.default_physical_name(name)

    def default_physical_name(self, logical_id: str) -> str:
        resource = self.template["Resources"].get(logical_id)
        if resource is None:
            raise KeyError(f"template.yaml has no parameter or resource {logical_id!r}")
        props = resource.get("Properties", {})
        for key in ("TableName", "TopicName", "Name", "FunctionName", "QueueName", "LayerName", "EventBusName"):
            if key in props:
                name = str(self.resolve(props[key]))
                if resource["Type"] == "AWS::SNS::Topic":
                    return f"arn:aws:sns:{self.region}:{ACCOUNT_ID}:{name}"
                if resource["Type"] == "AWS::SQS::Queue":
                    return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{name}"
                return name
        return logical_id

    def get_att(self, logical_id: str, attribute: str) -> str:
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        name = self.ref(logical_id)
        kind = self.template["Resources"][logical_id]["Type"]
        service = {
            "AWS::DynamoDB::Table": f"dynamodb:{self.region}:{ACCOUNT_ID}:table/",
            "AWS::SQS::Queue": f"sqs:{self.region}:{ACCOUNT_ID}:",
            "AWS::Serverless::Function": f"lambda:{self.region}:{ACCOUNT_ID}:function:",
            "AWS::Logs::LogGroup": f"logs:{self.region}:{ACCOUNT_ID}:log-group:",
            "AWS::Events::EventBus": f"events:{self.region}:{ACCOUNT_ID}:event-bus/",
        }.get(kind)
        if attribute == "Arn" and service:
            short = str(name).rsplit("/", 1)[-1]
            return f"arn:aws:{service}{short}"
        return f"{name}.{attribute}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(parts[0], parts[1])
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(self.resolve(i)) for i in items)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, extra = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, extra = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name:
                logical, attr = name.split(".", 1)
                return str(self.get_att(logical, attr))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


@dataclass(frozen=True)
class Route:
    function: str  # logical id
    method: str
    path: str  # as declared, with {params}
    authorizer: str | None  # logical id of the authorizer function, or None
    authorizer_name: str | None = None  # the name under the Api's Auth.Authorizers


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str  # directory under functions/
    handler: str
    environment: dict[str, Any]
    events: dict[str, Any]
    physical_name: str = ""  # FunctionName as deployed (the logical id where the template names none)
    timeout: int = 3  # seconds; Lambda's default where neither the function nor Globals set one
    memory: int = 128  # MB; Lambda's default
    code_dir: Path | None = None  # CodeUri, resolved against the template's folder

    @property
    def module(self) -> str:
        """The importable module of the handler: CodeUri as a dotted path below the repository root
        plus the handler's file (``functions/channels/`` + ``app.lambda_handler`` -> ``functions.channels.app``)."""
        base = self.code_dir.relative_to(ROOT).parts if self.code_dir else ("functions", self.name)
        return ".".join([*base, *self.handler.split(".")[:-1]])

    @property
    def handler_function(self) -> str:
        return self.handler.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class AuthorizerSpec:
    """A Lambda authorizer of an Api's ``Auth.Authorizers`` (SAM's defaults filled in)."""

    name: str
    function: str  # logical id of the authorizer function
    payload_type: str  # TOKEN or REQUEST
    ttl: int  # Identity.ReauthorizeEvery; SAM/API Gateway default 300 s, 0 turns caching off
    header: str = "Authorization"  # TOKEN: the header that carries the token
    validation_expression: str | None = None  # TOKEN: a regex the token must match
    headers: tuple[str, ...] = ()  # REQUEST identity sources
    query_strings: tuple[str, ...] = ()
    stage_variables: tuple[str, ...] = ()
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiSpec:
    """What the gateway needs of the AWS::Serverless::Api: stage, gateway responses, binary types."""

    logical_id: str
    stage: str
    gateway_responses: dict[str, dict[str, Any]]
    binary_media_types: tuple[str, ...]


@dataclass(frozen=True)
class SqsSource:
    """An ``SQS`` event of a function: the queue it polls and how (SAM's defaults filled in)."""

    function: str
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool
    enabled: bool
    has_filters: bool


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in template["Resources"].items() if res.get("Type") == kind}


def _function_setting(template: dict[str, Any], props: dict[str, Any], key: str, default: Any) -> Any:
    return props.get(key, template.get("Globals", {}).get("Function", {}).get(key, default))


def functions(template: dict[str, Any], resolver: Resolver, *, base_dir: Path = ROOT) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function with its resolved environment (Globals merged in).

    ``base_dir`` is the folder of the template (CodeUri is relative to it)."""
    global_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    specs: dict[str, FunctionSpec] = {}
    for lid, res in resources_of_type(template, "AWS::Serverless::Function").items():
        props = res["Properties"]
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        resolved = {k: resolver.resolve(v) for k, v in env.items()}
        specs[lid] = FunctionSpec(
            logical_id=lid,
            name=Path(props["CodeUri"]).name,
            handler=_function_setting(template, props, "Handler", ""),
            environment={k: ("" if v is None else str(v)) for k, v in resolved.items()},
            events=props.get("Events", {}),
            physical_name=str(resolver.resolve(props["FunctionName"])) if "FunctionName" in props else lid,
            timeout=int(resolver.resolve(_function_setting(template, props, "Timeout", 3))),
            memory=int(resolver.resolve(_function_setting(template, props, "MemorySize", 128))),
            code_dir=(base_dir / props["CodeUri"]).resolve(),
        )
    return specs


def global_environment(template: dict[str, Any], resolver: Resolver) -> dict[str, str]:
    """The Globals environment every function shares, resolved for the stage."""
    variables = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    resolved = {k: resolver.resolve(v) for k, v in variables.items()}
    return {k: ("" if v is None else str(v)) for k, v in resolved.items()}


def authorizers(template: dict[str, Any]) -> dict[str, AuthorizerSpec]:
    """Every Lambda authorizer declared under an Api's ``Auth.Authorizers``, by name."""
    found: dict[str, AuthorizerSpec] = {}
    for api in resources_of_type(template, "AWS::Serverless::Api").values():
        for name, spec in api.get("Properties", {}).get("Auth", {}).get("Authorizers", {}).items():
            arn = spec.get("FunctionArn", {})
            target = arn.get("Fn::GetAtt", [None])[0] if isinstance(arn, dict) else None
            if not target:
                continue  # a Cognito authorizer, or one the local stack cannot call
            identity = spec.get("Identity", {}) or {}
            found[name] = AuthorizerSpec(
                name=name,
                function=target,
                payload_type=str(spec.get("FunctionPayloadType", "TOKEN")).upper(),
                ttl=int(identity.get("ReauthorizeEvery", 300)),
                header=identity.get("Header", "Authorization"),
                validation_expression=identity.get("ValidationExpression"),
                headers=tuple(identity.get("Headers", ())),
                query_strings=tuple(identity.get("QueryStrings", ())),
                stage_variables=tuple(identity.get("StageVariables", ())),
                context=tuple(identity.get("Context", ())),
            )
    return found


def _api_authorizers(template: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    """Authorizer name -> function logical id, and the API's default authorizer."""
    mapping = {name: spec.function for name, spec in authorizers(template).items()}
    default: str | None = None
    for api in resources_of_type(template, "AWS::Serverless::Api").values():
        default = api.get("Properties", {}).get("Auth", {}).get("DefaultAuthorizer", default)
    return mapping, default


def routes(template: dict[str, Any]) -> list[Route]:
    """Every Api event of every function, with the authorizer that guards it (if any)."""
    by_name, default = _api_authorizers(template)
    found: list[Route] = []
    for lid, res in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in res["Properties"].get("Events", {}).values():
            if event.get("Type") != "Api":
                continue
            props = event["Properties"]
            auth_name = props.get("Auth", {}).get("Authorizer", default)
            authorizer = None if auth_name in (None, "NONE") else by_name.get(auth_name)
            if auth_name not in (None, "NONE") and authorizer is None:
                raise ValueError(f"{lid}: route {props['Path']} names unknown authorizer {auth_name!r}")
            found.append(
                Route(
                    function=lid,
                    method=props["Method"].upper(),
                    path=props["Path"],
                    authorizer=authorizer,
                    authorizer_name=None if authorizer is None else auth_name,
                )
            )
    return found


def api(template: dict[str, Any], resolver: Resolver) -> ApiSpec:
    """The REST API the routes belong to (the template declares one AWS::Serverless::Api)."""
    apis = resources_of_type(template, "AWS::Serverless::Api")
    if len(apis) != 1:
        raise ValueError(f"the local stack serves one AWS::Serverless::Api; template.yaml declares {len(apis)}")
    ((lid, res),) = apis.items()
    props = res.get("Properties", {})
    # SAM writes "/" in media types as "~1" (JSON pointer escaping), e.g. image~1png.
    binary = tuple(str(t).replace("~1", "/") for t in resolver.resolve(props.get("BinaryMediaTypes", [])))
    return ApiSpec(
        logical_id=lid,
        stage=str(resolver.resolve(props.get("StageName", "Prod"))),
        gateway_responses=resolver.resolve(props.get("GatewayResponses", {})),
        binary_media_types=binary,
    )


def sqs_sources(template: dict[str, Any], resolver: Resolver) -> list[SqsSource]:
    """Every ``SQS`` event of every function (the queue ARN resolved for the stage)."""
    found: list[SqsSource] = []
    for lid, res in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in res["Properties"].get("Events", {}).values():
            if event.get("Type") != "SQS":
                continue
            props = resolver.resolve(event["Properties"])
            found.append(
                SqsSource(
                    function=lid,
                    queue_arn=str(props["Queue"]),
                    batch_size=int(props.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    enabled=bool(props.get("Enabled", True)),
                    has_filters=bool(props.get("FilterCriteria")),
                )
            )
    return found


def schedules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Functions triggered by Schedule/ScheduleV2 events: logical id -> the event's properties."""
    found: dict[str, dict[str, Any]] = {}
    for lid, res in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in res["Properties"].get("Events", {}).values():
            if event.get("Type") in ("Schedule", "ScheduleV2"):
                found[lid] = event.get("Properties", {})
    return found

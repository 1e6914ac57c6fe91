"""Create, in a moto endpoint, every resource that template.yaml declares and the code talks to.

Used by the local stack (against moto server) and by the integration tests (inside
``moto.mock_aws``): both get exactly the tables, indexes, topics, queues, buses, secrets and
parameters of the template, never a second hand-written list.
"""

from __future__ import annotations

import json
from typing import Any

from infra.local.template import Resolver, load_template, resources_of_type

_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "StreamSpecification",
)


def _table_args(props: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {k: props[k] for k in _TABLE_KEYS if k in props}
    args["BillingMode"] = props.get("BillingMode", "PAY_PER_REQUEST")
    if args["BillingMode"] == "PROVISIONED":
        args["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    for gsi in args.get("GlobalSecondaryIndexes", []):
        gsi.setdefault("Projection", {"ProjectionType": "ALL"})
    return args


# Queue properties that are SQS attributes of the same name (values are sent as strings).
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


def _queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    attributes = {
        k: str(props[k]).lower() if isinstance(props[k], bool) else str(props[k])
        for k in _QUEUE_ATTRIBUTES
        if k in props
    }
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    return attributes


def _generated_secret(spec: dict[str, Any] | None) -> str | None:
    """What Secrets Manager's GenerateSecretString makes: the template object with one random key
    (letters and digits only here, which every ExcludeCharacters/ExcludePunctuation setting allows)."""
    if not spec or "GenerateStringKey" not in spec:
        return None
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    return json.dumps({**json.loads(spec.get("SecretStringTemplate", "{}")), spec["GenerateStringKey"]: value})


def provision(
    session: Any,
    *,
    stage: str = "local",
    region: str = "us-east-1",
    endpoint_url: str | None = None,
    parameters: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
) -> Resolver:
    """Create the template's resources with ``session`` (a boto3 Session); returns the resolver
    whose ``physical`` map holds every created name/ARN, for building function environments.
    ``template`` defaults to the repository's template.yaml (tests pass a smaller one)."""
    template = template if template is not None else load_template()
    resolver = Resolver(template=template, region=region, parameters={"Stage": stage, **(parameters or {})})

    def client(service: str) -> Any:
        return session.client(service, region_name=region, endpoint_url=endpoint_url)

    ddb = client("dynamodb")
    for lid, res in resources_of_type(template, "AWS::DynamoDB::Table").items():
        props = resolver.resolve(res["Properties"])
        name = props["TableName"]
        ddb.create_table(TableName=name, **_table_args(props))
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        resolver.physical[lid] = name

    sqs = None
    queues = resources_of_type(template, "AWS::SQS::Queue")
    # A queue's RedrivePolicy names its dead-letter queue, which must exist first.
    for lid, res in sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1].get("Properties", {})):
        sqs = sqs or client("sqs")
        props = resolver.resolve(res.get("Properties", {}))
        name = props.get("QueueName") or lid
        url = sqs.create_queue(QueueName=name, Attributes=_queue_attributes(props))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        resolver.physical[lid] = url
        resolver.attributes[(lid, "Arn")] = arn
        resolver.attributes[(lid, "QueueName")] = name

    sns = client("sns")
    for lid, res in resources_of_type(template, "AWS::SNS::Topic").items():
        props = resolver.resolve(res.get("Properties", {}))
        arn = sns.create_topic(Name=props.get("TopicName") or lid)["TopicArn"]
        resolver.physical[lid] = arn
        resolver.attributes[(lid, "TopicName")] = props.get("TopicName") or lid

    events = None
    for lid, res in resources_of_type(template, "AWS::Events::EventBus").items():
        events = events or client("events")
        props = resolver.resolve(res.get("Properties", {}))
        arn = events.create_event_bus(Name=props["Name"])["EventBusArn"]
        resolver.physical[lid] = props["Name"]
        resolver.attributes[(lid, "Arn")] = arn
        resolver.attributes[(lid, "Name")] = props["Name"]

    secrets = None
    for lid, res in resources_of_type(template, "AWS::SecretsManager::Secret").items():
        secrets = secrets or client("secretsmanager")
        props = resolver.resolve(res.get("Properties", {}))
        kwargs: dict[str, Any] = {"Name": props.get("Name") or lid}
        # Secret values are never in the template; the local seed (infra/local/seed.py) or the
        # test fixtures put real values in after creation. A placeholder keeps the secret readable.
        kwargs["SecretString"] = (
            props.get("SecretString") or _generated_secret(props.get("GenerateSecretString")) or json.dumps({})
        )
        arn = secrets.create_secret(**kwargs)["ARN"]
        resolver.physical[lid] = arn
        resolver.attributes[(lid, "Id")] = arn

    ssm = None
    for lid, res in resources_of_type(template, "AWS::SSM::Parameter").items():
        ssm = ssm or client("ssm")
        props = resolver.resolve(res.get("Properties", {}))
        ssm.put_parameter(
            Name=props["Name"], Value=str(props["Value"]), Type=props.get("Type", "String"), Overwrite=True
        )
        resolver.physical[lid] = props["Name"]

    sesv2 = None
    for lid, res in resources_of_type(template, "AWS::SES::EmailIdentity").items():
        sesv2 = sesv2 or client("sesv2")
        props = resolver.resolve(res.get("Properties", {}))
        sesv2.create_email_identity(EmailIdentity=props["EmailIdentity"])  # moto marks it verified at once
        resolver.physical[lid] = props["EmailIdentity"]

    return resolver

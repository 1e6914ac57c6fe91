"""The Powertools idempotency store on DynamoDB (the ``IdempotencyTable`` of template.yaml).

The table's partition key is ``id`` and its TTL attribute ``expiration``: Powertools' defaults.
One persistence layer per container and table, on the shared boto3 client.
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from paycore.aws import client, on_reset
from paycore.config import order_settings


@cache
def _layer(table: str) -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=table, boto3_client=client("dynamodb"))


def persistence_layer() -> DynamoDBPersistenceLayer:
    """Dropped with the clients by :func:`paycore.aws.reset_clients`, so it never outlives its client."""
    return _layer(order_settings().idempotency_table)


@on_reset
def _reset() -> None:
    _layer.cache_clear()

"""The bench's request recorder on moto: it counts what botocore sends, meters it by DynamoDB's rules,
ignores its own reads, and replays requests on mirror tables (bench/recorder.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bench.recorder import Recorder, Replayer, Tally

pytestmark = pytest.mark.integration

REGION = "us-east-1"


def _table(ddb: Any, name: str) -> None:
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "due", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_due",
                "KeySchema": [{"AttributeName": "due", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    from moto.dynamodb.models import dynamodb_backends

    with mock_aws():
        _table(boto3.client("dynamodb", region_name=REGION), "t")
        _table(boto3.client("dynamodb", region_name=REGION), "t-mirror")
        rec = Recorder(dynamodb_backends["123456789012"][REGION])
        rec.install()
        try:
            yield rec
        finally:
            rec.uninstall()


def test_counts_each_request_and_meters_reads_and_writes(recorder: Recorder) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    with recorder.capture() as calls:
        ddb.get_item(TableName="t", Key={"pk": {"S": "missing"}}, ConsistentRead=True)
        ddb.put_item(TableName="t", Item={"pk": {"S": "a"}, "blob": {"S": "x" * 1500}})
        ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})
    tally = Tally(calls)
    assert [c.operation for c in calls] == ["GetItem", "PutItem", "GetItem"]
    assert [c.read_units for c in calls] == [1.0, 0.0, 0.5]  # a miss costs a read; eventual reads half
    assert calls[1].write_units == 2  # 1,511 bytes: two 1 KB units
    assert tally.count("dynamodb") == 3


def test_a_transaction_costs_two_units_per_item_and_index_entries_one(recorder: Recorder) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    with recorder.capture() as calls:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "due": {"N": "5"}}}},
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}}},
            ]
        )
    (call,) = calls
    assert call.write_units == 2 + 2 + 1  # two items doubled, and "a" enters the by_due index
    assert call.index_write_units == 1


def test_a_failed_condition_is_recorded_and_still_costs_a_write(recorder: Recorder) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.put_item(TableName="t", Item={"pk": {"S": "a"}})
    with recorder.capture() as calls, pytest.raises(ClientError):
        ddb.put_item(TableName="t", Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)")
    (call,) = calls
    assert call.error == "ConditionalCheckFailedException"
    assert call.write_units == 1


def test_a_query_is_metered_on_the_items_it_reads_not_those_its_filter_keeps(recorder: Recorder) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    for i in range(3):
        ddb.put_item(TableName="t", Item={"pk": {"S": f"k{i}"}, "due": {"N": "7"}, "blob": {"S": "x" * 2000}})
    with recorder.capture() as calls:
        answer = ddb.query(
            TableName="t",
            IndexName="by_due",
            KeyConditionExpression="#d = :d",
            FilterExpression="pk = :none",
            ExpressionAttributeNames={"#d": "due"},
            ExpressionAttributeValues={":d": {"N": "7"}, ":none": {"S": "nothing"}},
        )
    assert answer["Count"] == 0
    (call,) = calls  # the recorder's own re-query is not counted
    assert call.read_units == 1.0  # ~6 KB read, eventually consistent: two 4 KB units, halved


def test_replay_on_mirror_tables_meets_the_same_conditions(recorder: Recorder) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    with recorder.capture() as calls:
        ddb.put_item(TableName="t", Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)")
    replayer = Replayer(recorder, {"t": "t-mirror"})
    with recorder.capture() as replayed:
        replayer.run(replayer.prepare(calls))
    assert replayed == []  # replays are not recorded
    mirrored = ddb.get_item(TableName="t-mirror", Key={"pk": {"S": "a"}})
    assert mirrored["Item"] == {"pk": {"S": "a"}}


def test_a_cancelled_transaction_leaves_the_items_it_named_as_they_were() -> None:
    from bench.stack import item_level_transactions

    with mock_aws(), item_level_transactions():
        ddb = boto3.client("dynamodb", region_name=REGION)
        _table(ddb, "t")
        ddb.put_item(TableName="t", Item={"pk": {"S": "kept"}, "n": {"N": "1"}})
        with pytest.raises(ClientError, match="TransactionCanceled"):
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}}}},
                    {
                        "Update": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "kept"}},
                            "UpdateExpression": "SET n = :2",
                            "ExpressionAttributeValues": {":2": {"N": "2"}},
                        }
                    },
                    {
                        "ConditionCheck": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "absent"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        assert "Item" not in ddb.get_item(TableName="t", Key={"pk": {"S": "new"}})
        assert ddb.get_item(TableName="t", Key={"pk": {"S": "kept"}})["Item"]["n"] == {"N": "1"}


def test_garbage_collections_are_told_apart_by_where_they_ran(recorder: Recorder) -> None:
    """bench/growth.py's GcLog counts a collection in the job's own time only outside AWS requests and
    the recorder's metering (the recorder's phase); one forced inside a request is counted as inside."""
    import gc

    from bench.growth import GcLog

    ddb = boto3.client("dynamodb", region_name=REGION)
    phases: list[str | None] = []

    def collect_during_request(**_: Any) -> None:
        phases.append(recorder.phase())
        gc.collect(0)

    ddb.meta.events.register("before-send", collect_during_request)
    gc.disable()  # only the collections forced here: none triggered by allocation
    try:
        with recorder.capture(), GcLog(recorder) as log:
            ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})
            assert recorder.phase() is None
            gc.collect(0)
    finally:
        gc.enable()
    assert phases == ["request"]
    assert [gen for gen, _ in log.inside] == [0]
    assert [gen for gen, _ in log.own] == [0]
    assert log.summary()["own_collections"] == [1, 0, 0]

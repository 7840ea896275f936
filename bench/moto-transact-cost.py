"""What one fenced status write costs in the AWS emulator as its table grows.

Barrage's controller writes status in a TransactWriteItems (the write, a check that the spec
item exists, a check on the lease epoch). moto copies the whole table, stream log included,
once per item of the transaction so that it can roll back; this prints the mean latency of that
transaction and of a plain UpdateItem of the same item after 0, 500, 1 500 and 3 500 writes.

    eval "$(scripts/services.sh env)"
    "$BARRAGE_AWS_PYTHON" bench/moto-transact-cost.py

Every call goes to AWS_ENDPOINT_URL (moto on 127.0.0.1); the table is deleted at the end.
"""

import os
import time
import uuid

import boto3

ROUNDS = 20
FILLS = (0, 500, 1000, 2000)


def client():
    return boto3.client(
        "dynamodb",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def create_table(d, table):
    d.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    d.put_item(TableName=table, Item=key("lease", "lease") | {"epoch": {"N": "1"}})
    d.put_item(TableName=table, Item=key("lt#a", "spec"))


def key(pk, sk):
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def fill(d, table, count, start):
    for i in range(start, start + count):
        item = key(f"lt#{i % 100}", f"agent#{i}") | {"doc": {"S": "x" * 500}}
        d.put_item(TableName=table, Item=item)


def mean_ms(call):
    began = time.perf_counter()
    for i in range(ROUNDS):
        call(i)
    return (time.perf_counter() - began) / ROUNDS * 1000.0


def fenced(d, table):
    def call(i):
        d.transact_write_items(
            TransactItems=[
                {"Update": {
                    "TableName": table, "Key": key("lt#a", "status"),
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(i)}},
                }},
                {"ConditionCheck": {
                    "TableName": table, "Key": key("lt#a", "spec"),
                    "ConditionExpression": "attribute_exists(pk)",
                }},
                {"ConditionCheck": {
                    "TableName": table, "Key": key("lease", "lease"),
                    "ConditionExpression": "epoch <= :e",
                    "ExpressionAttributeValues": {":e": {"N": "1"}},
                }},
            ]
        )
    return call


def plain(d, table):
    def call(i):
        d.update_item(
            TableName=table, Key=key("lt#a", "status"),
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": str(i)}},
        )
    return call


def main():
    d = client()
    table = "barrage-txcost-" + uuid.uuid4().hex[:8]
    create_table(d, table)
    try:
        print("| writes before | TransactWriteItems (3 items) | UpdateItem |")
        print("| --: | --: | --: |")
        written = 0
        for count in FILLS:
            fill(d, table, count, written)
            written += count
            tx, up = mean_ms(fenced(d, table)), mean_ms(plain(d, table))
            print(f"| {written} | {tx:.1f} ms | {up:.1f} ms |")
            written += 2 * ROUNDS
    finally:
        d.delete_table(TableName=table)


if __name__ == "__main__":
    main()

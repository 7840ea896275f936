"""Reads a topic back with clients that are not Barrage's (kafka-python, fastavro).

Prints one JSON line per record: {"partition", "offset", "timestamp" (ms, the record's Kafka
timestamp), "value" (decoded; timestamps as ms since the epoch)}. Values are decoded as Avro (with --avro SCHEMA_FILE, after
the 5-byte Confluent frame with --confluent) or as JSON (--json).

Usage: read_back.py BOOTSTRAP TOPIC EXPECTED TIMEOUT_S (--avro FILE [--confluent] | --json)
"""

import datetime
import io
import json
import sys
import time

import fastavro
from kafka import KafkaConsumer


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(o):
    """Timestamps (fastavro reads timestamp-millis as datetimes) as ms since the epoch."""
    if isinstance(o, datetime.datetime):
        return (o - EPOCH) // datetime.timedelta(milliseconds=1)
    return str(o)


def main(argv):
    bootstrap, topic, expected, timeout = argv[1], argv[2], int(argv[3]), float(argv[4])
    rest = argv[5:]
    if "--avro" in rest:
        with open(rest[rest.index("--avro") + 1]) as f:
            schema = fastavro.parse_schema(json.load(f))
        skip = 5 if "--confluent" in rest else 0

        def decode(b):
            return fastavro.schemaless_reader(io.BytesIO(b[skip:]), schema)

    elif "--json" in rest:
        decode = json.loads
    else:
        sys.exit("say --avro FILE or --json")
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=2000,
    )
    seen = 0
    deadline = time.monotonic() + timeout
    # The iterator ends after 2 s without records: stop then once `expected` came (so that
    # duplicates past it are printed too), or at the deadline.
    while time.monotonic() < deadline:
        for m in consumer:
            line = {
                "partition": m.partition,
                "offset": m.offset,
                "timestamp": m.timestamp,
                "value": decode(m.value),
            }
            print(json.dumps(line, default=plain))
            seen += 1
            if time.monotonic() >= deadline:
                break
        if seen >= expected:
            break
    consumer.close()


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""The peer spotdrill's lag sampler is measured against: per-partition consumer lag in messages
and in seconds, computed the usual way with confluent-kafka (librdkafka underneath, like
spotdrill):

- committed offsets: AdminClient.list_consumer_group_offsets, one request per group;
- high watermarks and log starts: AdminClient.list_offsets (OffsetSpec.latest / earliest);
- timestamps: fetch the records themselves every snapshot (assign the wanted partitions at the
  wanted offsets, poll until each has delivered one record). Nothing is cached between snapshots.

The consumer gets the same low-latency fetch settings as spotdrill's reader (fetch.wait.max.ms
and fetch.queue.backoff.ms of 10 ms), so what differs is the method.

The lag definition is spotdrill's (DESIGN.md): newest record's timestamp minus the timestamp of
the last consumed record (the committed record where C-1 is gone).

Prints one JSON object: {"samples", "median_ms", "snapshots_ms", "lag_seconds": {group: max},
"lag_messages": {group: sum}} (the last snapshot's lag).
"""

import argparse
import json
import statistics
import time

from confluent_kafka import ConsumerGroupTopicPartitions, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec


def fetch_timestamps(consumer, topic, wanted, timeout):
    """wanted: {partition: offset} -> {partition: timestamp_ms}"""
    if not wanted:
        return {}
    consumer.assign([TopicPartition(topic, p, o) for p, o in wanted.items()])
    found = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(wanted) and time.monotonic() < deadline:
        msg = consumer.poll(0.1)
        if msg is None or msg.error():
            continue
        p = msg.partition()
        if p in wanted and p not in found and msg.offset() >= wanted[p]:
            found[p] = msg.timestamp()[1]
    return found


def snapshot(admin, consumer, topic, partitions, groups, timeout):
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    latest = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=timeout)
    earliest = admin.list_offsets({tp: OffsetSpec.earliest() for tp in tps}, request_timeout=timeout)
    high = {tp.partition: f.result().offset for tp, f in latest.items()}
    low = {tp.partition: f.result().offset for tp, f in earliest.items()}
    result, messages = {}, {}
    for group in groups:
        futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)])
        committed = {tp.partition: tp.offset for tp in futures[group].result().topic_partitions}
        newest, reference = {}, {}
        messages[group] = 0
        for p in range(partitions):
            c = committed.get(p, -1)
            if c < 0:
                c = low[p]
            if c >= high[p]:
                continue
            messages[group] += high[p] - c
            newest[p] = high[p] - 1
            reference[p] = max(c - 1, low[p])
        ts_newest = fetch_timestamps(consumer, topic, newest, timeout)
        ts_reference = fetch_timestamps(consumer, topic, reference, timeout)
        lag = 0.0
        for p in newest:
            if p in ts_newest and p in ts_reference:
                lag = max(lag, (ts_newest[p] - ts_reference[p]) / 1000.0)
        result[group] = lag
    return result, messages


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--group", action="append", required=True)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--no-warmup", action="store_true", help="skip the first, untimed snapshot")
    args = ap.parse_args()

    admin = AdminClient({"bootstrap.servers": args.brokers})
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": "lag-peer",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            # Give the peer the same low-latency fetch settings spotdrill's reader uses, so the
            # comparison is between methods, not defaults (the default 500 ms fetch.wait.max.ms
            # alone costs the peer about 500 ms per re-assignment).
            "fetch.wait.max.ms": 10,
            "fetch.queue.backoff.ms": 10,
        }
    )
    times, lag, messages = [], {}, {}
    if not args.no_warmup:
        snapshot(admin, consumer, args.topic, args.partitions, args.group, args.timeout)
    for _ in range(args.samples):
        t0 = time.monotonic()
        lag, messages = snapshot(
            admin, consumer, args.topic, args.partitions, args.group, args.timeout
        )
        times.append((time.monotonic() - t0) * 1000.0)
    consumer.close()
    print(
        json.dumps(
            {
                "samples": len(times),
                "median_ms": statistics.median(times),
                "snapshots_ms": times,
                "lag_seconds": lag,
                "lag_messages": messages,
            }
        )
    )


if __name__ == "__main__":
    main()

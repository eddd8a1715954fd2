"""A read-process-write loop on Kafka transactions, run as a real subprocess by the crash tests.

``python kafka_eos_worker.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID [BATCH]``

Copies every record of INPUT (all partitions, consumer group GROUP) to OUTPUT (same
partition, same key and value, lineage headers), committing the input offsets in the same
transaction every BATCH records, and exits 0 once every input partition is consumed and
committed. Prints ``committed N`` after each commit (the test kills it at random points).

Order matters on restart: the transactional producer is opened *before* the group consumer.
Its ``init_transactions()`` aborts the transaction a killed predecessor left open, including
the offsets that transaction sent; a ``read_committed`` consumer asking for the group's
offsets before that would wait on them (UNSTABLE_OFFSET_COMMIT) until the transaction timed out.
"""

from __future__ import annotations

import sys

from streams.errors import TransactionAbortableError
from streams.log.kafka import KafkaLog


def main(bootstrap: str, source: str, sink: str, group: str, transactional_id: str, batch: int = 50) -> int:
    log = KafkaLog(bootstrap)
    producer = log.transactional_producer(transactional_id)
    consumer = log.group_consumer(group, [source], instance_id=transactional_id)
    partitions = consumer.assignment()
    ends = log.end_offsets(partitions)
    committed = 0
    while True:
        records = consumer.poll(batch, timeout=0.2)
        if records:
            producer.begin()
            for r in records:
                lineage = (("src.partition", b"%d" % r.partition), ("src.offset", b"%d" % r.offset))
                producer.produce(sink, r.value, r.key, partition=r.partition, headers=lineage)
            offsets = {tp: consumer.position(*tp) for tp in partitions}
            try:
                producer.commit(offsets, consumer)
            except TransactionAbortableError:
                producer.abort()
                for tp in partitions:
                    consumer.seek(*tp, consumer.committed(*tp) or 0)
                continue
            committed += len(records)
            print(f"committed {committed}", flush=True)
        elif all(consumer.position(*tp) >= ends[tp] for tp in partitions):
            break
    producer.close()
    consumer.close()
    log.close()
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(*args[:5], *(int(a) for a in args[5:])))  # type: ignore[arg-type]

"""Cost of one embedded transaction commit touching P partitions (1 record each, offsets for a group), and of
``end_offset`` on a caught-up reader (BENCH.md "Commit protocol 2"; run by hand, not by ``make bench``)::

    .venv/bin/python tests/benchmarks/commit_cost.py /tmp/bench-commit [partitions=17] [commits=400]

Compare with the code before a change by running the same script with ``PYTHONPATH`` at an export of that commit.
"""
import json
import shutil
import sys
import time

from streams.log.base import TopicSpec
from streams.log.embedded import EmbeddedLog

root, parts, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 17, int(sys.argv[3]) if len(sys.argv) > 3 else 400
shutil.rmtree(root, ignore_errors=True)
log = EmbeddedLog(root)
log.create_topic(TopicSpec("in", partitions=8))
log.create_topic(TopicSpec("out", partitions=parts))
consumer = log.group_consumer("g", ["in"])
producer = log.transactional_producer("p")
reader = log.reader([("out", p, 0) for p in range(parts)])
samples = []
ends = []
for i in range(n):
    producer.begin()
    for p in range(parts):
        producer.produce("out", b"x" * 100, partition=p, timestamp_ns=i)
    t0 = time.perf_counter()
    producer.commit({("in", q): i for q in range(8)}, consumer)
    samples.append(time.perf_counter() - t0)
    reader.poll(10_000)
    t0 = time.perf_counter()
    for p in range(parts):
        reader.end_offset("out", p)
    ends.append(time.perf_counter() - t0)
samples.sort()
ends.sort()
print(json.dumps({"partitions": parts, "commits": n, "commit_p50_us": round(samples[n // 2] * 1e6, 1),
                  "commit_p99_us": round(samples[n * 99 // 100] * 1e6, 1),
                  "end_offset_per_partition_p50_us": round(ends[n // 2] * 1e6 / parts, 2)}))
log.close()
shutil.rmtree(root, ignore_errors=True)

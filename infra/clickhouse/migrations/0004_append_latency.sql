-- When each record was appended, and the latency per stage measured with it (issue 14).
-- Neither log keeps an append time per record: a record's timestamp is its event time (Kafka topics use
-- CreateTime; the embedded log stores the producer's timestamp), and outputs inherit their input's, so
-- log_ts differences are 0. What both logs do keep is the runtime's commit manifests (state.<processor>):
-- every processor output is written inside a transaction whose Commit record names the exact input
-- ranges it consumed and the wall clock of the commit (committed_ts), i.e. when those outputs were
-- appended. The sink now takes the state topics too: Commit -> tape.commits, SnapshotChunk ->
-- tape.snapshot_chunks (one row per record, as every table). The demo's digest hashes output topics
-- only, so none of this changes it.

CREATE TABLE IF NOT EXISTS tape.commits
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from (state.<processor>)',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short): Commit',
    `src_topic` LowCardinality(String) COMMENT 'lineage (none for manifests)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `processor` LowCardinality(String),
    `instance` String,
    `task` Int32,
    `seq` Int64,
    `inputs` Array(Tuple(topic String, partition Int32, start Int64, end Int64)) COMMENT 'input ranges [start, end) the batch consumed',
    `records_in` Int64,
    `records_out` Int64,
    `dead_letters` Int64,
    `snapshot_chunks` Int32,
    `snapshot_bytes` Int64,
    `committed_ts` DateTime64(9, 'UTC') COMMENT 'wall clock of the commit: when the batch''s outputs were appended',
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Commit manifests of the processors (state.<processor>): input ranges and commit time of every transaction';

CREATE TABLE IF NOT EXISTS tape.snapshot_chunks
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from (state.<processor>)',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short): SnapshotChunk',
    `src_topic` LowCardinality(String) COMMENT 'lineage (none for snapshots)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `processor` LowCardinality(String),
    `task` Int32,
    `seq` Int64,
    `index` Int32,
    `count` Int32,
    `data` String,
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Processor state snapshots (state.<processor>), cut in chunks as on the log';

-- One row per input range a commit consumed (ranges that did not move left out).
CREATE OR REPLACE VIEW tape.commit_inputs AS
SELECT
    processor, task, seq, committed_ts,
    tupleElement(i, 1) AS input_topic, tupleElement(i, 2) AS input_partition,
    tupleElement(i, 3) AS start_offset, tupleElement(i, 4) AS end_offset
FROM tape.commits FINAL
ARRAY JOIN inputs AS i
WHERE tupleElement(i, 4) > tupleElement(i, 3);

-- Every record a processor wrote (it has lineage), with its writer and when it was appended: the commit of
-- that processor whose input range holds the record's source. The writer of a topic is the processor that
-- declares it as an output (dlq.P: P); tests/unit/test_tape_writers.py checks this list against the processors.
CREATE OR REPLACE VIEW tape.record_appends AS
SELECT
    r.tbl AS tbl, r.topic AS topic, r.partition AS partition, r.offset AS offset, r.log_ts AS log_ts,
    r.src_topic AS src_topic, r.src_partition AS src_partition, r.src_offset AS src_offset,
    r.writer AS processor, c.committed_ts AS appended_ts
FROM
(
    SELECT tbl, toString(topic) AS topic, partition, offset, log_ts, toString(src_topic) AS src_topic, src_partition, src_offset,
        if(startsWith(topic, 'dlq.'), substring(topic, 5),
           transform(toString(topic),
               ['md.normalized', 'risk.decisions', 'orders.accepted', 'order.events', 'fills', 'md.book',
                'ledger.entries', 'positions', 'exec.reports', 'recon.breaks', 'recon.status', 'ops.commands'],
               ['normalize', 'risk', 'risk', 'matching', 'matching', 'matching',
                'ledger', 'ledger', 'dropcopy', 'reconcile', 'reconcile', 'reconcile'], '')) AS writer
    FROM tape.records
    WHERE src_partition >= 0
) AS r
ASOF INNER JOIN
(
    SELECT toString(processor) AS processor, toString(input_topic) AS input_topic, input_partition, start_offset, end_offset,
        committed_ts
    FROM tape.commit_inputs
) AS c
    ON c.processor = r.writer AND c.input_topic = r.src_topic AND c.input_partition = r.src_partition
    AND c.start_offset <= r.src_offset
WHERE r.src_offset < c.end_offset;

-- Latency per stage: from the append of a record's input to its own append (ns), both from commit manifests.
-- A stage whose input came from outside the processors (md.raw.*, orders.in, an operator's ops.commands) has
-- no append time to start from and is left out. Columns of 0002 kept; processor and both times added.
CREATE OR REPLACE VIEW tape.stage_latency AS
SELECT
    concat(o.src_topic, ' -> ', o.topic) AS stage,
    o.log_ts AS ts,
    toInt64(toUnixTimestamp64Nano(o.appended_ts) - toUnixTimestamp64Nano(i.appended_ts)) AS latency_ns,
    o.topic AS topic, o.partition AS partition, o.offset AS offset,
    o.processor AS processor, o.appended_ts AS appended_ts, i.appended_ts AS input_appended_ts
FROM tape.record_appends AS o
INNER JOIN tape.record_appends AS i ON i.topic = o.src_topic AND i.partition = o.src_partition AND i.offset = o.src_offset;

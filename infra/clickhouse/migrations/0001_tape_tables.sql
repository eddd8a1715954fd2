-- The tape: one table per record family. Applied by `hftstream tape init` (idempotent: IF NOT EXISTS).
-- Every table: ReplacingMergeTree ORDER BY (topic, partition, offset), so a record sunk twice is one row
-- after a merge or with FINAL; insert deduplication (non_replicated_deduplication_window) drops a retried
-- batch with the same token. Money is scaled Int64 (scale: instruments.price_scale / size_scale,
-- ledger_entries.amount_scale); event times DateTime64(9, 'UTC'); enums LowCardinality(String).
-- Columns after the common ones are the Avro fields of the record (a *_ts_ns field becomes *_ts).

CREATE DATABASE IF NOT EXISTS tape;

CREATE TABLE IF NOT EXISTS tape.md_trades
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `venue` LowCardinality(String),
    `symbol` LowCardinality(String),
    `trade_id` String,
    `price` Int64,
    `size` Int64,
    `aggressor_side` LowCardinality(Nullable(String)),
    `exchange_ts` DateTime64(9, 'UTC'),
    `recv_ts` DateTime64(9, 'UTC'),
    `seq` Nullable(Int64),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Trades: venue trades (md.normalized) and internal trades (md.book); prices and sizes scaled by the instrument';

CREATE TABLE IF NOT EXISTS tape.md_quotes
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `venue` LowCardinality(String),
    `symbol` LowCardinality(String),
    `bid_price` Nullable(Int64),
    `bid_size` Int64,
    `ask_price` Nullable(Int64),
    `ask_size` Int64,
    `exchange_ts` DateTime64(9, 'UTC'),
    `recv_ts` DateTime64(9, 'UTC'),
    `seq` Nullable(Int64),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Top-of-book quotes from md.normalized';

CREATE TABLE IF NOT EXISTS tape.md_book
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `venue` LowCardinality(String),
    `symbol` LowCardinality(String),
    `action` LowCardinality(String),
    `side` LowCardinality(String),
    `price` Int64,
    `size` Int64,
    `order_id` Nullable(String),
    `exchange_ts` DateTime64(9, 'UTC'),
    `recv_ts` DateTime64(9, 'UTC'),
    `seq` Nullable(Int64),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Book deltas: venue books (md.normalized) and the internal book (md.book)';

CREATE TABLE IF NOT EXISTS tape.venue_status
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `venue` LowCardinality(String),
    `symbol` LowCardinality(Nullable(String)),
    `status` LowCardinality(Nullable(String)),
    `reason` Nullable(String),
    `feed_state` LowCardinality(Nullable(String)),
    `channel` Nullable(Int32),
    `last_seq` Nullable(Int64),
    `exchange_ts` DateTime64(9, 'UTC'),
    `recv_ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Venue trading status and heartbeats (record_type VenueStatus / Heartbeat)';

CREATE TABLE IF NOT EXISTS tape.md_raw
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `venue` LowCardinality(String),
    `format` LowCardinality(String),
    `seq` Nullable(Int64),
    `symbol` LowCardinality(Nullable(String)),
    `payload` String,
    `recv_ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Raw venue messages as received (md.raw.<venue>), payload unparsed';

CREATE TABLE IF NOT EXISTS tape.instruments
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `symbol` LowCardinality(String),
    `instrument_id` String,
    `price_scale` Int32,
    `size_scale` Int32,
    `tick_size` Int64,
    `lot_size` Int64,
    `currency` LowCardinality(String),
    `status` LowCardinality(String),
    `updated_ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Instrument reference data (refdata.instruments): the price and size scales of every symbol';

CREATE TABLE IF NOT EXISTS tape.orders
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `account` LowCardinality(String),
    `symbol` LowCardinality(String),
    `client_order_id` String,
    `side` LowCardinality(Nullable(String)),
    `order_type` LowCardinality(Nullable(String)),
    `tif` LowCardinality(Nullable(String)),
    `price` Nullable(Int64),
    `quantity` Nullable(Int64),
    `expire_ts` Nullable(DateTime64(9, 'UTC')),
    `reduce_only` Nullable(Bool),
    `post_only` Nullable(Bool),
    `reason` Nullable(String),
    `ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Order commands: orders.in (before risk) and orders.accepted (after); record_type NewOrder / CancelOrder / ReplaceOrder';

CREATE TABLE IF NOT EXISTS tape.risk_decisions
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `account` LowCardinality(String),
    `symbol` LowCardinality(String),
    `client_order_id` String,
    `command` LowCardinality(String),
    `reason` LowCardinality(String),
    `detail` Nullable(String),
    `ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Pre-trade risk decisions, one per order command';

CREATE TABLE IF NOT EXISTS tape.order_events
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `account` LowCardinality(String),
    `symbol` LowCardinality(String),
    `client_order_id` String,
    `order_id` Nullable(String),
    `side` LowCardinality(Nullable(String)),
    `order_type` LowCardinality(Nullable(String)),
    `tif` LowCardinality(Nullable(String)),
    `price` Nullable(Int64),
    `quantity` Nullable(Int64),
    `fill_id` Nullable(String),
    `last_price` Nullable(Int64),
    `last_qty` Nullable(Int64),
    `cum_qty` Nullable(Int64),
    `leaves_qty` Nullable(Int64),
    `cancelled_qty` Nullable(Int64),
    `expired_qty` Nullable(Int64),
    `command` LowCardinality(Nullable(String)),
    `reason_code` LowCardinality(Nullable(String)),
    `reason` Nullable(String),
    `ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Order lifecycle events from matching; record_type OrderAccepted / OrderRejected / OrderRested / OrderPartiallyFilled / OrderFilled / OrderCancelled / OrderExpired';

CREATE TABLE IF NOT EXISTS tape.fills
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `fill_id` String,
    `trade_id` String,
    `account` LowCardinality(String),
    `symbol` LowCardinality(String),
    `client_order_id` String,
    `order_id` String,
    `side` LowCardinality(String),
    `price` Int64,
    `quantity` Int64,
    `liquidity` LowCardinality(String),
    `venue` LowCardinality(String),
    `ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Executions, one per side per match';

CREATE TABLE IF NOT EXISTS tape.ops_commands
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `command_id` String,
    `operator_id` LowCardinality(String),
    `account` LowCardinality(Nullable(String)),
    `symbol` LowCardinality(Nullable(String)),
    `reason` Nullable(String),
    `engaged` Nullable(Bool),
    `enabled` Nullable(Bool),
    `limit` LowCardinality(Nullable(String)),
    `value` Nullable(Int64),
    `signature` String,
    `ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Signed operator commands; record_type Halt / Resume / ReduceOnly / KillSwitch / CancelAll / SetLimit';

CREATE TABLE IF NOT EXISTS tape.ledger_entries
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `entry_id` String,
    `txn_id` String,
    `account` LowCardinality(String),
    `direction` LowCardinality(String),
    `asset` LowCardinality(String),
    `amount` Int64,
    `amount_scale` Int32,
    `ref_id` Nullable(String),
    `ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Double-entry ledger postings; amount scaled by amount_scale';

CREATE TABLE IF NOT EXISTS tape.positions
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `account` LowCardinality(String),
    `symbol` LowCardinality(String),
    `net_qty` Int64,
    `cost` Int64,
    `realized_pnl` Int64,
    `fills` Int64,
    `fees_paid` Int64,
    `mark_price` Nullable(Int64),
    `unrealized_pnl` Nullable(Int64),
    `last_fill_id` Nullable(String),
    `ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Position per account and instrument after each change (positions topic)';

CREATE TABLE IF NOT EXISTS tape.exec_reports
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `venue` LowCardinality(String),
    `account` LowCardinality(String),
    `symbol` LowCardinality(String),
    `client_order_id` String,
    `venue_order_id` Nullable(String),
    `exec_id` String,
    `exec_type` LowCardinality(String),
    `side` LowCardinality(String),
    `last_price` Nullable(Int64),
    `last_qty` Int64,
    `cum_qty` Int64,
    `leaves_qty` Int64,
    `venue_ts` DateTime64(9, 'UTC'),
    `recv_ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Venue drop copy (exec.reports)';

CREATE TABLE IF NOT EXISTS tape.recon_breaks
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `break_id` String,
    `kind` LowCardinality(String),
    `venue` LowCardinality(String),
    `account` LowCardinality(String),
    `symbol` LowCardinality(String),
    `client_order_id` Nullable(String),
    `exec_id` Nullable(String),
    `internal_value` Nullable(Int64),
    `venue_value` Nullable(Int64),
    `detail` String,
    `ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Divergences between our fills and the drop copy of the venue';

CREATE TABLE IF NOT EXISTS tape.recon_status
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `venue` LowCardinality(String),
    `state` LowCardinality(String),
    `open_breaks` Int64,
    `matched` Int64,
    `checked_through_ts` DateTime64(9, 'UTC'),
    `ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Reconciliation state per venue';

CREATE TABLE IF NOT EXISTS tape.dead_letters
(
    `topic` LowCardinality(String) COMMENT 'log topic the record was read from',
    `partition` Int32 COMMENT 'log partition',
    `offset` Int64 COMMENT 'log offset: (topic, partition, offset) identifies the record',
    `log_ts` DateTime64(9, 'UTC') COMMENT 'log timestamp of the record (ns; ms-granular on Kafka)',
    `log_key` String COMMENT 'key bytes of the record (empty when none)',
    `record_type` LowCardinality(String) COMMENT 'Avro record name (short), e.g. Trade',
    `src_topic` LowCardinality(String) COMMENT 'lineage: topic of the record that caused this one (empty when none)',
    `src_partition` Int32 COMMENT 'lineage: its partition (-1 when none)',
    `src_offset` Int64 COMMENT 'lineage: its offset (-1 when none)',
    `processor` LowCardinality(String),
    `reason_code` LowCardinality(String),
    `reason` String,
    `source_topic` LowCardinality(String),
    `source_partition` Int32,
    `source_offset` Int64,
    `source_ts` DateTime64(9, 'UTC'),
    `key` Nullable(String),
    `value` String,
    `headers` Array(Tuple(key String, value String)),
    `ts` DateTime64(9, 'UTC'),
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the tape sink inserted the row'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(log_ts)
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Dead letters: those of the processors (dlq.<processor>) and those of the tape sink itself (processor = tape)';

-- The sink's progress: one row per inserted batch, written after the batch's rows. The sink resumes each
-- partition after max(last_offset); offsets beyond it that some table already holds (a crash between a batch's
-- inserts) are found and not inserted again.
CREATE TABLE IF NOT EXISTS tape.sink_batches
(
    `topic` LowCardinality(String),
    `partition` Int32,
    `first_offset` Int64,
    `last_offset` Int64,
    `records` UInt32 COMMENT 'records in the batch (rows inserted + dead letters + rows already present)',
    `dead_letters` UInt32,
    `tables` Array(LowCardinality(String)),
    `insert_us` UInt64 COMMENT 'time spent inserting the batch, microseconds',
    `sunk_at` DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, first_offset, last_offset)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'The committed position of the tape sink: one row per batch, after its rows';

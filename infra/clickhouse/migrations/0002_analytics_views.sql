-- Analytics views over the tape (contract: the view names and columns in VIEWS.md; columns may be added, never renamed).
-- Plain views, not materialized: every view reads its tables with FINAL, so a record sunk twice
-- argMax over a Nullable column goes through tuple(): plain argMax skips NULLs (a later NULL mark would lose).
-- (same topic, partition, offset) counts once. Money stays scaled Int64 or Decimal, never Float64.
-- Re-runnable: CREATE OR REPLACE VIEW.

-- Trades with their source: 'internal' (md.book, our matching engine) or 'venue' (md.normalized).
CREATE OR REPLACE VIEW tape.trades AS
SELECT
    if(topic = 'md.book', 'internal', 'venue') AS source,
    venue, symbol, trade_id, price, size, aggressor_side, exchange_ts AS ts,
    topic, partition, offset, log_ts
FROM tape.md_trades FINAL;

CREATE OR REPLACE VIEW tape.ohlcv_1s AS
SELECT
    source, venue, symbol,
    toDateTime64(toStartOfSecond(ts), 9, 'UTC') AS bucket,
    argMin(price, (ts, topic, partition, offset)) AS open,
    max(price) AS high,
    min(price) AS low,
    argMax(price, (ts, topic, partition, offset)) AS close,
    toInt64(sum(size)) AS volume,
    toUInt64(count()) AS trades
FROM tape.trades
GROUP BY source, venue, symbol, bucket;

-- 1 min bars roll up the 1 s bars (bucket order is trade-time order within a minute).
CREATE OR REPLACE VIEW tape.ohlcv_1m AS
SELECT source, venue, symbol, minute AS bucket, open, high, low, close, volume, trades
FROM
(
    SELECT
        source, venue, symbol,
        toDateTime64(toStartOfMinute(bucket), 9, 'UTC') AS minute,
        argMin(open, bucket) AS open,
        max(high) AS high,
        min(low) AS low,
        argMax(close, bucket) AS close,
        toInt64(sum(volume)) AS volume,
        toUInt64(sum(trades)) AS trades
    FROM tape.ohlcv_1s
    GROUP BY source, venue, symbol, minute
);

-- vwap: sum(price * size) / sum(size) in price-scale units, exact to 6 decimals (rounded toward zero).
CREATE OR REPLACE VIEW tape.vwap_1m AS
SELECT
    source, venue, symbol,
    toDateTime64(toStartOfMinute(ts), 9, 'UTC') AS bucket,
    toDecimal128(sum(toInt128(price) * size), 6) / toDecimal128(sum(size), 0) AS vwap,
    toInt64(sum(size)) AS volume,
    toUInt64(count()) AS trades
FROM tape.trades
GROUP BY source, venue, symbol, bucket
HAVING sum(size) != 0;

CREATE OR REPLACE VIEW tape.bbo AS
SELECT
    venue, symbol, exchange_ts AS ts,
    bid_price, bid_size, ask_price, ask_size,
    CAST(ask_price - bid_price, 'Nullable(Int64)') AS spread,
    topic, partition, offset
FROM tape.md_quotes FINAL;

CREATE OR REPLACE VIEW tape.time_and_sales AS
SELECT ts, source, venue, symbol, price, size, aggressor_side, trade_id, topic, partition, offset
FROM tape.trades;

-- Per account and symbol: client commands (tape.orders) against fills (tape.fills).
CREATE OR REPLACE VIEW tape.order_activity AS
SELECT
    account, symbol,
    toUInt64(sum(o.orders)) AS orders,
    toUInt64(sum(o.cancels)) AS cancels,
    toUInt64(sum(o.replaces)) AS replaces,
    toUInt64(sum(o.fills)) AS fills,
    toInt64(sum(o.order_qty)) AS order_qty,
    toInt64(sum(o.filled_qty)) AS filled_qty,
    if(fills = 0, NULL, (orders + cancels + replaces) / fills) AS order_to_trade,
    if(order_qty = 0, NULL, filled_qty / order_qty) AS fill_ratio,
    if(orders = 0, NULL, cancels / orders) AS cancel_rate
FROM
(
    SELECT account, symbol,
        countIf(record_type = 'NewOrder') AS orders,
        countIf(record_type = 'CancelOrder') AS cancels,
        countIf(record_type = 'ReplaceOrder') AS replaces,
        toUInt64(0) AS fills,
        sumIf(ifNull(quantity, 0), record_type = 'NewOrder') AS order_qty,
        toInt64(0) AS filled_qty
    FROM tape.orders FINAL
    GROUP BY account, symbol
    UNION ALL
    SELECT account, symbol, 0, 0, 0, count(), 0, sum(quantity)
    FROM tape.fills FINAL
    GROUP BY account, symbol
) AS o
GROUP BY account, symbol;

CREATE OR REPLACE VIEW tape.risk_rejects_1m AS
SELECT
    toDateTime64(toStartOfMinute(ts), 9, 'UTC') AS bucket,
    reason,
    toUInt64(count()) AS rejects
FROM tape.risk_decisions FINAL
WHERE reason != 'ACCEPTED'
GROUP BY bucket, reason;

-- An operator command (ops.commands) and what came of it: risk refuses a command by dead-lettering
-- it (the dead letter's source is the command's record); otherwise it was applied. Cancels: the
-- CANCEL decisions risk issued because of it (their lineage names the command).
CREATE OR REPLACE VIEW tape.trading_state_changes AS
SELECT
    c.ts AS ts, c.record_type AS command, c.account AS account, c.symbol AS symbol,
    c.operator_id AS operator_id, c.command_id AS command_id, c.reason AS reason,
    c.engaged AS engaged, c.enabled AS enabled, c.limit AS limit, c.value AS value,
    if(d.reason_code = '', 'applied', 'refused') AS outcome,
    d.reason_code AS refusal_code,
    toUInt64(ifNull(x.cancels, 0)) AS cancels_issued,
    c.topic AS topic, c.partition AS partition, c.offset AS offset
FROM tape.ops_commands AS c FINAL
LEFT JOIN
(
    SELECT source_topic, source_partition, source_offset, any(reason_code) AS reason_code
    FROM tape.dead_letters FINAL
    GROUP BY source_topic, source_partition, source_offset
) AS d ON d.source_topic = c.topic AND d.source_partition = c.partition AND d.source_offset = c.offset
LEFT JOIN
(
    SELECT src_topic, src_partition, src_offset, count() AS cancels
    FROM tape.risk_decisions FINAL
    WHERE command = 'CANCEL'
    GROUP BY src_topic, src_partition, src_offset
) AS x ON x.src_topic = c.topic AND x.src_partition = c.partition AND x.src_offset = c.offset;

-- The newest snapshot of every (account, symbol), amounts still scaled (money at price_scale + size_scale).
CREATE OR REPLACE VIEW tape.positions_latest AS
SELECT
    account, symbol,
    argMax(net_qty, k) AS net_qty,
    argMax(cost, k) AS cost,
    argMax(realized_pnl, k) AS realized_pnl,
    argMax(tuple(unrealized_pnl), k).1 AS unrealized_pnl,
    argMax(fees_paid, k) AS fees_paid,
    argMax(tuple(mark_price), k).1 AS mark_price,
    argMax(fills, k) AS fills,
    max(snap_ts) AS ts
FROM (SELECT *, ts AS snap_ts, (partition, offset) AS k FROM tape.positions FINAL)  -- log order: the ledger's order
GROUP BY account, symbol;

-- Each instrument's newest scales and currency.
CREATE OR REPLACE VIEW tape.instrument_scales AS
SELECT
    symbol,
    argMax(price_scale, (updated_ts, topic, partition, offset)) AS price_scale,
    argMax(size_scale, (updated_ts, topic, partition, offset)) AS size_scale,
    argMax(currency, (updated_ts, topic, partition, offset)) AS currency
FROM tape.instruments FINAL
GROUP BY symbol;

-- PnL per account (and currency) at the end of every minute in which one of its positions changed:
-- for every symbol, its last snapshot at or before the bucket, summed. Done with deltas: a symbol's
-- change since its previous bucket, summed per bucket and accumulated. Amounts are in currency
-- units: the scaled money divided by 10^(price_scale + size_scale) of the instrument, as Decimal.
CREATE OR REPLACE VIEW tape.pnl_1m AS
SELECT
    account, currency, bucket,
    sum(d_realized) OVER w AS realized_pnl,
    sum(d_unrealized) OVER w AS unrealized_pnl,
    sum(d_fees) OVER w AS fees,
    realized_pnl + unrealized_pnl - fees AS total_pnl
FROM
(
    SELECT account, currency, bucket,
        sum(realized - prev_realized) AS d_realized,
        sum(unrealized - prev_unrealized) AS d_unrealized,
        sum(fees - prev_fees) AS d_fees
    FROM
    (
        SELECT account, currency, bucket, realized, unrealized, fees,
            lagInFrame(realized, 1, toDecimal128(0, 18)) OVER s AS prev_realized,
            lagInFrame(unrealized, 1, toDecimal128(0, 18)) OVER s AS prev_unrealized,
            lagInFrame(fees, 1, toDecimal128(0, 18)) OVER s AS prev_fees
        FROM
        (
            SELECT p.account AS account, p.symbol AS symbol, i.currency AS currency, p.bucket AS bucket,
                toDecimal128(p.realized, 18) / toDecimal128(intExp10(i.price_scale + i.size_scale), 0) AS realized,
                toDecimal128(p.unrealized, 18) / toDecimal128(intExp10(i.price_scale + i.size_scale), 0) AS unrealized,
                toDecimal128(p.fees, 18) / toDecimal128(intExp10(i.price_scale + i.size_scale), 0) AS fees
            FROM
            (
                -- a key's snapshots in log order (the ledger's order; ts can go back when a mark moves): the bucket
                -- is the minute of the latest time known so far, so the last bucket holds the key's last snapshot
                SELECT account, symbol, toDateTime64(toStartOfMinute(known_ts), 9, 'UTC') AS bucket,
                    argMax(realized_pnl, (partition, offset)) AS realized,
                    ifNull(argMax(tuple(unrealized_pnl), (partition, offset)).1, 0) AS unrealized,
                    argMax(fees_paid, (partition, offset)) AS fees
                FROM
                (
                    SELECT account, symbol, partition, offset, realized_pnl, unrealized_pnl, fees_paid,
                        max(ts) OVER (PARTITION BY account, symbol ORDER BY partition, offset
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS known_ts
                    FROM tape.positions FINAL
                )
                GROUP BY account, symbol, bucket
            ) AS p
            INNER JOIN tape.instrument_scales AS i ON i.symbol = p.symbol
        )
        WINDOW s AS (PARTITION BY account, symbol ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    )
    GROUP BY account, currency, bucket
)
WINDOW w AS (PARTITION BY account, currency ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

CREATE OR REPLACE VIEW tape.recon_breaks_by_kind AS
SELECT kind, venue, toUInt64(count()) AS breaks, min(ts) AS first_ts, max(ts) AS last_ts
FROM tape.recon_breaks FINAL
GROUP BY kind, venue;

-- Every record on the tape: its address, log time and lineage (the trace and stage latency read it).
CREATE OR REPLACE VIEW tape.records AS
SELECT 'md_trades' AS tbl, topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.md_trades FINAL
UNION ALL SELECT 'md_quotes', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.md_quotes FINAL
UNION ALL SELECT 'md_book', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.md_book FINAL
UNION ALL SELECT 'venue_status', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.venue_status FINAL
UNION ALL SELECT 'instruments', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.instruments FINAL
UNION ALL SELECT 'orders', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.orders FINAL
UNION ALL SELECT 'risk_decisions', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.risk_decisions FINAL
UNION ALL SELECT 'order_events', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.order_events FINAL
UNION ALL SELECT 'fills', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.fills FINAL
UNION ALL SELECT 'ops_commands', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.ops_commands FINAL
UNION ALL SELECT 'ledger_entries', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.ledger_entries FINAL
UNION ALL SELECT 'positions', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.positions FINAL
UNION ALL SELECT 'exec_reports', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.exec_reports FINAL
UNION ALL SELECT 'recon_breaks', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.recon_breaks FINAL
UNION ALL SELECT 'recon_status', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.recon_status FINAL
UNION ALL SELECT 'dead_letters', topic, partition, offset, log_ts, record_type, src_topic, src_partition, src_offset FROM tape.dead_letters FINAL;

-- One row per record with lineage whose source is on the tape: stage 'src_topic -> topic',
-- latency = its log time minus its source's log time (ns; ms-granular on Kafka).
CREATE OR REPLACE VIEW tape.stage_latency AS
SELECT
    concat(r.src_topic, ' -> ', r.topic) AS stage,
    r.log_ts AS ts,
    toInt64(toUnixTimestamp64Nano(r.log_ts) - toUnixTimestamp64Nano(s.log_ts)) AS latency_ns,
    r.topic AS topic, r.partition AS partition, r.offset AS offset
FROM (SELECT * FROM tape.records WHERE src_partition >= 0) AS r
INNER JOIN (SELECT topic, partition, offset, log_ts FROM tape.records) AS s
    ON s.topic = r.src_topic AND s.partition = r.src_partition AND s.offset = r.src_offset;

CREATE OR REPLACE VIEW tape.dlq_counts_1m AS
SELECT
    toDateTime64(toStartOfMinute(ts), 9, 'UTC') AS bucket,
    processor, reason_code,
    toUInt64(count()) AS letters
FROM tape.dead_letters FINAL
GROUP BY bucket, processor, reason_code;

-- Cancel rejects (hftstream.orders.OrderCancelRejected, FIX 35=9) on the tape, and the views that count them;
-- fills still awaiting their drop-copy report. Re-runnable: ADD COLUMN IF NOT EXISTS, CREATE OR REPLACE VIEW.

ALTER TABLE tape.order_events
    ADD COLUMN IF NOT EXISTS `response_to` LowCardinality(Nullable(String)) COMMENT 'OrderCancelRejected: CANCEL or REPLACE (FIX 434)' AFTER `reason`,
    ADD COLUMN IF NOT EXISTS `cxl_rej_reason` Nullable(Int32) COMMENT 'OrderCancelRejected: FIX 102 CxlRejReason (0 too late, 1 unknown order, 99 other)' AFTER `response_to`,
    ADD COLUMN IF NOT EXISTS `ord_status` LowCardinality(Nullable(String)) COMMENT 'OrderCancelRejected: the order''s status (FIX 39)' AFTER `cxl_rej_reason`;

ALTER TABLE tape.order_events MODIFY COMMENT 'Order lifecycle events from matching; record_type OrderAccepted / OrderRejected / OrderCancelRejected / OrderRested / OrderPartiallyFilled / OrderFilled / OrderCancelled / OrderExpired';

-- Per account and symbol: client commands (tape.orders, topic orders.in), fills, and matching's answers
-- to cancels and replaces (cancel rejects). Columns of 0002 unchanged; the new ones come last.
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
    if(orders = 0, NULL, cancels / orders) AS cancel_rate,
    toUInt64(sum(o.cancel_rejects)) AS cancel_rejects,
    toUInt64(sum(o.replace_rejects)) AS replace_rejects,
    if(cancels = 0, NULL, cancel_rejects / cancels) AS cancel_reject_rate
FROM
(
    SELECT account, symbol,
        countIf(record_type = 'NewOrder') AS orders,
        countIf(record_type = 'CancelOrder') AS cancels,
        countIf(record_type = 'ReplaceOrder') AS replaces,
        toUInt64(0) AS fills,
        sumIf(ifNull(quantity, 0), record_type = 'NewOrder') AS order_qty,
        toInt64(0) AS filled_qty,
        toUInt64(0) AS cancel_rejects,
        toUInt64(0) AS replace_rejects
    FROM tape.orders FINAL
    WHERE topic = 'orders.in'
    GROUP BY account, symbol
    UNION ALL
    SELECT account, symbol, 0, 0, 0, count(), 0, sum(quantity), 0, 0
    FROM tape.fills FINAL
    GROUP BY account, symbol
    UNION ALL
    SELECT account, symbol, 0, 0, 0, 0, 0, 0, countIf(response_to = 'CANCEL'), countIf(response_to = 'REPLACE')
    FROM tape.order_events FINAL
    WHERE record_type = 'OrderCancelRejected'
    GROUP BY account, symbol
) AS o
GROUP BY account, symbol;

-- Matching's cancel rejects per minute: what they answered, why, and the order's status then.
CREATE OR REPLACE VIEW tape.cancel_rejects_1m AS
SELECT
    toDateTime64(toStartOfMinute(ts), 9, 'UTC') AS bucket,
    assumeNotNull(response_to) AS response_to,
    assumeNotNull(reason_code) AS reason_code,
    assumeNotNull(cxl_rej_reason) AS cxl_rej_reason,
    assumeNotNull(ord_status) AS ord_status,
    toUInt64(count()) AS rejects
FROM tape.order_events FINAL
WHERE record_type = 'OrderCancelRejected'
GROUP BY bucket, response_to, reason_code, cxl_rej_reason, ord_status;

-- Fills with no drop-copy execution report (exec.reports PARTIAL_FILL/FILL whose exec_id is the fill_id) on the
-- tape. missing_venue = 1 once reconcile's match window closed on it (a MISSING_VENUE break); 0: still within it.
CREATE OR REPLACE VIEW tape.fills_awaiting_report AS
SELECT
    f.ts AS ts, f.account AS account, f.symbol AS symbol, f.fill_id AS fill_id, f.client_order_id AS client_order_id,
    f.side AS side, f.price AS price, f.quantity AS quantity, f.venue AS venue,
    toUInt8(b.exec_id != '') AS missing_venue,
    f.topic AS topic, f.partition AS partition, f.offset AS offset
FROM tape.fills AS f FINAL
LEFT ANTI JOIN
(
    SELECT DISTINCT exec_id FROM tape.exec_reports FINAL WHERE exec_type IN ('PARTIAL_FILL', 'FILL')
) AS r ON r.exec_id = f.fill_id
LEFT JOIN
(
    SELECT DISTINCT assumeNotNull(exec_id) AS exec_id FROM tape.recon_breaks FINAL WHERE kind = 'MISSING_VENUE' AND exec_id IS NOT NULL
) AS b ON b.exec_id = f.fill_id;

"""Pre-trade risk: client order commands in, one ``RiskDecision`` each, accepted commands on to matching.

Inputs, in rank order (the merge order within a millisecond, :mod:`streams.processors.base`):
``refdata.instruments``, ``ops.commands`` and ``md.normalized`` (global: every task reads all
of them), then ``fills``, ``order.events`` and ``orders.in`` (keyed by account, co-partitioned:
task ``p`` owns the accounts of partition ``p``). So an order sees the operator command, the
price and the fill of its own millisecond.

Outputs: ``risk.decisions`` (keyed by account): exactly one ``RiskDecision`` per order command,
``ACCEPTED`` or the first check it failed, with a ``detail`` for people; ``orders.accepted``
(keyed by symbol): the accepted commands, unchanged, for matching; and the ``CancelOrder``\\ s a
kill switch or cancel-all generates, each with its own ACCEPTED decision whose detail names
the operator command (so an audit answers "which orders did that cancel").

Checks on a NEW order, first failure wins (reason codes are ``hftstream.risk.RiskReason``)::

    UNKNOWN_SYMBOL             not in refdata.instruments
    DUPLICATE_CLIENT_ORDER_ID  the account used this client order id today
    INVALID_QUANTITY           <= 0 or off the lot grid
    INVALID_PRICE              LIMIT without a positive on-tick price, MARKET with a price
    KILL_SWITCH / HALTED       a scope covering (account, symbol) is killed / halted; HALTED also for an
                               instrument whose refdata status is not ACTIVE
    REDUCE_ONLY                the scope is reduce-only (or the order says reduce_only) and the order does
                               not shrink the position without crossing zero, open same-side orders included
    RATE_LIMIT                 the account's token bucket (max_orders_per_second, order_burst) is empty, in
                               event time (the orders' ts_ns); NEW and REPLACE spend a token, cancels do not
    NO_MARKET_DATA             no usable price; for a MARKET order, no two-sided quote
    VENUE_UNHEALTHY            the only data is from venues with a GAPPED/STALE channel or not OPEN (fail closed)
    MARKET_DATA_STALE          the only data is older than md_stale_after_ns at the order's ts_ns (fail closed)
    SPREAD_TOO_WIDE            MARKET order: spread > max_spread_bps of the mid
    PRICE_BAND                 LIMIT order: |price - reference| > price_band_bps of the reference
    MAX_ORDER_QTY              quantity > max_order_qty
    MAX_NOTIONAL               price x quantity (MARKET: the far side's price) > max_notional
    POSITION_LIMIT             |position + open same-side orders + order| > max_position (worst case)
    GROSS_EXPOSURE             sum over symbols of the worst-case |position| x mark > max_gross_exposure
    DAILY_LOSS_LIMIT           today's realized + unrealized PnL < -max_daily_loss; orders that reduce a
                               position still pass

A REPLACE runs the same checks on the order as amended (UNKNOWN_ORDER when it is not open;
its own open quantity is not counted twice); a CANCEL is refused only as UNKNOWN_ORDER: cancels
pass halts, kill switches, rate limits and stale data, since they only reduce risk. Limits are
inclusive (equal passes) and resolve most specific first (:mod:`.config`).

Open orders follow matching's answers (:mod:`.accounts`): a cancel reject (``OrderCancelRejected``)
whose status is no longer open (too late, or an order matching does not know) closes the order in
risk's view; one of a replace refuses the replace in flight (the order counts as matching holds it).

Operator commands (:mod:`.controls`) are verified (HMAC, :mod:`streams.ops.signing`), checked
against replay, and applied by every task alike. A refused command changes nothing; task 0
dead-letters it to ``dlq.risk`` with its refusal code (UNSIGNED, BAD_SIGNATURE, UNKNOWN_OPERATOR,
REPLAYED_COMMAND_ID, REPLAYED_TIMESTAMP, EXPIRED_COMMAND, INVALID_COMMAND), the original bytes and
lineage, so each refusal is recorded exactly once. A kill switch or cancel-all makes each task
cancel the open orders of its own accounts in scope.
"""

from streams.processors.risk.checks import REASON_CODES
from streams.processors.risk.config import RiskConfig, load_risk_config
from streams.processors.risk.processor import RiskProcessor

__all__ = ["REASON_CODES", "RiskConfig", "RiskProcessor", "load_risk_config"]

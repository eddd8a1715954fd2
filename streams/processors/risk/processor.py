"""The pre-trade risk processor: order commands in, one decision each, accepted commands on to matching."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

from streams.processors.base import Input, Message, Output, Processor, Reject, dump_state, load_state
from streams.processors.risk import checks as c
from streams.processors.risk.accounts import Account, OpenOrder
from streams.processors.risk.config import RiskConfig
from streams.processors.risk.controls import HALTED, KILL_SWITCH, OPS_SCHEMAS, REDUCE_ONLY, Applied, CommandRefused, Controls, scope_label
from streams.processors.risk.market import Market, View
from streams.serde.repo import SchemaRepo

DECISIONS = "risk.decisions"
ACCEPTED_TOPIC = "orders.accepted"
DECISION = "hftstream.risk.RiskDecision"
NEW_ORDER, CANCEL_ORDER, REPLACE_ORDER = "hftstream.orders.NewOrder", "hftstream.orders.CancelOrder", "hftstream.orders.ReplaceOrder"
INSTRUMENT = "hftstream.refdata.Instrument"
QUOTE, TRADE, VENUE_STATUS = "hftstream.md.Quote", "hftstream.md.Trade", "hftstream.md.VenueStatus"
FILL = "hftstream.fills.Fill"
UNEXPECTED_SCHEMA = "UNEXPECTED_SCHEMA"
SNAPSHOT_VERSION = 1
_CLOSING_EVENTS = frozenset({"hftstream.orders.OrderFilled", "hftstream.orders.OrderCancelled", "hftstream.orders.OrderExpired"})
_OPEN_STATUS = frozenset({"ACCEPTED", "PARTIALLY_FILLED"})
_QUIET = frozenset({"hftstream.md.BookDelta", "hftstream.md.Heartbeat", "hftstream.orders.OrderAccepted",
                    "hftstream.orders.OrderPartiallyFilled"})
_LIMIT_KEYS = ("MAX_ORDER_QTY", "MAX_NOTIONAL", "MAX_POSITION", "PRICE_BAND_BPS", "MAX_SPREAD_BPS",
               "MAX_ORDERS_PER_SECOND", "ORDER_BURST", "MAX_GROSS_EXPOSURE", "MAX_DAILY_LOSS")


@lru_cache(maxsize=1)
def default_repo() -> SchemaRepo:
    """The schemas operator signatures are computed over (loaded once per process)."""
    return SchemaRepo.load()


class RiskProcessor(Processor):
    """Task ``task`` of pre-trade risk: partition ``task`` of orders.in, fills and order.events, plus every global input."""

    name: ClassVar[str] = "risk"
    returns_lists: ClassVar[bool] = True  # process() returns lists: process_batch skips the copy
    config_class: ClassVar[type[RiskConfig]] = RiskConfig

    def __init__(self, config: RiskConfig, task: int, *, repo: SchemaRepo | None = None) -> None:
        self.config = config
        self.task = task
        # Rank = position: reference data, then operator commands, then market data, then what matching
        # reported (fills before order events), then client orders: at one millisecond an order sees the
        # halt, the price and the fill that came with it.
        self.inputs = (
            Input("refdata.instruments", scope="global"), Input("ops.commands", scope="global"),
            Input("md.normalized", scope="as_of"), Input("fills"), Input("order.events"), Input("orders.in"),
        )
        self.outputs = (DECISIONS, ACCEPTED_TOPIC)
        self._repo = repo or default_repo()
        self._keys = config.operator_keys()
        self._handlers = {
            NEW_ORDER: self._new, CANCEL_ORDER: self._cancel, REPLACE_ORDER: self._replace, QUOTE: self._quote,
            TRADE: self._trade, VENUE_STATUS: self._venue_status, FILL: self._fill, INSTRUMENT: self._instrument,
            **dict.fromkeys(OPS_SCHEMAS, self._ops),
            **dict.fromkeys(_CLOSING_EVENTS, self._closed),
            "hftstream.orders.OrderRejected": self._matching_rejected, "hftstream.orders.OrderRested": self._rested,
            "hftstream.orders.OrderCancelRejected": self._cancel_rejected,
        }
        self._reset()

    def _reset(self) -> None:
        cfg = self.config
        self.controls = Controls(self._repo, self._keys, replay_window_ns=cfg.replay_window_ns,
                                 max_command_age_ns=cfg.max_command_age_ns, limits=cfg.limit_table())
        self.market = Market(cfg.md_stale_after_ns)
        self.accounts: dict[str, Account] = {}
        self.instruments: dict[str, tuple[int, int, int, int, str]] = {}  # symbol -> (price_scale, size_scale, tick, lot, status)
        self.decisions: dict[str, int] = dict.fromkeys(c.REASON_CODES, 0)
        self.generated_cancels = 0
        self._limit_cache: dict[tuple[str, str], tuple[int | None, ...]] = {}
        self._money_factor: dict[str, int] = {}  # symbol -> money_scale - price_scale - size_scale
        self._limit_version = -1

    # -- the contract ----------------------------------------------------------------------

    def process(self, msg: Message) -> list[Output]:
        """Outputs for one input; raises :class:`Reject` for a refused operator command or an unexpected record."""
        handler = self._handlers.get(msg.schema)
        if handler is None:
            if msg.schema in _QUIET:
                return []
            raise Reject(UNEXPECTED_SCHEMA, f"{msg.topic} carries {msg.schema}, which risk does not read")
        return handler(msg)

    def snapshot(self) -> bytes:
        """Instruments, controls, market data, every account and the counts, as sorted compact JSON."""
        state = {
            "version": SNAPSHOT_VERSION,
            "instruments": {s: list(v) for s, v in sorted(self.instruments.items())},
            "controls": self.controls.to_json(),
            "market": self.market.to_json(),
            "accounts": {a: acct.to_json() for a, acct in sorted(self.accounts.items())},
            "counts": {"decisions": self.decisions, "generated_cancels": self.generated_cancels},
        }
        return dump_state(state)

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a :meth:`snapshot` blob (empty bytes = the initial state)."""
        self._reset()
        if not blob:
            return
        state = load_state(blob, "risk", SNAPSHOT_VERSION)
        self.instruments = {s: tuple(v) for s, v in state["instruments"].items()}  # type: ignore[misc]
        self.controls.load_json(state["controls"])
        self.market.load_json(state["market"])
        self.accounts = {a: Account.from_json(v) for a, v in state["accounts"].items()}
        self.decisions.update(state["counts"]["decisions"])
        self.generated_cancels = state["counts"]["generated_cancels"]

    def check_invariants(self) -> None:
        """Each leg's open quantity is the sum of its open orders' worst-case leaves (a bug otherwise)."""
        for name, acct in self.accounts.items():
            sums: dict[tuple[str, str], int] = {}
            for order in acct.orders.values():
                key = (order.symbol, order.side)
                sums[key] = sums.get(key, 0) + order.worst_leaves()
            for symbol, leg in acct.legs.items():
                if (leg.open_buy, leg.open_sell) != (sums.get((symbol, c.BUY), 0), sums.get((symbol, c.SELL), 0)):
                    raise AssertionError(f"risk: account {name} {symbol}: open quantity {leg.open_buy}/{leg.open_sell} "
                                         f"does not match its open orders")

    def states(self) -> dict[str, dict[str, str]]:
        """The trading state of every scope with a flag, and of ``global`` (the runtime's ``hftstream_trading_state``)."""
        return {"trading": self.controls.states()}

    def counters(self) -> dict[str, int]:
        """Counts since the state began (they survive snapshot/restore), for the runtime's metrics."""
        out = {f"decisions.{code}": n for code, n in self.decisions.items()}
        out["generated_cancels"] = self.generated_cancels
        out["ops.accepted"] = self.controls.accepted
        out.update({f"ops.refused.{code}": n for code, n in self.controls.refused.items()})
        return out

    # -- reference and market data, matching's reports ---------------------------------------

    def _instrument(self, msg: Message) -> list[Output]:
        v = msg.value
        if v is None:  # tombstone: the instrument is gone
            if msg.key is not None:
                self.instruments.pop(msg.key.decode("utf-8", "replace"), None)
            return []
        self.instruments[v["symbol"]] = (v["price_scale"], v["size_scale"], v["tick_size"], v["lot_size"], v["status"])
        self._money_factor.pop(v["symbol"], None)
        for acct in self.accounts.values():  # scales may have changed: cached leg values too
            leg = acct.legs.get(v["symbol"])
            if leg is not None:
                leg.cached = None
        return []

    def _quote(self, msg: Message) -> list[Output]:
        self.market.quote(msg.value)
        return []

    def _trade(self, msg: Message) -> list[Output]:
        self.market.trade(msg.value)
        return []

    def _venue_status(self, msg: Message) -> list[Output]:
        self.market.status(msg.value)
        return []

    def _account(self, account: str) -> Account:
        acct = self.accounts.get(account)
        if acct is None:
            acct = self.accounts[account] = Account()
        return acct

    def _fill(self, msg: Message) -> list[Output]:
        v = msg.value
        acct = self._account(v["account"])
        acct.roll_day(v["ts_ns"], self.market.marks)
        acct.leg(v["symbol"]).fill(v["side"], v["price"], v["quantity"])
        order = acct.orders.get(v["client_order_id"])
        if order is not None:
            order.filled += v["quantity"]
            acct.relever(order)
        return []

    def _closed(self, msg: Message) -> list[Output]:
        acct = self.accounts.get(msg.value["account"])
        if acct is not None:
            acct.close(msg.value["client_order_id"])
        return []

    def _matching_rejected(self, msg: Message) -> list[Output]:
        v = msg.value
        acct = self.accounts.get(v["account"])
        order = acct.orders.get(v["client_order_id"]) if acct is not None else None
        if acct is None or order is None:
            return []
        if v["command"] == "NEW":
            acct.close(v["client_order_id"])
        elif v["command"] == "REPLACE" and order.pending:
            order.refused()
            acct.relever(order)
        elif v["command"] == "CANCEL":
            order.cancel_pending = False
        return []

    def _cancel_rejected(self, msg: Message) -> list[Output]:
        """Matching refused a cancel or replace: follow the order's status it reports (FIX 35=9 OrdStatus)."""
        v = msg.value
        acct = self.accounts.get(v["account"])
        order = acct.orders.get(v["client_order_id"]) if acct is not None else None
        if acct is None or order is None or order.symbol != v["symbol"]:
            return []
        if v["ord_status"] not in _OPEN_STATUS:  # too late (filled, cancelled, expired) or unknown to matching: not open
            acct.close(v["client_order_id"])
        elif v["response_to"] == "REPLACE" and order.pending:
            order.refused()
            acct.relever(order)
        elif v["response_to"] == "CANCEL":
            order.cancel_pending = False
        return []

    def _rested(self, msg: Message) -> list[Output]:
        v = msg.value
        acct = self.accounts.get(v["account"])
        order = acct.orders.get(v["client_order_id"]) if acct is not None else None
        if acct is None or order is None:
            return []
        if not order.rested:  # the new order itself rests: it answers no replace
            order.rested = True
        elif order.pending:  # matching took the oldest replace in flight
            order.answered(v["price"])
            acct.relever(order)
        return []

    # -- operator commands -------------------------------------------------------------------

    def _ops(self, msg: Message) -> list[Output]:
        try:
            applied = self.controls.apply(msg.schema, msg.value, msg.timestamp_ns)
        except CommandRefused as exc:
            # Every task sees every command and refuses it alike; task 0 alone records it (dlq.risk).
            if self.task == 0:
                raise Reject(exc.code, str(exc)) from None
            return []
        return self._cancel_in_scope(applied) if applied.cancel else []

    def _cancel_in_scope(self, applied: Applied) -> list[Output]:
        """A CancelOrder to matching (and a decision naming the command) for every open order of this task in scope."""
        account, symbol = applied.scope
        cause = applied.cause
        detail = f"{applied.kind} {cause.command_id!r} by {cause.operator_id!r} ({scope_label(applied.scope)}): {cause.reason}"
        why = "KILL_SWITCH" if applied.kind == "KillSwitch" else "CANCEL_ALL"  # CancelOrder.reason -> OrderCancelled.reason
        out: list[Output] = []
        names = [account] if account is not None else sorted(self.accounts)
        for name in names:
            acct = self.accounts.get(name)
            if acct is None:
                continue
            for cid in sorted(acct.orders):
                order = acct.orders[cid]
                if order.cancel_pending or (symbol is not None and order.symbol != symbol):
                    continue
                order.cancel_pending = True
                cancel = {"account": name, "symbol": order.symbol, "client_order_id": cid, "reason": why, "ts_ns": cause.ts_ns}
                out.append(Output(DECISIONS, name, DECISION, self._decision(cancel, "CANCEL", c.ACCEPTED, detail)))
                out.append(Output(ACCEPTED_TOPIC, order.symbol, CANCEL_ORDER, cancel))
                self.generated_cancels += 1
        return out

    # -- order commands ----------------------------------------------------------------------

    def _decision(self, v: dict[str, Any], command: str, reason: str, detail: str | None) -> dict[str, Any]:
        self.decisions[reason] += 1
        return {"account": v["account"], "symbol": v["symbol"], "client_order_id": v["client_order_id"],
                "command": command, "reason": reason, "detail": detail, "ts_ns": v["ts_ns"]}

    def _limits(self, account: str, symbol: str) -> tuple[int | None, ...]:
        controls = self.controls
        if controls.version != self._limit_version:
            self._limit_cache.clear()
            self._limit_version = controls.version
        got = self._limit_cache.get((account, symbol))
        if got is None:
            got = self._limit_cache[account, symbol] = tuple(controls.limit(k, account, symbol) for k in _LIMIT_KEYS)
        return got

    def _new(self, msg: Message) -> list[Output]:
        v = msg.value
        acct = self._account(v["account"])
        acct.roll_day(v["ts_ns"], self.market.marks)
        cid = v["client_order_id"]
        verdict = self._check_new(acct, v, cid)
        acct.used_ids.add(cid)
        if verdict is None:
            acct.add(cid, OpenOrder(v["symbol"], v["side"], v["order_type"], v["price"], v["quantity"]))
            return [Output(DECISIONS, v["account"], DECISION, self._decision(v, "NEW", c.ACCEPTED, None)),
                    Output(ACCEPTED_TOPIC, v["symbol"], NEW_ORDER, v)]
        return [Output(DECISIONS, v["account"], DECISION, self._decision(v, "NEW", verdict[0], verdict[1]))]

    def _check_new(self, acct: Account, v: dict[str, Any], cid: str) -> c.Verdict | None:
        symbol = v["symbol"]
        inst = self.instruments.get(symbol)
        if inst is None:
            return c.UNKNOWN_SYMBOL, f"{symbol} is not in refdata.instruments"
        if cid in acct.used_ids:
            return c.DUPLICATE_CLIENT_ORDER_ID, f"client order id {cid!r} already used today"
        side, qty, price, otype = v["side"], v["quantity"], v["price"], v["order_type"]
        return (c.order_shape(otype, price, qty, inst[2], inst[3])
                or self._gate(acct, v["account"], symbol, side, qty, inst, 0, v["reduce_only"])
                or self._exposure(acct, v["account"], symbol, side, otype, price, qty, qty, 0, inst, v["ts_ns"]))

    def _gate(self, acct: Account, account: str, symbol: str, side: str, leaves: int, inst: tuple[int, int, int, int, str],
              own: int, reduce_flag: bool) -> c.Verdict | None:
        """Trading state (kill switch, halt, reduce-only), the instrument's status, the order's own reduce-only flag."""
        state = self.controls.state_of(account, symbol)
        leg = acct.legs.get(symbol)
        if state is not None:
            flag, scope, cause = state
            by = f"{scope_label(scope)} by {cause.operator_id!r} (command {cause.command_id!r}: {cause.reason})"
            if flag == KILL_SWITCH:
                return c.KILL_SWITCH, f"kill switch engaged on {by}"
            if flag == HALTED:
                return c.HALTED, f"halted on {by}"
            if flag == REDUCE_ONLY:
                got = self._reduces(leg, side, leaves, own)
                if got is not None:
                    return c.REDUCE_ONLY, f"{got[1]}; reduce-only on {by}"
        if inst[4] != "ACTIVE":
            return c.HALTED, f"instrument {symbol} is {inst[4]} in refdata.instruments"
        if reduce_flag:
            return self._reduces(leg, side, leaves, own)
        return None

    @staticmethod
    def _reduces(leg: Any, side: str, leaves: int, own: int) -> c.Verdict | None:
        if leg is None:
            return c.reduce_only(side, leaves, 0, 0, 0)
        ob, os_ = (leg.open_buy - own, leg.open_sell) if side == c.BUY else (leg.open_buy, leg.open_sell - own)
        return c.reduce_only(side, leaves, leg.position, ob, os_)

    def _exposure(self, acct: Account, account: str, symbol: str, side: str, otype: str, price: int | None, qty: int,
                  leaves: int, own: int, inst: tuple[int, int, int, int, str], ts: int) -> c.Verdict | None:
        """Rate, market data, price band or spread, size, notional, position, gross exposure, daily loss."""
        (max_qty, max_notional, max_pos, band, spread, rate, burst, max_gross, max_loss) = self._limits(account, symbol)
        verdict = acct.bucket.take(ts, rate, burst)
        if verdict is not None:
            return verdict
        view = self.market.view(symbol, ts)
        if type(view) is not View:
            return view  # type: ignore[return-value]
        if otype == "MARKET":
            verdict = c.market_protection(view.bid, view.ask, spread)
            if verdict is not None:
                return verdict
            price = view.ask if side == c.BUY else view.bid
        else:
            verdict = c.price_band(price, view.reference, band)  # type: ignore[arg-type]
            if verdict is not None:
                return verdict
        assert price is not None
        verdict = c.max_order_qty(qty, max_qty) or c.max_notional(price, qty, inst[1], max_notional)
        if verdict is not None:
            return verdict
        leg = acct.legs.get(symbol)
        pos, ob, os_ = (leg.position, leg.open_buy, leg.open_sell) if leg is not None else (0, 0, 0)
        if side == c.BUY:
            ob -= own
        else:
            os_ -= own
        verdict = c.position_limit(side, leaves, pos, ob, os_, max_pos)
        if verdict is not None or (max_gross is None and max_loss is None):
            return verdict
        # Account-wide: every leg's worst case valued at its mark (this symbol at the reference price), at money scale.
        # Other legs' values are cached on the leg until it or its mark changes.
        marks = self.market.marks
        now = after = pnl = 0
        for sym, lg in acct.legs.items():
            if sym == symbol:
                continue
            mark = marks.get(sym)
            cached = lg.cached
            if cached is None or cached[0] != mark:
                cached = lg.cached = (mark, *self._leg_money(sym, lg, mark, 0, 0))
            now += cached[1]
            pnl += cached[2]
        after = now
        if leg is not None:
            exp, leg_pnl = self._leg_money(symbol, leg, view.reference, 0, 0)
            now += exp
            pnl += leg_pnl
        extra_buy, extra_sell = (leaves - own, 0) if side == c.BUY else (0, leaves - own)
        after += self._leg_money(symbol, leg, view.reference, extra_buy, extra_sell)[0]
        verdict = c.gross_exposure(now, after, max_gross)
        if verdict is not None:
            return verdict
        verdict = c.daily_loss(pnl, max_loss)
        if verdict is not None and self._reduces(leg, side, leaves, own) is not None:
            return verdict[0], f"{verdict[1]}: only orders that reduce a position are accepted"
        return None

    def _leg_money(self, symbol: str, leg: Any, mark: int | None, extra_buy: int, extra_sell: int) -> tuple[int, int]:
        """(worst-case gross exposure, PnL) of one leg at money scale; exposure rounds up, PnL down."""
        factor = self._money_factor.get(symbol)
        if factor is None:
            inst = self.instruments.get(symbol)
            if inst is None:
                return 0, 0
            factor = self._money_factor[symbol] = self.config.money_scale - inst[0] - inst[1]
        if leg is None:
            pos = ob = os_ = cost = 0
            units = 0
        else:
            pos, ob, os_, cost = leg.position, leg.open_buy, leg.open_sell, leg.cost
            units = leg.pnl_units(mark)
        worst = max(abs(pos + ob + extra_buy), abs(pos - os_ - extra_sell))
        px = mark if mark is not None else (abs(cost) // abs(pos) if pos else 0)
        gross = px * worst
        if factor >= 0:
            return gross * 10**factor, units * 10**factor
        den = 10**-factor
        return -(-gross // den), units // den

    def _cancel(self, msg: Message) -> list[Output]:
        v = msg.value
        acct = self.accounts.get(v["account"])
        order = acct.orders.get(v["client_order_id"]) if acct is not None else None
        if order is None or order.symbol != v["symbol"]:
            return [Output(DECISIONS, v["account"], DECISION, self._decision(v, "CANCEL", c.UNKNOWN_ORDER, self._unknown(v, order)))]
        order.cancel_pending = True
        return [Output(DECISIONS, v["account"], DECISION, self._decision(v, "CANCEL", c.ACCEPTED, None)),
                Output(ACCEPTED_TOPIC, v["symbol"], CANCEL_ORDER, v)]

    @staticmethod
    def _unknown(v: dict[str, Any], order: OpenOrder | None) -> str:
        if order is not None:
            return f"order {v['client_order_id']!r} is on {order.symbol}, not {v['symbol']}"
        return f"no open order {v['client_order_id']!r} for account {v['account']}"

    def _replace(self, msg: Message) -> list[Output]:
        v = msg.value
        acct = self._account(v["account"])
        acct.roll_day(v["ts_ns"], self.market.marks)
        order = acct.orders.get(v["client_order_id"])
        verdict = self._check_replace(acct, v, order)
        if verdict is not None:
            return [Output(DECISIONS, v["account"], DECISION, self._decision(v, "REPLACE", verdict[0], verdict[1]))]
        assert order is not None
        order.request(order.qty if v["quantity"] is None else v["quantity"], order.price if v["price"] is None else v["price"])
        acct.relever(order)
        return [Output(DECISIONS, v["account"], DECISION, self._decision(v, "REPLACE", c.ACCEPTED, None)),
                Output(ACCEPTED_TOPIC, v["symbol"], REPLACE_ORDER, v)]

    def _check_replace(self, acct: Account, v: dict[str, Any], order: OpenOrder | None) -> c.Verdict | None:
        if order is None or order.symbol != v["symbol"]:
            return c.UNKNOWN_ORDER, self._unknown(v, order)
        inst = self.instruments.get(order.symbol)
        if inst is None:
            return c.UNKNOWN_SYMBOL, f"{order.symbol} is not in refdata.instruments"
        new_price, new_qty = v["price"], v["quantity"]
        if new_price is None and new_qty is None:
            return c.INVALID_QUANTITY, "a replace must change the price or the quantity"
        price = order.price if new_price is None else new_price
        qty = order.qty if new_qty is None else new_qty
        shape = c.order_shape(order.order_type, price, qty, inst[2], inst[3])
        if shape is not None:
            return shape
        if qty <= order.filled:
            return c.INVALID_QUANTITY, f"quantity {qty} is not above the {order.filled} already filled"
        leaves, own = qty - order.filled, order.leaves
        return (self._gate(acct, v["account"], order.symbol, order.side, leaves, inst, own, False)
                or self._exposure(acct, v["account"], order.symbol, order.side, order.order_type, price, qty, leaves, own,
                                  inst, v["ts_ns"]))

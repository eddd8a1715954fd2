"""The ledger processor: fills in, journals and marked positions out (see the package docstring)."""

from __future__ import annotations

from typing import Any, ClassVar

from streams.errors import HftError
from streams.processors.base import Input, Message, Output, Processor, Reject, dump_state, load_state
from streams.processors.ledger.book import Position, fee_amount, fits, mid
from streams.processors.ledger.config import LedgerConfig
from streams.processors.ledger.journal import DEBIT, Posting, fill_journal

REFDATA_TOPIC, FILLS_TOPIC, MD_TOPIC = "refdata.instruments", "fills", "md.normalized"
ENTRIES_TOPIC, POSITIONS_TOPIC = "ledger.entries", "positions"
FILL, INSTRUMENT = "hftstream.fills.Fill", "hftstream.refdata.Instrument"
TRADE, QUOTE = "hftstream.md.Trade", "hftstream.md.Quote"
ENTRY, POSITION = "hftstream.ledger.LedgerEntry", "hftstream.ledger.Position"
SNAPSHOT_VERSION = 1
MAX_SCALE = 18

# Stable reason codes of dead-lettered inputs.
UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
BAD_FILL = "BAD_FILL"
AMOUNT_OVERFLOW = "AMOUNT_OVERFLOW"
BAD_REFDATA = "BAD_REFDATA"
SCALE_CHANGE = "SCALE_CHANGE"
UNEXPECTED_SCHEMA = "UNEXPECTED_SCHEMA"
REASON_CODES = (UNKNOWN_SYMBOL, BAD_FILL, AMOUNT_OVERFLOW, BAD_REFDATA, SCALE_CHANGE, UNEXPECTED_SCHEMA)


class LedgerInvariantError(HftError):
    """The ledger does not balance, or a position is not the sum of its fills: a bug, never corrected silently."""

    hint = (
        "the ledger stopped before committing, so nothing wrong reached ledger.entries or positions: keep the log, "
        "find the record named in the message (hftstream log read ... --offset), fix the cause and run again; "
        "see RUNBOOK.md 'Ledger invariant violation'"
    )


class LedgerProcessor(Processor):
    """Task ``task`` of the ledger: partition ``task`` of ``fills`` plus all reference data and market data."""

    name: ClassVar[str] = "ledger"
    returns_lists: ClassVar[bool] = True  # process() returns lists: process_batch skips the copy
    config_class: ClassVar[type[LedgerConfig]] = LedgerConfig

    def __init__(self, config: LedgerConfig, task: int) -> None:
        self.config = config
        self.task = task
        self.inputs = (Input(REFDATA_TOPIC, scope="global"), Input(FILLS_TOPIC), Input(MD_TOPIC, scope="global"))
        self.outputs = (ENTRIES_TOPIC, POSITIONS_TOPIC)
        self._fees = config.fees
        self._remark = config.remark_interval_ns
        self._reset()

    def _reset(self) -> None:
        self._instruments: dict[str, tuple[int, int, str]] = {}  # symbol -> (price_scale, size_scale, currency)
        self._marks: dict[str, int] = {}
        self._remarked: dict[str, int] = {}  # symbol -> event time of its last re-emission
        self._positions: dict[str, dict[str, Position]] = {}  # symbol -> account -> position
        self._debits: dict[tuple[str, int], int] = {}  # (asset, scale) -> running total
        self._credits: dict[tuple[str, int], int] = {}
        self._balances: dict[tuple[str, str, int], int] = {}  # (ledger account, asset, scale) -> debits - credits
        self._unbalanced: list[str] = []  # journals that did not sum to zero since the last check
        self._touched: set[tuple[str, str]] = set()  # positions changed since the last check
        self._last_ref = ""
        self._counts = {"fills": 0, "entries": 0, "marks": 0, "remarks": 0}
        self._rejected: dict[str, int] = dict.fromkeys(REASON_CODES, 0)

    # -- the contract ----------------------------------------------------------------------

    def process(self, msg: Message) -> list[Output]:
        """Outputs for one input; raises :class:`Reject` for one that belongs in ``dlq.ledger``."""
        try:
            schema = msg.schema
            if schema == FILL:
                return self._fill(msg)
            if schema == TRADE or schema == QUOTE:
                return self._mark(msg)
            if msg.topic == MD_TOPIC:
                return []  # book deltas, venue status, heartbeats: nothing to mark with
            if schema == INSTRUMENT:
                return self._instrument(msg)
            raise Reject(UNEXPECTED_SCHEMA, f"{msg.topic} carries {schema}; the ledger reads {FILL}, {INSTRUMENT}, {TRADE}, {QUOTE}")
        except Reject as exc:
            self._rejected[exc.reason_code] += 1
            raise

    def check_invariants(self) -> None:
        """Raise :class:`LedgerInvariantError` naming the record when the books do not balance.

        Checked: every journal since the last check summed to zero per asset; the running debit and credit
        totals agree per (asset, scale); every position changed since the last check equals the sum of its
        fills and the balance of its ledger account. Cost: the records since the last check, not the history.
        """
        if self._unbalanced:
            raise LedgerInvariantError(f"ledger task {self.task}: unbalanced journal: {self._unbalanced[0]}")
        for key in sorted(self._debits.keys() | self._credits.keys()):
            debits, credits = self._debits.get(key, 0), self._credits.get(key, 0)
            if debits != credits:
                raise LedgerInvariantError(
                    f"ledger task {self.task}: debits {debits} != credits {credits} in {key[0]} (scale {key[1]}); "
                    f"last record applied: {self._last_ref}"
                )
        for symbol, account in sorted(self._touched):
            pos = self._positions[symbol][account]
            scale = self._instruments[symbol][1]
            why = pos.problem(self._balances.get((f"{account}:pos:{symbol}", symbol, scale), 0))
            if why:
                raise LedgerInvariantError(f"ledger task {self.task}: position {account}|{symbol}: {why}; last changed by {pos.last_ref}")
        self._touched.clear()

    def snapshot(self) -> bytes:
        """Instruments, marks, positions, balances, running totals and counts, as sorted JSON."""
        def pairs(d: dict[Any, int]) -> list[list[Any]]:
            return [[*k, v] for k, v in sorted(d.items())]

        state = {
            "version": SNAPSHOT_VERSION,
            "instruments": self._instruments,
            "marks": self._marks,
            "remarked": self._remarked,
            "positions": [self._positions[s][a].to_json() for s in sorted(self._positions) for a in sorted(self._positions[s])],
            "debits": pairs(self._debits),
            "credits": pairs(self._credits),
            "balances": pairs(self._balances),
            "unbalanced": self._unbalanced,
            "touched": sorted(self._touched),
            "last_ref": self._last_ref,
            "counts": self._counts,
            "rejected": self._rejected,
        }
        return dump_state(state)

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a :meth:`snapshot` blob (empty bytes = the initial state)."""
        self._reset()
        if not blob:
            return
        state = load_state(blob, "ledger", SNAPSHOT_VERSION)
        self._instruments = {s: (v[0], v[1], v[2]) for s, v in state["instruments"].items()}
        self._marks = dict(state["marks"])
        self._remarked = dict(state["remarked"])
        for row in state["positions"]:
            pos = Position.from_json(row)
            self._positions.setdefault(pos.symbol, {})[pos.account] = pos
        self._debits = {(a, s): v for a, s, v in state["debits"]}
        self._credits = {(a, s): v for a, s, v in state["credits"]}
        self._balances = {(acc, a, s): v for acc, a, s, v in state["balances"]}
        self._unbalanced = list(state["unbalanced"])
        self._touched = {(s, a) for s, a in state["touched"]}
        self._last_ref = state["last_ref"]
        self._counts.update(state["counts"])
        self._rejected.update(state["rejected"])

    def counters(self) -> dict[str, int]:
        """Counts since the state began (they survive snapshot/restore), for the runtime's metrics."""
        out = dict(self._counts)
        out.update({f"rejected.{code}": n for code, n in self._rejected.items()})
        return out

    # -- queries (the demo's summary and the tests) ------------------------------------------

    def position(self, account: str, symbol: str) -> Position | None:
        """The position of ``account`` in ``symbol``, or ``None``."""
        return self._positions.get(symbol, {}).get(account)

    def positions(self) -> list[dict[str, Any]]:
        """Every position as its ``Position`` record with the latest mark, sorted by (account, symbol)."""
        rows = [p.record(self._marks.get(s), 0) for s, accs in self._positions.items() for p in accs.values()]
        return sorted(rows, key=lambda r: (r["account"], r["symbol"]))

    def balance(self, ledger_account: str, asset: str, scale: int) -> int:
        """Debits minus credits posted to ``ledger_account`` in ``asset`` at ``scale``."""
        return self._balances.get((ledger_account, asset, scale), 0)

    def totals(self) -> dict[tuple[str, int], tuple[int, int]]:
        """(debits, credits) per (asset, scale) since the state began."""
        keys = self._debits.keys() | self._credits.keys()
        return {k: (self._debits.get(k, 0), self._credits.get(k, 0)) for k in sorted(keys)}

    # -- reference data and marks ------------------------------------------------------------

    def _instrument(self, msg: Message) -> list[Output]:
        value = msg.value
        if value is None:  # a tombstone on the compacted topic: keep what positions need, forget nothing
            return []
        symbol, ps, ss, ccy = value["symbol"], value["price_scale"], value["size_scale"], value["currency"]
        if not (0 <= ps <= MAX_SCALE and 0 <= ss <= MAX_SCALE):
            raise Reject(BAD_REFDATA, f"instrument {symbol!r}: scales {ps}/{ss} outside 0..{MAX_SCALE}")
        old = self._instruments.get(symbol)
        if old is not None and old != (ps, ss, ccy) and self._positions.get(symbol):
            raise Reject(
                SCALE_CHANGE,
                f"instrument {symbol!r}: price/size scale or currency {old} -> {(ps, ss, ccy)} while the ledger holds "
                "positions in it (their amounts would change meaning)",
            )
        self._instruments[symbol] = (ps, ss, ccy)
        return []

    def _mark(self, msg: Message) -> list[Output]:
        v = msg.value
        symbol = v["symbol"]
        if msg.schema == TRADE:
            price = v["price"]
        else:
            if v["bid_price"] is None or v["ask_price"] is None:
                return []
            price = mid(v["bid_price"], v["ask_price"])
        self._marks[symbol] = price
        self._counts["marks"] += 1
        interval = self._remark
        holders = self._positions.get(symbol)
        if interval is None or not holders:
            return []
        now = v["recv_ts_ns"]
        last = self._remarked.get(symbol)
        if last is not None and now - last < interval:
            return []
        self._remarked[symbol] = now
        out = []
        for account in sorted(holders):
            pos = holders[account]
            if pos.net:
                out.append(Output(POSITIONS_TOPIC, f"{account}|{symbol}", POSITION, pos.record(price, now)))
        self._counts["remarks"] += len(out)
        return out

    # -- fills -------------------------------------------------------------------------------

    def _fill(self, msg: Message) -> list[Output]:
        v = msg.value
        fill_id, account, symbol, venue = v["fill_id"], v["account"], v["symbol"], v["venue"]
        price, qty, ts = v["price"], v["quantity"], v["ts_ns"]
        inst = self._instruments.get(symbol)
        if inst is None:
            raise Reject(UNKNOWN_SYMBOL, f"fill {fill_id}: symbol {symbol!r} is not in refdata.instruments")
        if qty <= 0 or price <= 0:
            raise Reject(BAD_FILL, f"fill {fill_id}: quantity {qty} and price {price} must be > 0")
        ps, ss, ccy = inst
        buy = v["side"] == "BUY"
        d = qty if buy else -qty
        notional = price * qty
        fee = fee_amount(notional, self._fees.rate(venue, v["liquidity"]))
        holders = self._positions.get(symbol)
        pos = holders.get(account) if holders else None
        if pos is None:
            pos = Position(account, symbol)
        net, cost, realized = pos.apply(d, price)
        if not fits(notional, abs(fee), net, cost, realized, pos.fees + fee, realized - cost):
            raise Reject(AMOUNT_OVERFLOW, f"fill {fill_id}: an amount or the position {account}|{symbol} would not fit in int64")
        # Nothing below raises: the fill is applied whole or (above) not at all.
        ref = f"{msg.topic}/{msg.partition}@{msg.offset} (fill {fill_id})"
        if holders is None:
            holders = self._positions[symbol] = {}
        holders[account] = pos
        pos.net, pos.cost, pos.realized = net, cost, realized
        pos.fees += fee
        pos.fills += 1
        pos.last_fill_id, pos.last_ref = fill_id, ref
        pos.tally_qty += d
        pos.tally_cash -= d * price
        self._touched.add((symbol, account))
        self._last_ref = ref
        postings = fill_journal(account, symbol, venue, buy, qty, notional, fee, ccy, ss, ps + ss)
        out = self._post(postings, account, fill_id, ts, ref)
        out.append(Output(POSITIONS_TOPIC, f"{account}|{symbol}", POSITION, pos.record(self._marks.get(symbol), ts)))
        self._counts["fills"] += 1
        return out

    def _post(self, postings: list[Posting], account: str, fill_id: str, ts: int, ref: str) -> list[Output]:
        """Post a journal: running totals, balances and the ``LedgerEntry`` outputs, all keyed by the trading account."""
        debits, credits, balances = self._debits, self._credits, self._balances
        net: dict[tuple[str, int], int] = {}  # this journal's debits - credits per (asset, scale)
        out = []
        txn = f"fill:{fill_id}"
        new = tuple.__new__
        for i, (acct, direction, asset, amount, scale) in enumerate(postings):
            key = (asset, scale)
            bkey = (acct, asset, scale)
            if direction == DEBIT:
                debits[key] = debits.get(key, 0) + amount
                balances[bkey] = balances.get(bkey, 0) + amount
                net[key] = net.get(key, 0) + amount
            else:
                credits[key] = credits.get(key, 0) + amount
                balances[bkey] = balances.get(bkey, 0) - amount
                net[key] = net.get(key, 0) - amount
            out.append(new(Output, (ENTRIES_TOPIC, account, ENTRY, {
                "entry_id": f"{fill_id}/{i}", "txn_id": txn, "account": acct, "direction": direction,
                "asset": asset, "amount": amount, "amount_scale": scale, "ref_id": fill_id, "ts_ns": ts,
            }, None)))
        if any(net.values()):
            off = sorted((k, v) for k, v in net.items() if v)
            self._unbalanced.append(f"{ref}: journal {txn} is off by {off} (debits - credits per asset, scale)")
        self._counts["entries"] += len(postings)
        return out

"""The trading processors chained in memory, no log: risk -> matching -> (fills, order.events back to risk) -> ledger,
dropcopy -> reconcile (-> ops.commands back to risk). One task each; every record is routed to every processor that
reads its topic, breadth first, with the input's timestamp when an output gives none. ``hold`` parks one
consumer's deliveries of a topic (matching's order events reaching risk late, say) until ``release``.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from connectors.dropcopy import DropCopyConfig, DropCopyProcessor
from streams.ops.signing import sign
from streams.processors.base import Message, Output, Processor, Reject
from streams.processors.ledger import LedgerConfig, LedgerProcessor
from streams.processors.matching import MatchingConfig, MatchingProcessor
from streams.processors.reconcile import ReconcileConfig, ReconcileProcessor
from streams.processors.risk import RiskConfig, RiskProcessor
from streams.processors.risk.processor import default_repo

T0 = 1_767_364_200_000_000_000  # 2026-01-02 14:30 UTC
MS = 1_000_000
AAPL = {"symbol": "AAPL", "instrument_id": "1", "price_scale": 4, "size_scale": 0, "tick_size": 100, "lot_size": 1,
        "currency": "USD", "status": "ACTIVE", "updated_ts_ns": 0}
DEV_OPERATOR, DEV_KEY = "ops-dev", "dev-operator-key-not-for-production"  # infra/risk.yaml's development operator


class Chain:
    """The five trading processors wired as the topics connect them (see the module docstring)."""

    def __init__(self, *, risk: RiskConfig | None = None, matching: MatchingConfig | None = None, ledger: LedgerConfig | None = None,
                 dropcopy: DropCopyConfig | None = None, reconcile: ReconcileConfig | None = None) -> None:
        self.risk = RiskProcessor(risk or RiskConfig(), 0)
        self.matching = MatchingProcessor(matching or MatchingConfig(), 0)
        self.ledger = LedgerProcessor(ledger or LedgerConfig(), 0)
        self.dropcopy = DropCopyProcessor(dropcopy or DropCopyConfig(seed=0), 0)
        self.reconcile = ReconcileProcessor(reconcile or ReconcileConfig(), 0)
        self.readers: dict[str, list[Processor]] = defaultdict(list)
        for proc in (self.risk, self.matching, self.ledger, self.dropcopy, self.reconcile):
            for inp in proc.inputs:
                self.readers[inp.topic].append(proc)
        # every record as (schema, value, key, timestamp), by topic
        self.records: dict[str, list[tuple[str, dict[str, Any], str | bytes | None, int]]] = defaultdict(list)
        self.dead: dict[str, list[tuple[str, str]]] = defaultdict(list)  # processor -> (reason code, message)
        self.offsets: dict[str, int] = defaultdict(int)
        self.held: dict[tuple[str, str], list[Message]] = {}
        self.now = T0
        self.ids = 0

    # -- routing ---------------------------------------------------------------------------------

    def send(self, topic: str, schema: str, value: dict[str, Any], key: str, ts: int | None = None) -> None:
        queue: deque[tuple[str, str, dict[str, Any], str | bytes | None, int]] = deque([(topic, schema, value, key, self.now if ts is None else ts)])
        while queue:
            t, s, v, k, stamp = queue.popleft()
            self.records[t].append((s, v, k, stamp))
            off = self.offsets[t]
            self.offsets[t] = off + 1
            msg = Message(t, 0, off, stamp, k.encode() if isinstance(k, str) else k, s, v)
            for proc in self.readers.get(t, ()):
                parked = self.held.get((proc.name, t))
                if parked is not None:
                    parked.append(msg)
                    continue
                queue.extend(self._deliver(proc, msg))

    def _deliver(self, proc: Processor, msg: Message) -> list[tuple[str, str, dict[str, Any], str | bytes | None, int]]:
        try:
            outs: list[Output] = list(proc.process(msg))
        except Reject as exc:
            self.dead[proc.name].append((exc.reason_code, str(exc)))
            return []
        return [(o.topic, o.schema, o.value, o.key, msg.timestamp_ns if o.timestamp_ns is None else o.timestamp_ns) for o in outs]

    def hold(self, processor: str, topic: str) -> None:
        """Park ``processor``'s deliveries of ``topic`` from now on."""
        self.held[processor, topic] = []

    def release(self, processor: str, topic: str) -> None:
        """Deliver what was parked, in order, and stop parking."""
        parked = self.held.pop((processor, topic))
        proc = next(p for p in self.readers[topic] if p.name == processor)
        for msg in parked:
            for t, s, v, k, stamp in self._deliver(proc, msg):
                self.send(t, s, v, k.decode() if isinstance(k, bytes) else k, stamp)  # type: ignore[arg-type]

    # -- inputs --------------------------------------------------------------------------------

    def tick(self, ns: int = MS) -> int:
        self.now += ns
        return self.now

    def start(self, instrument: dict[str, Any] = AAPL) -> None:
        self.send("refdata.instruments", "hftstream.refdata.Instrument", instrument, instrument["symbol"])
        self.quote(instrument["symbol"])

    def quote(self, symbol: str = "AAPL", bid: int = 1_870_000, ask: int = 1_871_000) -> None:
        v = {"venue": "alpha", "symbol": symbol, "bid_price": bid, "bid_size": 100, "ask_price": ask, "ask_size": 100,
             "exchange_ts_ns": self.now, "recv_ts_ns": self.now, "seq": None}
        self.send("md.normalized", "hftstream.md.Quote", v, symbol)

    def new(self, account: str, side: str, qty: int, price: int | None, *, cid: str | None = None, symbol: str = "AAPL",
            tif: str = "GTC", post_only: bool = False) -> str:
        if cid is None:
            self.ids += 1
            cid = f"o{self.ids}"
        v = {"account": account, "symbol": symbol, "client_order_id": cid, "side": side,
             "order_type": "LIMIT" if price is not None else "MARKET", "tif": tif, "price": price, "quantity": qty,
             "expire_ts_ns": None, "reduce_only": False, "post_only": post_only, "ts_ns": self.now}
        self.send("orders.in", "hftstream.orders.NewOrder", v, account)
        return cid

    def replace(self, account: str, cid: str, *, qty: int | None = None, price: int | None = None, symbol: str = "AAPL") -> None:
        v = {"account": account, "symbol": symbol, "client_order_id": cid, "price": price, "quantity": qty, "ts_ns": self.now}
        self.send("orders.in", "hftstream.orders.ReplaceOrder", v, account)

    def command(self, kind: str, *, operator: str = DEV_OPERATOR, key: str = DEV_KEY, **fields: Any) -> None:
        self.ids += 1
        schema = f"hftstream.ops.{kind}"
        v = {"command_id": f"cmd{self.ids}", "operator_id": operator, "account": None, "symbol": None, "reason": "test",
             **fields, "ts_ns": self.now, "signature": b""}
        self.send("ops.commands", schema, sign(default_repo(), schema, v, key.encode()), "global")

    # -- what came out --------------------------------------------------------------------------

    def values(self, topic: str, schema: str | None = None) -> list[dict[str, Any]]:
        """Every value written to ``topic`` (of ``schema``, a short name like ``OrderCancelled``, when given)."""
        return [v for s, v, _, _ in self.records[topic] if schema is None or s.rpartition(".")[2] == schema]

    def decisions(self, cid: str | None = None) -> list[dict[str, Any]]:
        return [d for d in self.values("risk.decisions") if cid is None or d["client_order_id"] == cid]

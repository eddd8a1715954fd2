"""Run a simulated order flow through the pure risk and matching processors, in memory, with a simulated feed.

The venue simulator's raw messages go through the normalize processor; its ``md.normalized``
records, the instruments, the operator script and the order commands are merged in the runtime's
order (event time in milliseconds, then the risk input's rank); each risk output for
``orders.accepted`` goes straight into matching, and matching's fills, then its order events,
straight back into risk -- the feedback a live pipeline gives within a millisecond.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connectors.orders.simulator import OrderFlow
from connectors.venues.simulator import SimConfig, Simulation
from streams.processors.base import Message, Output, Reject
from streams.processors.matching import MatchingConfig, MatchingProcessor
from streams.processors.matching.orders import PRIO
from streams.processors.normalize import NormalizeConfig, NormalizeProcessor
from streams.processors.risk import RiskProcessor

RANK = {"refdata.instruments": 0, "ops.commands": 1, "md.normalized": 2, "fills": 3, "order.events": 4, "orders.in": 5}
MS = 1_000_000


@dataclass
class PipelineResult:
    """What came out: decisions by (command, reason), matching events, cancel and reject reasons, dead letters."""

    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    cancel_reasons: Counter[str] = field(default_factory=Counter)
    matching_rejects: Counter[tuple[str, str]] = field(default_factory=Counter)
    risk_dead: Counter[str] = field(default_factory=Counter)
    matching_dead: Counter[str] = field(default_factory=Counter)
    order_types: Counter[tuple[str, str]] = field(default_factory=Counter)  # (order_type, tif) of orders matching accepted
    replace_priority: Counter[str] = field(default_factory=Counter)  # replaces matching took: "kept" / "lost" time priority
    outputs: list[Output] = field(default_factory=list)

    def reasons(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, reason), n in self.decisions.items():
            out[reason] += n
        return out


def market_data(feed: SimConfig) -> list[Message]:
    """Instruments and the normalized market data of ``feed``, as risk would read them."""
    sim = Simulation(feed)
    norm = NormalizeProcessor(NormalizeConfig(), 0)
    out: list[Message] = []
    for n, rec in enumerate(sim.instrument_records()):
        msg = Message("refdata.instruments", 0, n, rec.timestamp_ns, rec.key, "hftstream.refdata.Instrument", rec.value)
        norm.process(msg)
        out.append(msg)
    offset = 0
    for n, rec in enumerate(sim.records()):
        msg = Message(rec.topic, 0, n, rec.timestamp_ns, rec.key, "hftstream.md.RawVenueMessage", rec.value)
        try:
            outs = norm.process(msg)
        except Reject:
            continue
        for o in outs:
            ts = o.timestamp_ns if o.timestamp_ns is not None else rec.timestamp_ns
            key = o.key.encode() if isinstance(o.key, str) else o.key
            out.append(Message(o.topic, 0, offset, ts, key, o.schema, o.value))
            offset += 1
    return out


def run_pipeline(flow: OrderFlow, md: list[Message], risk: RiskProcessor, matching: MatchingProcessor | None = None,
                 *, keep_outputs: bool = False) -> PipelineResult:
    """Everything through risk and matching (see the module docstring)."""
    matching = matching or MatchingProcessor(MatchingConfig(full_audit=False), 0)
    res = PipelineResult()
    inputs = list(md)
    for n, r in enumerate(flow.records):
        inputs.append(Message(r.topic, 0, n, r.timestamp_ns, r.key, r.schema, r.value))
    inputs.sort(key=lambda m: (m.timestamp_ns // MS, RANK[m.topic]))  # stable: offset order within a topic
    for msg in inputs:
        try:
            outs = risk.process(msg)
        except Reject as exc:
            res.risk_dead[exc.reason_code] += 1
            continue
        for o in outs:
            if keep_outputs:
                res.outputs.append(o)
            if o.topic == "risk.decisions":
                res.decisions[(o.value["command"], o.value["reason"])] += 1
            elif o.topic == "orders.accepted":
                _match(o, msg.timestamp_ns, risk, matching, res, keep_outputs)
    risk.check_invariants()
    matching.check_invariants()
    return res


def _match(o: Output, ts: int, risk: RiskProcessor, matching: MatchingProcessor, res: PipelineResult, keep: bool) -> None:
    key = o.key.encode() if isinstance(o.key, str) else o.key
    before = _prio(matching, o.value) if o.schema.endswith("ReplaceOrder") else None
    try:
        outs = matching.process(Message("orders.accepted", 0, 0, ts, key, o.schema, o.value))
    except Reject as exc:
        res.matching_dead[exc.reason_code] += 1
        return
    if before is not None and not any(x.schema.endswith(("OrderRejected", "OrderCancelRejected")) for x in outs):
        after = _prio(matching, o.value)
        res.replace_priority["kept" if after == before else "lost"] += 1
    fills = [x for x in outs if x.topic == "fills"]
    events = [x for x in outs if x.topic == "order.events"]
    for x in outs:
        if keep:
            res.outputs.append(x)
        short = x.schema.rpartition(".")[2]
        res.events[short] += 1
        v: dict[str, Any] = x.value
        if short == "OrderCancelled":
            res.cancel_reasons[v["reason"]] += 1
        elif short == "OrderRejected":
            res.matching_rejects[(v["command"], v["reason_code"])] += 1
        elif short == "OrderCancelRejected":
            res.matching_rejects[(v["response_to"], v["reason_code"])] += 1
        elif short == "OrderAccepted":
            res.order_types[(v["order_type"], v["tif"])] += 1
    for x in fills + events:
        risk.process(Message(x.topic, 0, 0, ts, x.key.encode() if isinstance(x.key, str) else x.key, x.schema, x.value))


def _prio(matching: MatchingProcessor, v: dict[str, Any]) -> int | None:
    """The time priority of the open order a command names (``None``: not open)."""
    market = matching.engine.markets.get(v["symbol"])
    order = market.open.get((v["account"], v["client_order_id"])) if market is not None else None
    return None if order is None else order[PRIO]

"""What a demo run produced, read back from the log: the digest, the counts and the trader's summary.

Everything here is read with ``read_committed`` readers, partition by partition in offset
order, so it is a function of the committed log and of nothing timing-dependent.

* :func:`digest`: sha256 over every output topic's ``(topic, partition, key, value)`` in
  topic, partition and offset order. The ``state.*`` commit logs (their commit boundaries
  depend on batching) and ``runtime.schedule`` are not outputs and are left out.
* :func:`business_summary`: client commands sent, accepted and refused by risk (apart from the
  cancels risk issued itself for a kill switch or a cancel-all), rejects by reason, matching's
  cancel rejects, fills, PnL per account (exact decimals from the scaled integers, never a float),
  whether every ledger journal balances, the recon status with the fills still awaiting their
  drop-copy report, and dead letters per processor and reason.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from streams.lineage import source_of
from streams.log.base import Log, Record
from streams.serde import Serde

POLL = 5000
RECON_WORDS = {"IN_SYNC": "HEALTHY", "DIVERGED": "DEGRADED", "HALTED": "HALTED"}
CLIENT_TOPIC = "orders.in"
EXECUTIONS = frozenset({"PARTIAL_FILL", "FILL"})


def committed_records(log: Log, topic: str) -> Iterator[Record]:
    """Every committed record of ``topic``, partition by partition, in offset order."""
    for p in range(log.partitions(topic)):
        low, high = log.watermarks(topic, p)
        if high <= low:
            continue
        with log.reader([(topic, p, low)]) as reader:
            while True:
                stable = reader.end_offset(topic, p)
                end = high if stable is None else min(high, stable)
                if reader.position(topic, p) >= end:
                    break
                batch = reader.poll(POLL, timeout=0.2)
                yield from (r for r in batch if r.offset < high)
                if batch and batch[-1].offset >= high - 1:
                    break


def digest(log: Log, topics: Sequence[str]) -> tuple[str, dict[str, int]]:
    """``(sha256 hex, {topic: records})`` over ``topics`` (sorted), keys and values in partition and offset order."""
    h = hashlib.sha256()
    counts: dict[str, int] = {}
    for topic in sorted(topics):
        n = 0
        for rec in committed_records(log, topic):
            key, value = rec.key or b"", rec.value or b""
            h.update(f"{topic}\x00{rec.partition}\x00{len(key)}\x00{len(value)}\x00".encode())
            h.update(key)
            h.update(value)
            n += 1
        counts[topic] = n
    return h.hexdigest(), counts


def _values(log: Log, serde: Serde, topic: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for rec in committed_records(log, topic):
        if rec.value is not None:
            d = serde.decode(rec.value)
            yield d.schema, d.value


def _scaled(amount: int, scale: int) -> Decimal:
    return Decimal(amount).scaleb(-scale)


def _decisions(log: Log, serde: Serde) -> tuple[int, Counter[str]]:
    """``(client commands accepted, refusals by reason)``: decisions on commands from ``orders.in`` only.

    Risk also decides the cancels it issues itself (kill switch, cancel-all); their lineage names the
    operator command on ``ops.commands``, so they are counted apart (:func:`_risk_cancels`).
    """
    accepted, refused = 0, Counter[str]()
    for rec in committed_records(log, "risk.decisions"):
        src = source_of(rec.headers)
        if rec.value is None or (src is not None and src[0] != CLIENT_TOPIC):
            continue
        v = serde.decode(rec.value).value
        if v["reason"] == "ACCEPTED":
            accepted += 1
        else:
            refused[v["reason"]] += 1
    return accepted, refused


def _risk_cancels(log: Log, serde: Serde) -> Counter[str]:
    """The cancels risk issued itself, by their reason (``KILL_SWITCH``, ``CANCEL_ALL``): on ``orders.accepted``, not from a client."""
    out: Counter[str] = Counter()
    for rec in committed_records(log, "orders.accepted"):
        src = source_of(rec.headers)
        if rec.value is not None and src is not None and src[0] != CLIENT_TOPIC:
            d = serde.decode(rec.value)
            out[d.value.get("reason") or d.schema.rsplit(".", 1)[1]] += 1
    return out


def _dead_letters(log: Log, serde: Serde) -> dict[str, dict[str, int]]:
    """Dead letters of every ``dlq.*`` topic, per processor and reason code."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for topic in sorted(t.name for t in log.list_topics() if t.name.startswith("dlq.")):
        for _, v in _values(log, serde, topic):
            out[v["processor"]][v["reason_code"]] += 1
    return {p: dict(sorted(by.items())) for p, by in sorted(out.items())}


def business_summary(log: Log, serde: Serde) -> dict[str, Any]:
    """The figures a trader reads after a run (see the module docstring)."""
    instruments = {v["symbol"]: v for _, v in _values(log, serde, "refdata.instruments")}
    orders = Counter(schema.rsplit(".", 1)[1] for schema, _ in _values(log, serde, CLIENT_TOPIC))
    accepted, decisions = _decisions(log, serde)
    events: Counter[str] = Counter()
    matching_rejects: Counter[str] = Counter()
    cancel_rejects: dict[str, Counter[str]] = defaultdict(Counter)
    for schema, v in _values(log, serde, "order.events"):
        events[schema.rsplit(".", 1)[1]] += 1
        if schema.endswith(".OrderRejected"):
            matching_rejects[v["reason_code"]] += 1
        elif schema.endswith(".OrderCancelRejected"):
            cancel_rejects[v["response_to"]][v["reason_code"]] += 1
    fills = 0
    fill_qty: Counter[tuple[str, str]] = Counter()
    unreported: set[str] = set()
    for _, v in _values(log, serde, "fills"):
        fills += 1
        fill_qty[(v["account"], v["symbol"])] += v["quantity"] if v["side"] == "BUY" else -v["quantity"]
        unreported.add(v["fill_id"])
    for _, v in _values(log, serde, "exec.reports"):
        if v["exec_type"] in EXECUTIONS:
            unreported.discard(v["exec_id"])
    journals: dict[str, Counter[tuple[str, int]]] = defaultdict(Counter)
    entries = 0
    for _, v in _values(log, serde, "ledger.entries"):
        entries += 1
        sign = 1 if v["direction"] == "DEBIT" else -1
        journals[v["txn_id"]][(v["asset"], v["amount_scale"])] += sign * v["amount"]
    unbalanced = sorted(txn for txn, sums in journals.items() if any(sums.values()))
    positions: dict[tuple[str, str], dict[str, Any]] = {}
    for _, v in _values(log, serde, "positions"):
        positions[(v["account"], v["symbol"])] = v  # compacted topic: the last one per key wins
    pnl: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    mismatched = []
    for (account, symbol), v in sorted(positions.items()):
        inst = instruments.get(symbol)
        if inst is None:
            continue
        scale = inst["price_scale"] + inst["size_scale"]
        money = v["realized_pnl"] - v["fees_paid"] + (v["unrealized_pnl"] or 0)
        pnl[account][inst["currency"]] += _scaled(money, scale)
        if v["net_qty"] != fill_qty.get((account, symbol), 0):
            mismatched.append(f"{account}|{symbol}")
    recon: dict[str, str] = {}
    for _, v in _values(log, serde, "recon.status"):
        recon[v["venue"]] = v["state"]
    breaks: Counter[str] = Counter()
    broken: set[str] = set()
    for _, v in _values(log, serde, "recon.breaks"):
        breaks[v["kind"]] += 1
        if v["kind"] == "MISSING_VENUE" and v["exec_id"] is not None:
            broken.add(v["exec_id"])
    # ReconStatus says IN_SYNC / DIVERGED / HALTED; a trader reads HEALTHY / DEGRADED / HALTED
    worst = RECON_WORDS[max(recon.values(), key=list(RECON_WORDS).index, default="IN_SYNC")]
    sent = sum(orders.values())
    return {
        "orders": dict(sorted(orders.items())),
        "orders_sent": sent,
        "accepted": accepted,  # client commands only: accepted + rejected_by_risk == orders_sent
        "rejected_by_risk": sum(decisions.values()),
        "risk_issued_cancels": dict(sorted(_risk_cancels(log, serde).items())),
        "rejects_by_reason": dict(sorted((decisions + Counter({f"matching:{k}": n for k, n in matching_rejects.items()})).items())),
        "order_events": dict(sorted(events.items())),
        "cancel_rejects": {to: dict(sorted(by.items())) for to, by in sorted(cancel_rejects.items())},
        "fills": fills,
        "ledger_entries": entries,
        "ledger_balanced": not unbalanced and not mismatched,
        "unbalanced_journals": unbalanced[:10],
        "positions_not_matching_fills": mismatched[:10],
        "pnl": {a: {c: str(x) for c, x in sorted(by.items())} for a, by in sorted(pnl.items())},
        "recon_status": worst,
        "recon_by_venue": dict(sorted(recon.items())),
        "recon_breaks": dict(sorted(breaks.items())),
        # fills without a drop-copy execution report: within reconcile's match window, or past it (a MISSING_VENUE break)
        "fills_awaiting_report": {"fills": len(unreported), "past_window": len(unreported & broken)},
        "dead_letters": _dead_letters(log, serde),
    }


def time_span_ms(log: Log, topics: Sequence[str]) -> tuple[int, int] | None:
    """``(first, last)`` record timestamp in ms over ``topics``' committed records, or None when they are empty."""
    lo = hi = None
    for topic in topics:
        for rec in committed_records(log, topic):
            ms = rec.timestamp_ns // 1_000_000
            lo = ms if lo is None or ms < lo else lo
            hi = ms if hi is None or ms > hi else hi
    return None if lo is None or hi is None else (lo, hi)

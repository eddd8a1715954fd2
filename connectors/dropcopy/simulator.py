"""A venue's drop copy, simulated: execution reports derived from our fills, with faults injected by seed.

:func:`drop_copy` is a pure function: the same fills and the same :class:`DropCopyConfig` give the same
reports, byte for byte. Each fill's fate is drawn from a hash of ``(seed, fill_id)``, not from a random
stream, so it does not depend on the order the fills are read in (partition by partition, or merged).

Per fill, one of (rates are probabilities in parts per million, checked in this order):

``missing``         no report at all                    -> the reconciler's MISSING_VENUE
``late``            reported ``late_delay_ns`` after it  -> MISSING_VENUE, then healed when it arrives
``qty``             ``last_qty`` off by one unit         -> QTY_MISMATCH
``price``           ``last_price`` off by one unit       -> PRICE_MISMATCH
otherwise           reported ``report_delay_ns`` after it, exactly

and, independently, ``unknown``: an extra report of an execution we never had (exec id ``X-<fill_id>``,
same account, symbol and order) -> MISSING_INTERNAL. ``faults`` forces a fill's fate by id (tests).

A report echoes the fill's ``fill_id`` as its ``exec_id`` (the internal engine is the venue), its ``ts_ns``
as ``venue_ts_ns``; ``recv_ts_ns`` is when the drop copy arrives. Fills do not carry the order quantity,
so every report is a ``PARTIAL_FILL`` with ``cum_qty`` the running total of the order's reported
executions and ``leaves_qty`` 0: the reconciler compares executions (side, quantity, price), never totals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

REPORT_SCHEMA = "hftstream.exec.ExecutionReport"
FILLS_TOPIC, REPORTS_TOPIC = "fills", "exec.reports"
Fate = Literal["ok", "missing", "late", "qty", "price", "unknown"]
FATES: tuple[str, ...] = ("missing", "late", "qty", "price", "unknown")
PPM = 1_000_000


class DropCopyConfig(BaseModel):
    """What the simulated venue reports, and how it fails. Frozen; unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    report_delay_ns: int = Field(default=1_000_000, ge=0)
    late_delay_ns: int = Field(default=30_000_000_000, ge=0)
    missing_ppm: int = Field(default=0, ge=0, le=PPM)
    late_ppm: int = Field(default=0, ge=0, le=PPM)
    qty_ppm: int = Field(default=0, ge=0, le=PPM)
    price_ppm: int = Field(default=0, ge=0, le=PPM)
    unknown_ppm: int = Field(default=0, ge=0, le=PPM)
    faults: dict[str, Fate] = Field(default_factory=dict)


class Report(NamedTuple):
    """One report to publish: key (the account), Avro value, log timestamp (= ``recv_ts_ns``)."""

    key: str
    value: dict[str, Any]
    timestamp_ns: int


def _draw(seed: int, fill_id: str, what: str) -> int:
    """A uniform number in ``[0, 1e6)`` from ``(seed, fill_id, what)``."""
    digest = hashlib.blake2b(f"{seed}\x00{fill_id}\x00{what}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % PPM


def fate(config: DropCopyConfig, fill_id: str) -> tuple[str, bool]:
    """``(fate, unknown)`` of one fill: what happens to its report, and whether an unknown execution follows it."""
    forced = config.faults.get(fill_id)
    if forced is not None:
        return ("ok", True) if forced == "unknown" else (forced, False)
    r = _draw(config.seed, fill_id, "fate")
    kind = "ok"
    for name, rate in (("missing", config.missing_ppm), ("late", config.late_ppm), ("qty", config.qty_ppm), ("price", config.price_ppm)):
        if r < rate:
            kind = name
            break
        r -= rate
    return kind, _draw(config.seed, fill_id, "unknown") < config.unknown_ppm


def drop_copy(fills: Iterable[Mapping[str, Any]], config: DropCopyConfig) -> list[Report]:
    """The execution reports the venue sends for ``fills`` (``hftstream.fills.Fill`` values), in arrival order.

    Sorted by ``(recv_ts_ns, fill order)``: a late report lands after the ones that overtook it.
    """
    cum: dict[tuple[str, str], int] = {}
    out: list[tuple[int, int, Report]] = []
    for i, f in enumerate(fills):
        kind, unknown = fate(config, f["fill_id"])
        if kind != "missing":
            qty, price = f["quantity"], f["price"]
            if kind == "qty":
                qty = qty - 1 if qty > 1 else qty + 1
            elif kind == "price":
                price += 1
            delay = config.late_delay_ns if kind == "late" else config.report_delay_ns
            out.append((f["ts_ns"] + delay, 2 * i, _report(f, f["fill_id"], price, qty, f["ts_ns"] + delay, cum)))
        if unknown:
            recv = f["ts_ns"] + config.report_delay_ns
            out.append((recv, 2 * i + 1, _report(f, f"X-{f['fill_id']}", f["price"], f["quantity"], recv, cum)))
    out.sort(key=lambda t: (t[0], t[1]))
    return [r for _, _, r in out]


def _report(f: Mapping[str, Any], exec_id: str, price: int, qty: int, recv: int, cum: dict[tuple[str, str], int]) -> Report:
    order = (f["account"], f["order_id"])
    total = cum[order] = cum.get(order, 0) + qty
    value = {
        "venue": f["venue"], "account": f["account"], "symbol": f["symbol"], "client_order_id": f["client_order_id"],
        "venue_order_id": f["order_id"], "exec_id": exec_id, "exec_type": "PARTIAL_FILL", "side": f["side"],
        "last_price": price, "last_qty": qty, "cum_qty": total, "leaves_qty": 0, "venue_ts_ns": f["ts_ns"],
        "recv_ts_ns": recv,
    }
    return Report(f["account"], value, recv)

"""A venue's drop copy, simulated: execution reports derived from our fills, with faults injected by seed.

One fill's reports come from :func:`reports_for`, shared by the pure :func:`drop_copy` (a whole list of
fills at once) and the exactly-once :class:`~connectors.dropcopy.processor.DropCopyProcessor` (one fill at
a time), so both derive the same reports, byte for byte. Each fill's fate is drawn from a hash of
``(seed, fill_id)``, not from a random stream, so it does not depend on the order the fills are read in
(partition by partition, or merged).

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
so every report is a ``PARTIAL_FILL`` with ``leaves_qty`` 0 and ``cum_qty`` the running total of the
order's reported executions *at execution time* (in fill order, as a venue numbers them: a late report
carries the total as of its execution, not of its delivery). The reconciler compares executions (side,
quantity, price), never totals. The running totals are kept for the ``retain_orders`` most recently
executed orders; an order forgotten (least recently executed first) starts again from zero.

Configuration: ``DropCopyConfig()`` with no fields at all is the shipped ``infra/dropcopy.yaml`` (a small,
realistic rate of each fault), so ``hftstream run dropcopy`` without ``--config`` runs with it; any field
given builds the config from the model defaults (no faults) instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.errors import ConfigError

REPORT_SCHEMA = "hftstream.exec.ExecutionReport"
FILL_SCHEMA = "hftstream.fills.Fill"
FILLS_TOPIC, REPORTS_TOPIC = "fills", "exec.reports"
Fate = Literal["ok", "missing", "late", "qty", "price", "unknown"]
FATES: tuple[str, ...] = ("missing", "late", "qty", "price", "unknown")
PPM = 1_000_000


class DropCopyConfig(BaseModel):
    """What the simulated venue reports, and how it fails. Frozen; unknown fields are an error.

    ``seed``                the fates' seed; ``report_delay_ns`` / ``late_delay_ns`` how long after the fill a
    report / a late report arrives; ``*_ppm`` each fault's rate in parts per million of fills;
    ``retain_orders`` how many orders' running ``cum_qty`` are kept (bounds the state); ``faults`` fill id -> fate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    report_delay_ns: int = Field(default=1_000_000, ge=0)
    late_delay_ns: int = Field(default=30_000_000_000, ge=0)
    missing_ppm: int = Field(default=0, ge=0, le=PPM)
    late_ppm: int = Field(default=0, ge=0, le=PPM)
    qty_ppm: int = Field(default=0, ge=0, le=PPM)
    price_ppm: int = Field(default=0, ge=0, le=PPM)
    unknown_ppm: int = Field(default=0, ge=0, le=PPM)
    retain_orders: int = Field(default=100_000, ge=1)
    faults: dict[str, Fate] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shipped_when_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            return shipped_config()
        return data


def shipped_config() -> dict[str, Any]:
    """The fields of ``infra/dropcopy.yaml`` (a :class:`ConfigError` when it is missing or not a mapping)."""
    import yaml

    from streams.config import data_dir

    path = data_dir("infra") / "dropcopy.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the drop-copy config {path}: {exc}", hint="restore infra/dropcopy.yaml, or give --config FILE") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"the drop-copy config {path} is empty or not a mapping", hint="see the fields in connectors/dropcopy/simulator.py")
    return raw


class Report(NamedTuple):
    """One report to publish: key (the account), Avro value, log timestamp (= ``recv_ts_ns``)."""

    key: str
    value: dict[str, Any]
    timestamp_ns: int


class OrderTotals:
    """Running ``cum_qty`` per ``(account, order_id)``, the ``retain`` most recently executed orders only."""

    __slots__ = ("retain", "totals")

    def __init__(self, retain: int) -> None:
        self.retain = retain
        self.totals: dict[tuple[str, str], int] = {}  # least recently executed first

    def add(self, account: str, order_id: str, qty: int) -> int:
        """Count ``qty`` more for the order; its new total."""
        totals, key = self.totals, (account, order_id)
        total = totals.pop(key, 0) + qty
        totals[key] = total
        if len(totals) > self.retain:
            del totals[next(iter(totals))]
        return total

    def to_json(self) -> list[list[Any]]:
        """``[account, order_id, total]`` rows, least recently executed first."""
        return [[a, o, t] for (a, o), t in self.totals.items()]

    def load_json(self, rows: list[list[Any]]) -> None:
        """Replace the totals with :meth:`to_json` rows."""
        self.totals = {(a, o): t for a, o, t in rows}


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


def reports_for(f: Mapping[str, Any], config: DropCopyConfig, totals: OrderTotals) -> tuple[str, bool, list[Report]]:
    """``(fate, unknown, reports)`` of one fill (a ``hftstream.fills.Fill`` value): its report unless missing, then the
    unknown execution if any. Counts their quantities in ``totals`` (the order's ``cum_qty``)."""
    kind, unknown = fate(config, f["fill_id"])
    out: list[Report] = []
    if kind != "missing":
        qty, price = f["quantity"], f["price"]
        if kind == "qty":
            qty = qty - 1 if qty > 1 else qty + 1
        elif kind == "price":
            price += 1
        delay = config.late_delay_ns if kind == "late" else config.report_delay_ns
        out.append(_report(f, f["fill_id"], price, qty, f["ts_ns"] + delay, totals))
    if unknown:
        out.append(_report(f, f"X-{f['fill_id']}", f["price"], f["quantity"], f["ts_ns"] + config.report_delay_ns, totals))
    return kind, unknown, out


def drop_copy(fills: Iterable[Mapping[str, Any]], config: DropCopyConfig) -> list[Report]:
    """The execution reports the venue sends for ``fills`` (``hftstream.fills.Fill`` values), in arrival order.

    Sorted by ``(recv_ts_ns, fill order)``: a late report lands after the ones that overtook it.
    """
    totals = OrderTotals(config.retain_orders)
    out: list[tuple[int, int, int, Report]] = []
    for i, f in enumerate(fills):
        for j, rep in enumerate(reports_for(f, config, totals)[2]):
            out.append((rep.timestamp_ns, i, j, rep))
    out.sort(key=lambda t: (t[0], t[1], t[2]))
    return [r for *_, r in out]


def _report(f: Mapping[str, Any], exec_id: str, price: int, qty: int, recv: int, totals: OrderTotals) -> Report:
    value = {
        "venue": f["venue"], "account": f["account"], "symbol": f["symbol"], "client_order_id": f["client_order_id"],
        "venue_order_id": f["order_id"], "exec_id": exec_id, "exec_type": "PARTIAL_FILL", "side": f["side"],
        "last_price": price, "last_qty": qty, "cum_qty": totals.add(f["account"], f["order_id"], qty), "leaves_qty": 0,
        "venue_ts_ns": f["ts_ns"], "recv_ts_ns": recv,
    }
    return Report(f["account"], value, recv)

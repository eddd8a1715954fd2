"""The reconciliation processor: our fills against the venue's drop copy (see the package docstring)."""

from __future__ import annotations

import functools
import heapq
from typing import Any, ClassVar

from streams.ops.signing import sign
from streams.processors.base import Input, Message, Output, Processor, Reject, dump_state, load_state
from streams.processors.reconcile.config import ReconcileConfig
from streams.serde.repo import SchemaRepo

FILLS_TOPIC, REPORTS_TOPIC = "fills", "exec.reports"
BREAKS_TOPIC, STATUS_TOPIC, OPS_TOPIC = "recon.breaks", "recon.status", "ops.commands"
FILL, REPORT = "hftstream.fills.Fill", "hftstream.exec.ExecutionReport"
BREAK, STATUS, HALT = "hftstream.recon.ReconBreak", "hftstream.recon.ReconStatus", "hftstream.ops.Halt"
EXECUTIONS = frozenset({"PARTIAL_FILL", "FILL"})
SNAPSHOT_VERSION = 1

IN_SYNC, DIVERGED, HALTED = "IN_SYNC", "DIVERGED", "HALTED"
MISSING_VENUE, MISSING_INTERNAL = "MISSING_VENUE", "MISSING_INTERNAL"
QTY_MISMATCH, PRICE_MISMATCH, SIDE_MISMATCH = "QTY_MISMATCH", "PRICE_MISMATCH", "SIDE_MISMATCH"
BREAK_KINDS = (MISSING_VENUE, MISSING_INTERNAL, QTY_MISMATCH, PRICE_MISMATCH, SIDE_MISMATCH)

# Stable reason codes of dead-lettered inputs.
DUPLICATE_FILL = "DUPLICATE_FILL"
BAD_REPORT = "BAD_REPORT"
UNEXPECTED_SCHEMA = "UNEXPECTED_SCHEMA"
REASON_CODES = (DUPLICATE_FILL, BAD_REPORT, UNEXPECTED_SCHEMA)

# One execution as either side tells it: [venue, account, symbol, client_order_id, side, price, qty, time]
VENUE, ACCOUNT, SYMBOL, COID, SIDE, PRICE, QTY, TIME = range(8)
_FILL_SIDE, _REPORT_SIDE = 0, 1  # heap ranks: at one deadline, fills expire before reports


@functools.cache
def default_repo() -> SchemaRepo:
    """The schemas, loaded once per process (the halt's signature covers its Avro encoding)."""
    return SchemaRepo.load()


class VenueState:
    """Reconciliation counts and state of one venue in one task."""

    __slots__ = ("halted", "late", "matched", "open", "reported")

    def __init__(self) -> None:
        self.open = self.matched = self.late = 0
        self.halted = False
        self.reported: tuple[str, int] | None = None  # (state, open) of the last status emitted

    @property
    def state(self) -> str:
        """HALTED once halted (until an operator resumes trading and the reconciler restarts); else by open breaks."""
        return HALTED if self.halted else DIVERGED if self.open else IN_SYNC

    def to_json(self) -> list[Any]:
        """As a JSON list."""
        return [self.open, self.matched, self.late, self.halted, list(self.reported) if self.reported else None]

    @classmethod
    def from_json(cls, row: list[Any]) -> VenueState:
        """From :meth:`to_json` output."""
        v = cls()
        v.open, v.matched, v.late, v.halted = row[0], row[1], row[2], row[3]
        v.reported = (row[4][0], row[4][1]) if row[4] else None
        return v


class ReconcileProcessor(Processor):
    """Task ``task`` of the reconciler: partition ``task`` of ``fills`` and of ``exec.reports`` (co-partitioned by account)."""

    name: ClassVar[str] = "reconcile"
    returns_lists: ClassVar[bool] = True  # process() returns lists: process_batch skips the copy
    shared_outputs: ClassVar[tuple[str, ...]] = (OPS_TOPIC,)  # operators publish signed commands there too
    config_class: ClassVar[type[ReconcileConfig]] = ReconcileConfig

    def __init__(self, config: ReconcileConfig, task: int, repo: SchemaRepo | None = None) -> None:
        self.config = config
        self.task = task
        self.inputs = (Input(FILLS_TOPIC), Input(REPORTS_TOPIC))
        self.outputs = (BREAKS_TOPIC, STATUS_TOPIC, OPS_TOPIC)
        self._repo = repo or default_repo()
        self._key = config.key_bytes()
        self._window = config.match_window_ns
        self._threshold = config.halt_threshold
        self._reset()

    def _reset(self) -> None:
        self._fills: dict[str, list[Any]] = {}  # fill_id -> execution, awaiting its report
        self._reports: dict[str, list[Any]] = {}  # exec_id -> execution, awaiting its fill
        self._missing_venue: dict[str, list[Any]] = {}  # fills past the window with no report: open breaks
        self._missing_internal: dict[str, list[Any]] = {}  # reports past the window with no fill: open breaks
        self._heap: list[tuple[int, int, str]] = []  # (deadline, side, id); stale entries are skipped
        self._venues: dict[str, VenueState] = {}
        self._clock = -1
        self._breaks: dict[str, int] = dict.fromkeys(BREAK_KINDS, 0)
        self._counts = {"fills": 0, "reports": 0, "not_executions": 0, "healed": 0, "halts": 0}
        self._rejected: dict[str, int] = dict.fromkeys(REASON_CODES, 0)

    # -- the contract ----------------------------------------------------------------------

    def process(self, msg: Message) -> list[Output]:
        """Outputs for one input; raises :class:`Reject` for one that belongs in ``dlq.reconcile``."""
        try:
            if msg.schema == FILL:
                return self._fill(msg.value)
            if msg.schema == REPORT:
                return self._report(msg.value)
            raise Reject(UNEXPECTED_SCHEMA, f"{msg.topic} carries {msg.schema}; reconcile reads {FILL} and {REPORT}")
        except Reject as exc:
            self._rejected[exc.reason_code] += 1
            raise

    def snapshot(self) -> bytes:
        """Pending and open executions, venue states, the clock and counts, as sorted JSON."""
        state = {
            "version": SNAPSHOT_VERSION,
            "fills": self._fills, "reports": self._reports,
            "missing_venue": self._missing_venue, "missing_internal": self._missing_internal,
            "venues": {v: s.to_json() for v, s in self._venues.items()},
            "clock": self._clock, "breaks": self._breaks, "counts": self._counts, "rejected": self._rejected,
        }
        return dump_state(state)

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a :meth:`snapshot` blob (empty bytes = the initial state)."""
        self._reset()
        if not blob:
            return
        state = load_state(blob, "reconcile", SNAPSHOT_VERSION)
        self._fills, self._reports = state["fills"], state["reports"]
        self._missing_venue, self._missing_internal = state["missing_venue"], state["missing_internal"]
        self._venues = {v: VenueState.from_json(row) for v, row in state["venues"].items()}
        self._clock = state["clock"]
        self._breaks.update(state["breaks"])
        self._counts.update(state["counts"])
        self._rejected.update(state["rejected"])
        w = self._window
        self._heap = sorted([(e[TIME] + w, _FILL_SIDE, k) for k, e in self._fills.items()]
                            + [(e[TIME] + w, _REPORT_SIDE, k) for k, e in self._reports.items()])

    def states(self) -> dict[str, dict[str, str]]:
        """Each venue's state in this task, as last emitted on ``recon.status`` (the runtime's ``hftstream_recon_status``)."""
        return {"recon": {name: v.reported[0] for name, v in self._venues.items() if v.reported is not None}}

    def counters(self) -> dict[str, int]:
        """Counts since the state began (they survive snapshot/restore), for the runtime's metrics."""
        out = dict(self._counts)
        out["matched"] = sum(v.matched for v in self._venues.values())
        out["late"] = sum(v.late for v in self._venues.values())
        out["open_breaks"] = sum(v.open for v in self._venues.values())
        out["pending_fills"], out["pending_reports"] = len(self._fills), len(self._reports)
        out.update({f"breaks.{k}": n for k, n in self._breaks.items()})
        out.update({f"rejected.{code}": n for code, n in self._rejected.items()})
        return out

    def status(self, venue: str) -> str | None:
        """The venue's reconciliation state in this task (``IN_SYNC`` / ``DIVERGED`` / ``HALTED``), or ``None``."""
        v = self._venues.get(venue)
        return v.state if v else None

    # -- inputs ------------------------------------------------------------------------------

    def _fill(self, v: dict[str, Any]) -> list[Output]:
        fid = v["fill_id"]
        if fid in self._fills or fid in self._missing_venue:
            raise Reject(DUPLICATE_FILL, f"fill {fid} ({v['account']} {v['symbol']}) was already seen and is still unreported")
        ex = [v["venue"], v["account"], v["symbol"], v["client_order_id"], v["side"], v["price"], v["quantity"], v["ts_ns"]]
        self._counts["fills"] += 1
        out = self._advance(ex[TIME])
        venue = self._venue(ex[VENUE])
        report = self._reports.pop(fid, None)
        if report is not None:
            self._match(ex, report, fid, venue, out)
        elif (report := self._missing_internal.pop(fid, None)) is not None:
            venue.open -= 1
            self._counts["healed"] += 1
            self._match(ex, report, fid, venue, out)
        else:
            self._fills[fid] = ex
            heapq.heappush(self._heap, (ex[TIME] + self._window, _FILL_SIDE, fid))
        self._settle(out)
        return out

    def _report(self, v: dict[str, Any]) -> list[Output]:
        if v["exec_type"] not in EXECUTIONS:
            self._counts["not_executions"] += 1
            return []
        xid = v["exec_id"]
        if v["last_price"] is None or v["last_qty"] <= 0:
            raise Reject(BAD_REPORT, f"execution report {xid}: a {v['exec_type']} needs a last_price and last_qty > 0")
        if xid in self._reports or xid in self._missing_internal:
            raise Reject(BAD_REPORT, f"execution report {xid} was already received and is still unmatched")
        ex = [v["venue"], v["account"], v["symbol"], v["client_order_id"], v["side"], v["last_price"], v["last_qty"], v["recv_ts_ns"]]
        self._counts["reports"] += 1
        out = self._advance(ex[TIME])
        venue = self._venue(ex[VENUE])
        fill = self._fills.pop(xid, None)
        if fill is not None:
            self._match(fill, ex, xid, venue, out)
        elif (fill := self._missing_venue.pop(xid, None)) is not None:
            venue.open -= 1
            venue.late += 1
            self._counts["healed"] += 1
            self._match(fill, ex, xid, venue, out)
        else:
            self._reports[xid] = ex
            heapq.heappush(self._heap, (ex[TIME] + self._window, _REPORT_SIDE, xid))
        self._settle(out)
        return out

    # -- matching ----------------------------------------------------------------------------

    def _match(self, fill: list[Any], report: list[Any], xid: str, venue: VenueState, out: list[Output]) -> None:
        venue.matched += 1
        if fill[SIDE] != report[SIDE]:
            self._break(SIDE_MISMATCH, fill, xid, _sign(fill[SIDE]), _sign(report[SIDE]),
                        f"we {fill[SIDE]}, the venue says {report[SIDE]} (values: +1 buy, -1 sell)", out)
        if fill[QTY] != report[QTY]:
            self._break(QTY_MISMATCH, fill, xid, fill[QTY], report[QTY], f"quantity: ours {fill[QTY]}, the venue's {report[QTY]}", out)
        if fill[PRICE] != report[PRICE]:
            self._break(PRICE_MISMATCH, fill, xid, fill[PRICE], report[PRICE], f"price: ours {fill[PRICE]}, the venue's {report[PRICE]}", out)

    def _advance(self, ts: int) -> list[Output]:
        """Move the event-time clock to ``ts`` and break every execution whose window closed before it."""
        out: list[Output] = []
        if ts <= self._clock:
            return out
        self._clock = ts
        heap = self._heap
        while heap and heap[0][0] < ts:
            deadline, side, xid = heapq.heappop(heap)
            if side == _FILL_SIDE:
                ex = self._fills.get(xid)
                if ex is None or ex[TIME] + self._window != deadline:
                    continue  # matched meanwhile (a stale entry)
                del self._fills[xid]
                self._missing_venue[xid] = ex
                self._break(MISSING_VENUE, ex, xid, ex[QTY], None,
                            f"no execution report within {self._window} ns of our fill at {ex[TIME]}", out)
            else:
                ex = self._reports.get(xid)
                if ex is None or ex[TIME] + self._window != deadline:
                    continue
                del self._reports[xid]
                self._missing_internal[xid] = ex
                self._break(MISSING_INTERNAL, ex, xid, None, ex[QTY],
                            f"the venue reports an execution at {ex[TIME]} we have no fill for within {self._window} ns", out)
        return out

    def _break(self, kind: str, ex: list[Any], xid: str, ours: int | None, theirs: int | None, detail: str, out: list[Output]) -> None:
        venue = self._venue(ex[VENUE])
        venue.open += 1
        self._breaks[kind] += 1
        out.append(Output(BREAKS_TOPIC, ex[ACCOUNT], BREAK, {
            "break_id": f"{kind}:{xid}", "kind": kind, "venue": ex[VENUE], "account": ex[ACCOUNT], "symbol": ex[SYMBOL],
            "client_order_id": ex[COID], "exec_id": xid, "internal_value": ours, "venue_value": theirs,
            "detail": detail, "ts_ns": self._clock,
        }))

    def _venue(self, name: str) -> VenueState:
        v = self._venues.get(name)
        if v is None:
            v = self._venues[name] = VenueState()
        return v

    def _settle(self, out: list[Output]) -> None:
        """Halt venues beyond the threshold, then emit the status of every venue whose (state, open breaks) changed."""
        for name in sorted(self._venues):
            v = self._venues[name]
            if not v.halted and v.open > self._threshold:
                v.halted = True
                self._counts["halts"] += 1
                out.append(Output(OPS_TOPIC, "global", HALT, self._halt(name, v)))
            now = (v.state, v.open)
            if now != v.reported:
                v.reported = now
                out.append(Output(STATUS_TOPIC, f"venue:{name}|task:{self.task}", STATUS, {
                    "venue": name, "state": v.state, "open_breaks": v.open, "matched": v.matched,
                    "checked_through_ts_ns": self._checked_through(), "ts_ns": self._clock,
                }))

    def _halt(self, venue: str, v: VenueState) -> dict[str, Any]:
        value = {
            "command_id": f"recon-halt:{venue}:{self.task}:{self._clock}", "operator_id": self.config.operator_id,
            "symbol": None, "ts_ns": self._clock, "signature": b"",
            "reason": f"reconciliation: {v.open} open breaks on venue {venue} (threshold {self._threshold}) in task {self.task}",
        }
        return sign(self._repo, HALT, value, self._key)

    def _checked_through(self) -> int:
        """Every execution up to this event time is matched or broken: just before the oldest one still waiting."""
        heap = self._heap
        while heap:
            deadline, side, xid = heap[0]
            ex = (self._fills if side == _FILL_SIDE else self._reports).get(xid)
            if ex is not None and ex[TIME] + self._window == deadline:
                return deadline - self._window - 1
            heapq.heappop(heap)
        return self._clock


def _sign(side: str) -> int:
    return 1 if side == "BUY" else -1

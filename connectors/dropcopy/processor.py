"""The drop copy as an exactly-once processor: ``fills`` in, the venue's ``exec.reports`` out, one fill at a time.

Task ``p`` reads partition ``p`` of ``fills`` (keyed by account) and writes each fill's reports, derived by
:func:`~connectors.dropcopy.simulator.reports_for` exactly as the pure
:func:`~connectors.dropcopy.simulator.drop_copy` derives them, to ``exec.reports`` keyed by account (so
partition ``p`` again: the reconciler reads both co-partitioned). Each report's log timestamp is its
``recv_ts_ns``, when the venue's drop copy arrives.

Event time. The task's clock is the largest fill ``ts_ns`` it has seen. A report is written when the clock
reaches its arrival, give or take the normal delay: at once when ``recv_ts_ns <= clock + report_delay_ns``
(every normal and unknown report), otherwise it is *held* in the state and written with the first fill that
moves the clock that far (a late report). The reports written by one fill are in ``(recv_ts_ns, fill order)``
order, so on fills in time order a partition of ``exec.reports`` is in arrival order, as the pure function
sorts it, and a late report never sits in front of the reports that overtook it (the runtime's merge would
otherwise hold the reconciler's reports back behind it). At the end of a finite input, the late reports
that have not arrived yet in event time stay held (counter ``held``); the reconciler sees their fills as
pending or missing, as it would in the world it simulates.

State (snapshot: sorted JSON): the running ``cum_qty`` per order, the held reports, the clock and counts.
Dead letters: ``UNEXPECTED_SCHEMA`` (anything but a ``hftstream.fills.Fill``).
"""

from __future__ import annotations

import heapq
from typing import Any, ClassVar

from connectors.dropcopy.simulator import (
    FILL_SCHEMA, FILLS_TOPIC, REPORT_SCHEMA, REPORTS_TOPIC, DropCopyConfig, OrderTotals, Report, reports_for,
)
from streams.processors.base import Input, Message, Output, Processor, Reject, dump_state, load_state

UNEXPECTED_SCHEMA = "UNEXPECTED_SCHEMA"
SNAPSHOT_VERSION = 1
FATE_COUNTS = ("ok", "missing", "late", "qty", "price", "unknown")


class DropCopyProcessor(Processor):
    """Task ``task`` of the drop copy: partition ``task`` of ``fills`` -> ``exec.reports`` (see the module docstring).

    ``fills_topic`` / ``reports_topic`` are class attributes so that a test or a benchmark can run it on other topics.
    """

    name: ClassVar[str] = "dropcopy"
    returns_lists: ClassVar[bool] = True  # process() returns lists: process_batch skips the copy
    config_class: ClassVar[type[DropCopyConfig]] = DropCopyConfig
    fills_topic: ClassVar[str] = FILLS_TOPIC
    reports_topic: ClassVar[str] = REPORTS_TOPIC

    def __init__(self, config: DropCopyConfig, task: int) -> None:
        self.config = config
        self.task = task
        self.inputs = (Input(self.fills_topic),)
        self.outputs = (self.reports_topic,)
        self._reset()

    def _reset(self) -> None:
        self._totals = OrderTotals(self.config.retain_orders)
        self._held: list[tuple[int, int, int, dict[str, Any]]] = []  # heap of (recv_ts_ns, fill seq, index, value)
        self._seq = 0  # fills seen: the tie-break that keeps fill order among equal arrival times
        self._clock = -1
        self._counts: dict[str, int] = dict.fromkeys(("fills", "reports", *FATE_COUNTS), 0)
        self._rejected = 0

    # -- the contract ----------------------------------------------------------------------

    def process(self, msg: Message) -> list[Output]:
        """The reports due once this fill is seen; raises :class:`Reject` for anything but a fill."""
        if msg.schema != FILL_SCHEMA:
            self._rejected += 1
            raise Reject(UNEXPECTED_SCHEMA, f"{msg.topic} carries {msg.schema}; the drop copy reads {FILL_SCHEMA}")
        f = msg.value
        seq = self._seq
        self._seq = seq + 1
        if f["ts_ns"] > self._clock:
            self._clock = f["ts_ns"]
        kind, unknown, mine = reports_for(f, self.config, self._totals)
        counts = self._counts
        counts["fills"] += 1
        counts[kind] += 1
        counts["unknown"] += unknown
        horizon = self._clock + self.config.report_delay_ns
        held = self._held
        due: list[tuple[int, int, int, dict[str, Any]]] = []
        for j, rep in enumerate(mine):
            entry = (rep.timestamp_ns, seq, j, rep.value)
            if rep.timestamp_ns <= horizon:
                due.append(entry)
            else:
                heapq.heappush(held, entry)
        while held and held[0][0] <= horizon:
            due.append(heapq.heappop(held))
        if len(due) > 1:
            due.sort(key=lambda e: (e[0], e[1], e[2]))
        counts["reports"] += len(due)
        topic = self.reports_topic
        return [Output(topic, v["account"], REPORT_SCHEMA, v, recv) for recv, _, _, v in due]

    def snapshot(self) -> bytes:
        """Running totals (least recently executed first), held reports (in arrival order), clock, counts: sorted JSON."""
        state = {
            "version": SNAPSHOT_VERSION, "totals": self._totals.to_json(),
            "held": [list(e) for e in sorted(self._held, key=lambda e: (e[0], e[1], e[2]))],
            "seq": self._seq, "clock": self._clock, "counts": self._counts, "rejected": self._rejected,
        }
        return dump_state(state)

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a :meth:`snapshot` blob (empty bytes = the initial state)."""
        self._reset()
        if not blob:
            return
        state = load_state(blob, "dropcopy", SNAPSHOT_VERSION)
        self._totals.load_json(state["totals"])
        self._held = [(e[0], e[1], e[2], e[3]) for e in state["held"]]  # sorted, hence already a heap
        self._seq, self._clock, self._rejected = state["seq"], state["clock"], state["rejected"]
        self._counts.update(state["counts"])

    def counters(self) -> dict[str, int]:
        """Counts since the state began (they survive snapshot/restore), for the runtime's metrics."""
        out = dict(self._counts)
        out["held"] = len(self._held)
        out[f"rejected.{UNEXPECTED_SCHEMA}"] = self._rejected
        return out

    def held(self) -> list[Report]:
        """The reports not written yet (late ones whose arrival the clock has not reached), in arrival order."""
        return [Report(v["account"], v, recv) for recv, _, _, v in sorted(self._held, key=lambda e: (e[0], e[1], e[2]))]

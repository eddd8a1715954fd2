"""Sequence numbers and liveness of one venue channel (one partition of ``md.raw.<venue>``).

A venue numbers the messages of each channel ``1, 2, 3, ...`` on its own. :class:`Channel`
keeps the next number it expects and the ranges it is still missing, and judges each
arriving number (:meth:`Channel.accept`):

``IN_ORDER``  the expected one;
``GAP``       higher than expected: the numbers in between are missing (one new open range);
``LATE``      lower than expected and inside an open range: a late (reordered) message that
              fills part of a gap -- accepted and normalized like any other;
``DUP``       lower than expected and not missing: seen before -- suppressed.

Channels without sequence numbers can only recognise a resend that follows its original:
:meth:`Channel.repeat` compares the payload with the previous one, byte for byte.

A missing range stays open while it is within ``reorder_window`` numbers of the newest one
(and among the newest ``max_open_gaps`` ranges); after that its numbers count as ``lost``
and a message carrying one of them is indistinguishable from a duplicate.
The first number a channel expects is 1, so a feed read from its start reports nothing,
and one read from the middle reports the numbers before its first message as one gap.
"""

from __future__ import annotations

from typing import Any

IN_ORDER, GAP, LATE, DUP = 0, 1, 2, 3

HEALTHY, GAPPED, STALE = "HEALTHY", "GAPPED", "STALE"


class Channel:
    """One venue channel's sequencing state, liveness and counts (all plain ints and lists: cheap to snapshot)."""

    __slots__ = (
        "duplicates", "gap_messages", "gaps", "last_payload", "last_recv", "lost", "missing", "next_seq", "out_of_order",
        "partition", "state", "topic", "venue",
    )

    def __init__(self, topic: str, partition: int, venue: str) -> None:
        self.topic, self.partition, self.venue = topic, partition, venue
        self.next_seq = 1
        self.missing: list[list[int]] = []  # open gaps [lo, hi], ascending, disjoint
        self.last_recv = -1  # recv_ts_ns of the newest message seen on the channel
        self.last_payload = b""  # unsequenced channels: the previous payload (a resend repeats it byte for byte)
        self.state = HEALTHY  # the feed state last reported for the channel
        self.gaps = self.gap_messages = self.out_of_order = self.duplicates = self.lost = 0

    def accept(self, seq: int, window: int, max_open: int) -> int:
        """Judge sequence number ``seq`` and update the state; returns ``IN_ORDER``, ``GAP``, ``LATE`` or ``DUP``."""
        expected = self.next_seq
        if seq == expected:
            self.next_seq = seq + 1
            if self.missing:
                self._expire(window, max_open)
            return IN_ORDER
        if seq > expected:
            self.missing.append([expected, seq - 1])
            self.gaps += 1
            self.gap_messages += seq - expected
            self.next_seq = seq + 1
            self._expire(window, max_open)
            return GAP
        missing = self.missing
        for i in range(len(missing) - 1, -1, -1):
            lo, hi = missing[i]
            if hi < seq:
                break
            if lo <= seq:
                if lo == hi:
                    del missing[i]
                elif seq == lo:
                    missing[i][0] = lo + 1
                elif seq == hi:
                    missing[i][1] = hi - 1
                else:
                    missing[i:i + 1] = [[lo, seq - 1], [seq + 1, hi]]
                    if len(missing) > max_open:
                        self._expire(window, max_open)
                self.out_of_order += 1
                return LATE
        self.duplicates += 1
        return DUP

    def repeat(self, payload: bytes) -> bool:
        """Unsequenced channels: is ``payload`` the previous message again, byte for byte (a resend)?

        Venue payloads carry nanosecond event times, so two distinct messages are never identical.
        """
        if payload == self.last_payload:
            self.duplicates += 1
            return True
        self.last_payload = payload
        return False

    def _expire(self, window: int, max_open: int) -> None:
        """Give up on missing numbers older than the window, and on the oldest ranges beyond ``max_open``."""
        missing, newest = self.missing, self.next_seq - 1
        while missing and (newest - missing[0][1] > window or len(missing) > max_open):
            lo, hi = missing.pop(0)
            self.lost += hi - lo + 1

    # -- snapshot ---------------------------------------------------------------------------

    def to_json(self) -> list[Any]:
        """The channel as a JSON list (see :meth:`from_json`)."""
        return [
            self.topic, self.partition, self.venue, self.next_seq, self.missing, self.last_recv, self.state,
            self.gaps, self.gap_messages, self.out_of_order, self.duplicates, self.lost, self.last_payload.hex(),
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> Channel:
        """Rebuild a channel from :meth:`to_json` output."""
        ch = cls(row[0], row[1], row[2])
        ch.next_seq, ch.missing, ch.last_recv, ch.state = row[3], [list(r) for r in row[4]], row[5], row[6]
        ch.gaps, ch.gap_messages, ch.out_of_order, ch.duplicates, ch.lost = row[7:12]
        ch.last_payload = bytes.fromhex(row[12])
        return ch

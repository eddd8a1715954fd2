"""The runtime's merge order: per-partition offset order, k-way by (ms, rank, topic, partition), alignment."""

from __future__ import annotations

import random

import pytest

from streams.log.base import Record
from streams.runtime.merge import Merger

MS = 1_000_000


def rec(topic: str, partition: int, offset: int, ts_ms: float) -> Record:
    return Record(topic, partition, offset, int(ts_ms * MS), None, b"v")


def ids(records: list[Record]) -> list[tuple[str, int, int]]:
    return [(r.topic, r.partition, r.offset) for r in records]


def caught_up(m: Merger) -> Merger:
    for tp, q in m.queues.items():
        m.set_end(tp, q.position, q.position)
    return m


def test_k_way_merge_by_time_then_rank_then_topic_then_partition() -> None:
    m = Merger([(("b", 0), 1, 0), (("a", 0), 1, 0), (("ref", 0), 0, 0), (("a", 1), 1, 0)])
    m.add([rec("a", 0, 0, 5), rec("a", 0, 1, 7)])
    m.add([rec("a", 1, 0, 5)])
    m.add([rec("b", 0, 0, 5)])
    m.add([rec("ref", 0, 0, 5), rec("ref", 0, 1, 6)])
    caught_up(m)
    assert ids(m.pop(100)) == [("ref", 0, 0), ("a", 0, 0), ("a", 1, 0), ("b", 0, 0), ("ref", 0, 1), ("a", 0, 1)]


def test_sub_millisecond_differences_do_not_reorder() -> None:
    """Kafka keeps ms: two records in the same ms merge by rank/topic/partition on both logs."""
    m = Merger([(("a", 0), 0, 0), (("a", 1), 0, 0)])
    m.add([rec("a", 1, 0, 5.0001)])
    m.add([rec("a", 0, 0, 5.0009)])
    caught_up(m)
    assert ids(m.pop(10)) == [("a", 0, 0), ("a", 1, 0)]


def test_a_partition_is_never_reordered_even_when_its_timestamps_go_backwards() -> None:
    m = Merger([(("a", 0), 0, 0), (("b", 0), 0, 0)])
    m.add([rec("a", 0, 0, 10), rec("a", 0, 1, 1), rec("a", 0, 2, 20)])
    m.add([rec("b", 0, 0, 5), rec("b", 0, 1, 15)])
    caught_up(m)
    out = ids(m.pop(10))
    assert [o for o in out if o[0] == "a"] == [("a", 0, 0), ("a", 0, 1), ("a", 0, 2)]
    assert out == [("b", 0, 0), ("a", 0, 0), ("a", 0, 1), ("b", 0, 1), ("a", 0, 2)]


def test_an_empty_partition_that_may_hold_records_holds_the_merge_back() -> None:
    m = Merger([(("a", 0), 0, 0), (("b", 0), 0, 0)])
    m.add([rec("a", 0, 0, 10)])
    m.set_end(("a", 0), 1, 1)
    m.set_end(("b", 0), 3, 0)  # b has 3 records we have not read yet
    assert m.blocked()
    assert m.pop(10) == []


def test_force_never_goes_past_a_partition_with_records_on_the_broker() -> None:
    """KIP-695: after max_wait the merge may go on only past partitions the broker says are empty."""
    m = Merger([(("a", 0), 0, 0), (("b", 0), 0, 0)])
    m.add([rec("a", 0, 0, 10), rec("a", 0, 1, 11)])
    m.set_end(("a", 0), 2, 2)
    m.set_end(("b", 0), 3, 0)  # b has 3 records on the broker, not fetched yet
    assert m.pop(10, force=True) == []  # not asked: unknown lag is waited for
    m.set_broker_end({("b", 0): 3})  # the broker: b's stable end is 3, the reader is at 0
    assert m.blocked(force=True)
    assert m.pop(10, force=True) == []
    m.set_broker_end({("b", 0): 0})  # b's records are an open transaction: nothing stable past the reader
    assert m.holding_back() == [("b", 0)]
    assert ids(m.pop(10, force=True)) == [("a", 0, 0), ("a", 0, 1)]


def test_force_in_the_middle_of_a_merge_stops_at_a_partition_with_lag() -> None:
    """A partition that runs empty during a forced pop stops it unless the broker says it is empty."""
    m = Merger([(("a", 0), 0, 0), (("b", 0), 0, 0), (("c", 0), 0, 0)])
    m.add([rec("a", 0, 0, 1), rec("a", 0, 1, 9)])
    m.add([rec("b", 0, 0, 2)])
    m.set_end(("a", 0), 2, 2)
    m.set_end(("b", 0), 5, 1)  # b: 4 more on the broker
    m.set_end(("c", 0), 1, 0)
    m.set_broker_end({("c", 0): 0, ("b", 0): 5})  # c is empty at the broker; b is not
    assert ids(m.pop(10, force=True)) == [("a", 0, 0), ("b", 0, 0)]  # stops where b ran empty
    m.add([rec("b", 0, 1, 3)])
    m.set_broker_end({("b", 0): 2, ("c", 0): 0})
    assert ids(m.pop(10, force=True)) == [("b", 0, 1), ("a", 0, 1)]


def test_a_caught_up_empty_partition_does_not_block() -> None:
    m = Merger([(("a", 0), 0, 0), (("b", 0), 0, 5)])
    m.add([rec("a", 0, 0, 10)])
    m.set_end(("a", 0), 1, 1)
    m.set_end(("b", 0), 5, 5)
    assert not m.blocked()
    assert ids(m.pop(10)) == [("a", 0, 0)]
    assert m.idle()


def test_unknown_end_counts_as_maybe_more() -> None:
    m = Merger([(("a", 0), 0, 0), (("b", 0), 0, 0)])
    m.add([rec("a", 0, 0, 1)])
    assert m.pop(5) == []


def test_merge_stops_when_a_partition_runs_dry_mid_merge() -> None:
    """b's next record (not read yet) could sort before a's later records: stop, don't guess."""
    m = Merger([(("a", 0), 0, 0), (("b", 0), 0, 0)])
    m.add([rec("a", 0, 0, 1), rec("a", 0, 1, 4)])
    m.add([rec("b", 0, 0, 2)])
    m.set_end(("a", 0), 2, 2)
    m.set_end(("b", 0), 9, 1)
    assert ids(m.pop(10)) == [("a", 0, 0), ("b", 0, 0)]
    assert m.positions() == {("a", 0): 1, ("b", 0): 1}


@pytest.mark.parametrize("seed", range(20))
def test_order_does_not_depend_on_how_records_arrive_or_batches_are_cut(seed: int) -> None:
    """The property recovery and verify rely on: pre-published input gives one order, whatever the polling."""
    rng = random.Random(seed)
    parts = {("t", p): [rec("t", p, o, rng.randrange(50)) for o in range(rng.randrange(1, 30))] for p in range(4)}
    parts[("g", 0)] = [rec("g", 0, o, rng.randrange(50)) for o in range(10)]
    specs = [(tp, 0 if tp[0] == "g" else 1, 0) for tp in parts]

    def run(chunking: random.Random) -> list[tuple[str, int, int]]:
        m = Merger(specs)
        left = {tp: list(rs) for tp, rs in parts.items()}
        out: list[Record] = []
        while any(left.values()) or m.buffered():
            for tp, rs in left.items():  # deliver a random-sized slice of some partitions
                if rs and chunking.random() < 0.5:
                    n = chunking.randrange(1, len(rs) + 1)
                    m.add(rs[:n])
                    del rs[:n]
                m.set_end(tp, len(parts[tp]), m.queues[tp].position)
            out.extend(m.pop(chunking.randrange(1, 8)))
        return ids(out)

    first = run(random.Random(1000 + seed))
    assert sorted(first) == sorted(ids([r for rs in parts.values() for r in rs]))
    for other in range(3):
        assert run(random.Random(2000 + seed * 10 + other)) == first


# -- horizons (streams.runtime.lockstep) -----------------------------------------------------


def test_a_horizon_holds_back_records_at_or_past_it_and_settles_the_merge() -> None:
    m = Merger([(("a", 0), 0, 0), (("b", 0), 0, 0)])
    m.add([rec("a", 0, 0, 1), rec("a", 0, 1, 9), rec("a", 0, 2, 10), rec("a", 0, 3, 11)])
    m.set_horizon({("a", 0): 10, ("b", 0): 10})
    assert not m.settled()  # b may still receive a record before 10
    m.set_end(("b", 0), 0, 0)
    assert m.settled()
    assert ids(m.pop(100)) == [("a", 0, 0), ("a", 0, 1)]
    assert ids(m.pop(100)) == []  # 10 is the horizon itself: exclusive
    m.set_horizon({("a", 0): 12, ("b", 0): 12})
    assert ids(m.pop(100)) == [("a", 0, 2), ("a", 0, 3)]


def test_a_partition_with_only_early_records_buffered_is_not_settled_until_at_its_end() -> None:
    m = Merger([(("a", 0), 0, 0)])
    m.add([rec("a", 0, 0, 1)])
    m.set_horizon({("a", 0): 10})
    assert not m.settled()  # the reader has not reached the end: a record at 5 may follow
    m.set_end(("a", 0), 5, 1)
    assert not m.settled()
    m.add([rec("a", 0, 1, 5), rec("a", 0, 2, 30)])
    assert m.settled()  # a record past the horizon is buffered: the prefix before it is known
    assert ids(m.pop(100)) == [("a", 0, 0), ("a", 0, 1)]


def test_a_late_record_in_a_partition_holds_back_the_rest_of_that_partition_only() -> None:
    m = Merger([(("a", 0), 0, 0), (("b", 0), 0, 0)])
    m.add([rec("a", 0, 0, 1), rec("a", 0, 1, 50), rec("a", 0, 2, 2)])
    m.add([rec("b", 0, 0, 3)])
    caught_up(m)
    m.set_horizon({("a", 0): 10, ("b", 0): 10})
    assert m.settled()
    assert ids(m.pop(100)) == [("a", 0, 0), ("b", 0, 0)]
    m.set_horizon({})
    assert ids(m.pop(100)) == [("a", 0, 1), ("a", 0, 2)]


# -- caps (streams.runtime.dataflow, two cores) ------------------------------------------------


def test_a_cap_keeps_records_at_or_past_it_aside_and_is_where_the_partition_ends() -> None:
    m = Merger([(("a", 0), 0, 0), (("b", 0), 0, 0)])
    m.set_cap({("a", 0): 2})
    m.add([rec("a", 0, 0, 5), rec("a", 0, 1, 6), rec("a", 0, 2, 1), rec("a", 0, 3, 2)])  # 2 and 3: a later slice's, older ts
    m.set_end(("a", 0), 4, 4)
    m.set_end(("b", 0), 0, 0)
    assert m.settled() and m.queues[("a", 0)].end == 2
    assert ids(m.pop(100)) == [("a", 0, 0), ("a", 0, 1)]  # never the records past the cap, however old
    assert m.idle() and m.positions()[("a", 0)] == 2  # a commit resumes at the first record kept aside
    m.set_cap({("a", 0): 3})
    assert ids(m.pop(100)) == [("a", 0, 2)]
    m.set_cap({})
    assert ids(m.pop(100)) == [("a", 0, 3)] and m.positions()[("a", 0)] == 4


def test_a_cap_waits_for_the_reader_to_reach_it_even_when_the_log_says_less() -> None:
    m = Merger([(("a", 0), 0, 0)])
    m.set_cap({("a", 0): 3})  # the writer reported 3 after its commit: those records are on the log
    m.add([rec("a", 0, 0, 1)])
    m.set_end(("a", 0), 1, 1)  # a stale end from the reader
    assert not m.settled() and not m.idle()
    m.add([rec("a", 0, 1, 2), rec("a", 0, 2, 3)])
    assert m.settled()
    assert ids(m.pop(100)) == [("a", 0, 0), ("a", 0, 1), ("a", 0, 2)]


def test_a_lower_cap_puts_buffered_records_back_aside_in_offset_order() -> None:
    m = Merger([(("a", 0), 0, 0)])
    m.add([rec("a", 0, i, i) for i in range(5)])
    m.set_cap({("a", 0): 2})
    m.set_end(("a", 0), 5, 5)
    assert ids(m.pop(100)) == [("a", 0, 0), ("a", 0, 1)]
    m.set_cap({("a", 0): 4})
    m.add([rec("a", 0, 5, 5)])  # read while capped: aside, behind the others
    assert ids(m.pop(100)) == [("a", 0, 2), ("a", 0, 3)]
    m.set_cap(None)
    assert ids(m.pop(100)) == [("a", 0, 4), ("a", 0, 5)]


@pytest.mark.parametrize("seed", range(10))
def test_a_run_added_at_once_is_buffered_as_record_by_record(seed: int) -> None:
    """``add_run`` (one partition's records of a poll, from ``start``) leaves the merger as ``add`` does: same order,
    positions and records kept aside by a cap."""
    rng = random.Random(seed)
    parts = {("t", p): [rec("t", p, o, rng.randrange(40)) for o in range(rng.randrange(1, 25))] for p in range(3)}
    specs = [(tp, 1, 0) for tp in parts]
    a, b = Merger(specs), Merger(specs)
    cap = {("t", 1): rng.randrange(0, 10)}
    a.set_cap(cap)
    b.set_cap(cap)
    for tp, rs in parts.items():
        cut = rng.randrange(len(rs) + 1)
        a.add(rs[cut:])
        b.add_run(tp, rs, cut)
    for m in (a, b):
        for tp, rs in parts.items():
            m.set_end(tp, len(rs), len(rs))
    assert [(q.position, q.reader_position, ids(list(q.aside))) for q in a.queues.values()] == [
        (q.position, q.reader_position, ids(list(q.aside))) for q in b.queues.values()]
    assert ids(a.pop(1000)) == ids(b.pop(1000))


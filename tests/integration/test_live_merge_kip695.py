"""Live, the merge is never forced past a partition that has records on the broker (KIP-695; issue 14, item 5).

Two co-partitioned inputs already on the log, interleaved in event time. The processor runs live
(not ``--until-idle``) with ``max_wait_ms=0``: whenever one input's buffer runs dry the runtime may
force the merge, but only past a partition the log says is empty. Both have records on the log
until the end, so the processing order must be the merge order (event time) throughout; before the
fix it went past the waiting partition and processed later records first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from procs import RAW, Counter, CounterConfig, raw_value
from streams.lineage import source_of
from streams.log import open_log
from streams.log.base import TopicSpec
from streams.runtime import Runner, RunOptions
from streams.runtime.state import read_range
from streams.serde import Serde

MS = 1_000_000
T0 = 1_700_000_000_000 * MS
N = 6_000  # per input


@pytest.fixture(params=["embedded", "kafka"])
def url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "embedded":
        return f"embedded://{tmp_path / 'log'}"
    return f"kafka://{request.getfixturevalue('kafka_bootstrap')}"


@pytest.mark.timeout(300)
def test_a_live_merge_with_max_wait_0_still_follows_event_time(url: str, unique_name: Callable[[str], str]) -> None:
    serde = Serde.from_settings()
    log = open_log(url)
    a, b, out, name = unique_name("a"), unique_name("b"), unique_name("out"), unique_name("merge")
    try:
        for t in (a, b, out):
            log.create_topic(TopicSpec(t, 1))
        ts: dict[tuple[str, int], int] = {}
        with log.producer() as p:
            for topic, parity in ((a, 0), (b, 1)):  # a at even ms, b at odd ms: every other record comes from the other
                for i in range(N):
                    t_ns = T0 + (2 * i + parity) * MS
                    p.produce(topic, serde.encode(RAW, raw_value(i, "S")), b"S", timestamp_ns=t_ns)
                    ts[(topic, i)] = t_ns
        cfg = CounterConfig(inputs=[a, b], output=out)
        opts = RunOptions(max_wait_ms=0, poll_records=50, batch=200, commit_interval_ms=20)
        runner = Runner(log, serde, Counter, cfg, opts, name=name)
        stop = threading.Event()
        worker = threading.Thread(target=runner.run, args=(stop,))
        worker.start()
        deadline = time.monotonic() + 240
        try:
            while runner.counts.records_in < 2 * N and time.monotonic() < deadline and worker.is_alive():
                time.sleep(0.2)
        finally:
            stop.set()
            worker.join(60)
        order = []
        for rec in read_range(log, out, 0, 0, log.watermarks(out, 0)[1]):
            src = source_of(rec.headers)
            assert src is not None
            order.append(ts[(src[0], src[2])])
        assert len(order) == 2 * N
        late = [(i, order[i - 1], order[i]) for i in range(1, len(order)) if order[i] < order[i - 1]]
        assert not late, f"{len(late)} records processed after a later one, first at output #{late[0][0]}"
    finally:
        log.close()

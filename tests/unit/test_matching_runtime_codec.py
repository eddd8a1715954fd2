"""The matching processor through the runtime's own codec (no log): Avro in, Avro out, dead letters with lineage.

Every output must encode against the value schemas its topic declares in ``infra/topics.yaml``
(the serde refuses floats and out-of-range ints), decode back to the same values, and a refused
command must become a ``DeadLetter`` naming the command's topic, partition and offset.

Not here yet: running matching on the embedded log with the exactly-once runner. The embedded
log's transactions (``EmbeddedLog.transactional_producer``) have not landed on main at the time
of writing, so that test belongs with them.
"""

from __future__ import annotations

from matching_support import CANCEL, NEW, REPLACE, T0, new_value
from streams.lineage import source_of
from streams.log.base import Record
from streams.processors.matching import MatchingConfig, MatchingProcessor
from streams.runtime.codec import DEAD_LETTER_SCHEMA, RuntimeCodec
from streams.runtime.metrics import RunCounts
from streams.runtime.runner import apply_batch
from streams.serde import Serde


def test_outputs_encode_with_the_declared_schemas_races_are_cancel_rejects_bad_input_dead_letters_with_lineage() -> None:
    serde = Serde.from_settings()
    commands = [
        (NEW, new_value("A", "a1", "SELL", 10, 10_000, ts=T0)),
        (NEW, new_value("A", "a2", "SELL", 5, 10_001, ts=T0 + 1, tif="GTD", expire=T0 + 100)),
        (NEW, new_value("B", "b1", "BUY", 12, 10_001, ts=T0 + 2)),  # fills a1, partially a2
        (NEW, new_value("B", "b2", "BUY", 3, 9_990, ts=T0 + 3, post_only=True)),
        (REPLACE, {"account": "B", "symbol": "AAPL", "client_order_id": "b2", "price": 9_995, "quantity": None, "ts_ns": T0 + 4}),
        (CANCEL, {"account": "A", "symbol": "AAPL", "client_order_id": "a1", "reason": None, "ts_ns": T0 + 5}),  # filled: a cancel reject
        (NEW, new_value("C", "c1", "SELL", 1, None, ts=T0 + 200)),  # a2 expires first; the market sell hits b2
    ]
    records = [
        Record("orders.accepted", 3, 40 + i, v["ts_ns"], b"AAPL", serde.encode(schema, v, topic="orders.accepted"))
        for i, (schema, v) in enumerate(commands)
    ]
    records.append(Record("orders.accepted", 3, 47, T0 + 201, b"MSFT", records[0].value))  # bad input: keyed to another book
    counts = RunCounts()
    encoded = apply_batch(MatchingProcessor(MatchingConfig(), 3), RuntimeCodec(serde, "matching"), records, counts)
    assert counts.records_in == 8 and counts.dead_letters == 1 and counts.dlq_by_reason == {"KEY_MISMATCH": 1}
    by_topic: dict[str, list[tuple[str, dict]]] = {}
    for topic, key, value, ts, headers in encoded:
        name, decoded = serde.decode(value)
        by_topic.setdefault(topic, []).append((name, decoded))
        src = source_of(headers)
        assert src is not None and src[0] == "orders.accepted" and src[1] == 3
        assert ts == records[src[2] - 40].timestamp_ns  # event time flows through
        if topic in ("order.events", "fills"):
            assert key == decoded["account"].encode()
        elif topic == "md.book":
            assert key == b"AAPL"
    (dead_name, dead), = by_topic["dlq.matching"]
    assert dead_name == DEAD_LETTER_SCHEMA and dead["reason_code"] == "KEY_MISMATCH"
    assert (dead["source_topic"], dead["source_partition"], dead["source_offset"]) == ("orders.accepted", 3, 47)
    [(name, rej)] = [(n, v) for n, v in by_topic["order.events"] if n.endswith("OrderCancelRejected")]
    assert (rej["client_order_id"], rej["response_to"], rej["reason_code"], rej["cxl_rej_reason"], rej["ord_status"]) == (
        "a1", "CANCEL", "TOO_LATE_TO_CANCEL", 0, "FILLED")
    assert "AAPL:1" in rej["reason"] and rej["order_id"] == "AAPL:1"
    events = [(n.rsplit(".", 1)[1], v["client_order_id"]) for n, v in by_topic["order.events"]]
    assert events[-4:] == [("OrderExpired", "a2"), ("OrderAccepted", "c1"), ("OrderPartiallyFilled", "b2"), ("OrderFilled", "c1")]
    fills = [v for _, v in by_topic["fills"]]
    assert sorted((f["client_order_id"], f["quantity"], f["price"], f["liquidity"]) for f in fills) == [
        ("a1", 10, 10_000, "MAKER"), ("a2", 2, 10_001, "MAKER"), ("b1", 2, 10_001, "TAKER"), ("b1", 10, 10_000, "TAKER"),
        ("b2", 1, 9_995, "MAKER"), ("c1", 1, 9_995, "TAKER"),
    ]
    assert {n for n, _ in by_topic["md.book"]} == {"hftstream.md.BookDelta", "hftstream.md.Trade"}

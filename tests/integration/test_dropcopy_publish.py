"""The drop-copy publisher on the embedded log: reads every fill, writes exactly the pure function's reports, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.dropcopy import DropCopyConfig, drop_copy, publish_drop_copy, read_fills
from streams.errors import ConfigError
from streams.log import open_log
from streams.log.partitioner import partition_for
from streams.serde import Serde
from streams.topics import ensure_topics

T0 = 1_767_364_200_000_000_000


def test_publish_drop_copy_on_the_embedded_log(tmp_path: Path) -> None:
    serde = Serde.from_settings()
    fills = [{
        "fill_id": f"F{i}", "trade_id": f"T{i // 2}", "account": f"A{i % 5}", "symbol": "AAPL", "client_order_id": f"c{i}",
        "order_id": f"o{i}", "side": ("BUY", "SELL")[i % 2], "price": 1_000_000 + i, "quantity": 1 + i % 7,
        "liquidity": ("MAKER", "TAKER")[i % 2], "venue": "internal", "ts_ns": T0 + i * 1_000_000,
    } for i in range(500)]
    cfg = DropCopyConfig(seed=5, missing_ppm=100_000, late_ppm=100_000, unknown_ppm=100_000)
    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        ensure_topics(log, ["fills"])
        producer = log.producer()
        for f in fills:
            producer.produce("fills", serde.encode("hftstream.fills.Fill", f, topic="fills"), key=f["account"].encode(), timestamp_ns=f["ts_ns"])
        producer.flush()
        producer.close()
        read = read_fills(log, serde)
        assert sorted(f["fill_id"] for f in read) == sorted(f["fill_id"] for f in fills)
        summary = publish_drop_copy(log, serde, cfg)
        expected = drop_copy(read, cfg)
        assert (summary.fills, summary.reports) == (500, len(expected))
        parts = log.partitions("exec.reports")
        got = []
        with log.reader([("exec.reports", p, 0) for p in range(parts)]) as reader:
            for rec in reader:
                value = serde.decode(rec.value).value
                assert rec.partition == partition_for(rec.key, parts) and rec.key == value["account"].encode()
                assert rec.timestamp_ns == value["recv_ts_ns"]
                got.append(value)
        assert sorted(got, key=lambda v: v["exec_id"]) == sorted((r.value for r in expected), key=lambda v: v["exec_id"])
        with pytest.raises(ConfigError, match="already holds"):
            publish_drop_copy(log, serde, cfg)

"""`replay --format table` shows what a row is read for, and nothing is cut: wrapped to the width instead."""

from __future__ import annotations

import pytest

from streams.log.base import Record
from streams.render import table_row
from streams.replay import ReplayedRecord

FILL = {
    "fill_id": "F-ACC3-000000012345-0001", "trade_id": "alpha-T-000000987654", "account": "ACC3", "symbol": "BTC-USD",
    "client_order_id": "ACC3-C-000000012345", "order_id": "O-000000012345", "side": "SELL", "price": 6_512_345_000_000,
    "quantity": 150_000, "liquidity": "MAKER", "venue": "internal", "ts_ns": 1_767_364_200_123_456_789,
}


def _rep(value, schema="hftstream.fills.Fill"):
    return ReplayedRecord(Record("fills", 3, 1234, 1_767_364_200_123_456_789, b"ACC3", b"x", ()), schema, value)


@pytest.mark.parametrize("width", [80, 120, 200])
def test_a_fill_row_shows_price_quantity_and_side_and_every_field(width):
    text = table_row(_rep(FILL), width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    head = " ".join(lines[:3])
    for wanted in ("symbol=BTC-USD", "side=SELL", "price=6512345000000", "quantity=150000"):
        assert wanted in head  # what the row is read for comes first
    joined = " ".join(line.strip() for line in lines)
    for k, v in FILL.items():
        assert f"{k}={v}" in joined  # wrapped, never cut
    assert all(line.startswith(" " * 20) for line in lines[1:])  # continuation lines sit under VALUE


def test_a_wide_terminal_keeps_a_record_on_one_line():
    assert len(table_row(_rep(FILL), 400).splitlines()) == 1

"""Issue 14 #7: the reference-data file `hftstream refdata load` reads -- formats, defaults, units and every error."""

from __future__ import annotations

import pytest

from connectors.venues.instruments import Instrument, RefData
from connectors.venues.refdata_file import RefdataFileError, check_against, parse_instruments
from connectors.venues.universe import universe

AAPL = Instrument("AAPL", "1", 4, 0, 100, 1)
EUR = Instrument("EUR-USD", "4", 5, 0, 1, 1000)


@pytest.mark.parametrize(("text", "kind"), [
    ('instruments:\n  - {symbol: AAPL, instrument_id: 1, price_scale: 4, tick_size: "0.01"}\n'
     '  - {symbol: EUR-USD, instrument_id: "4", price_scale: 5, tick_size: 0.00001, lot_size: 1000}\n', "yaml"),
    ('[{"symbol": "AAPL", "instrument_id": 1, "price_scale": 4, "tick_size": "0.01", "size_scale": 0, "lot_size": "1"},'
     ' {"symbol": "EUR-USD", "instrument_id": "4", "price_scale": 5, "tick_size": "0.00001", "lot_size": "1000"}]', "yaml"),
    ("symbol,instrument_id,price_scale,tick_size,size_scale,lot_size,currency,status\n"
     "AAPL,1,4,0.01,,,,\nEUR-USD,4,5,0.00001,0,1000,USD,ACTIVE\n", "csv"),
])
def test_yaml_json_and_csv_give_the_same_scaled_instruments_with_defaults(text, kind):
    # a bare YAML 0.00001 is the float 1e-05: read back as the decimal it was written as, never as a float
    assert parse_instruments(text, kind) == [AAPL, EUR]


def test_the_simulators_universe_round_trips_through_the_file_format():
    from connectors.venues.scaled import format_decimal

    insts = [li.instrument for li in universe(25)]
    rows = "\n".join(
        f"- {{symbol: {i.symbol}, instrument_id: {i.instrument_id}, price_scale: {i.price_scale}, tick_size: '{format_decimal(i.tick_size, i.price_scale)}', "
        f"size_scale: {i.size_scale}, lot_size: '{format_decimal(i.lot_size, i.size_scale)}', currency: {i.currency}}}" for i in insts)
    assert parse_instruments(rows, "yaml") == insts


@pytest.mark.parametrize(("text", "kind", "needle"), [
    ("", "yaml", "holds no instruments"),
    ("instruments: []", "yaml", "holds no instruments"),
    ("symbol,instrument_id\n", "csv", "holds no instruments"),
    ("a: [", "yaml", "not valid YAML/JSON at line 1"),
    ("42", "yaml", "must hold a list of instruments"),
    ("- AAPL", "yaml", "entry 1: an instrument must be a mapping of fields, got 'AAPL'"),
    ('- {symbol: AAPL, instrument_id: 1, price_scale: 4, tick_size: "0.00001"}', "yaml", "tick_size '0.00001' does not fit price_scale 4"),
    ('- {symbol: AAPL, instrument_id: 1, price_scale: 4, tick_size: "-0.01"}', "yaml", "tick_size must be > 0"),
    ('- {symbol: AAPL, instrument_id: 1, price_scale: 4, tick_size: "0.01", lot_size: "0.5"}', "yaml", "lot_size '0.5' does not fit size_scale 0"),
    ('- {symbol: AAPL, instrument_id: 1, price_scale: true, tick_size: "0.01"}', "yaml", "price_scale must be an integer 0..18, got True"),
    ('- {symbol: AAPL, instrument_id: 1, price_scale: 19, tick_size: "1"}', "yaml", "price_scale must be an integer 0..18, got 19"),
    ('- {symbol: AAPL, instrument_id: [1], price_scale: 4, tick_size: "0.01"}', "yaml", "instrument_id must be a non-empty string"),
    ('- {symbol: AAPL, instrument_id: 1, price_scale: 4, tick_size: [1]}', "yaml", "tick_size must be a decimal"),
    ('- {symbol: AAPL, instrument_id: 1, price_scale: 4, tick_size: "0.01", venue: x}', "yaml", "unknown field(s) venue"),
    ('- {symbol: AAPL, instrument_id: 1, price_scale: 4, tick_size: "0.01"}\n- {symbol: AAPL, instrument_id: 2, price_scale: 4, tick_size: "0.01"}',
     "yaml", "symbol 'AAPL' appears 2 times"),
])
def test_every_problem_names_the_entry_and_the_field_with_a_hint(text, kind, needle):
    with pytest.raises(RefdataFileError) as exc:
        parse_instruments(text, kind)
    assert needle in str(exc.value) and "instrument_id" in exc.value.hint


def test_every_problem_of_a_file_is_reported_at_once():
    text = '- {symbol: A, price_scale: 4, tick_size: "0.01"}\n- {symbol: B, instrument_id: 2, price_scale: 4}\n'
    with pytest.raises(RefdataFileError, match=r"2 problem\(s\), nothing was published") as exc:
        parse_instruments(text, "yaml")
    assert "entry 1 (A): missing instrument_id" in str(exc.value) and "entry 2 (B): missing tick_size" in str(exc.value)


def test_an_id_naming_another_symbol_on_the_log_is_refused_the_same_symbol_is_an_update():
    check_against([AAPL], RefData([AAPL]))
    with pytest.raises(RefdataFileError, match="MSFT: instrument_id 1 already names AAPL"):
        check_against([Instrument("MSFT", "1", 4, 0, 100, 1)], RefData([AAPL]))

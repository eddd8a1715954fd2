"""The order-flow generator, pure: determinism, regimes, config validation, and the shape of what it emits."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from connectors.orders.simulator import (
    INSTRUMENTS_TOPIC, OPS_TOPIC, ORDERS_TOPIC, OrderFlow, OrderSimConfig, feed_span_ns, simulate_orders,
)
from connectors.venues.market import Fundamentals
from connectors.venues.simulator import SimConfig
from connectors.venues.universe import universe
from streams.errors import ConfigError
from streams.ops.signing import check
from streams.processors.risk.config import RiskConfig
from streams.processors.risk.controls import scope_label
from streams.serde import SchemaRepo, Serde

T0 = 1_767_364_200_000_000_000
S = 1_000_000_000


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde(SchemaRepo.load())


def flow(**fields: object) -> OrderFlow:
    base: dict[str, object] = {"orders": 3000, "seed": 5, "start_ns": T0, "span_ns": 6 * S}
    base.update(fields)
    return simulate_orders(OrderSimConfig(**base))  # type: ignore[arg-type]


def digest(f: OrderFlow, serde: Serde) -> str:
    h = hashlib.sha256()
    for r in f.records:
        h.update(r.topic.encode() + b"\0" + r.key + b"\0" + r.timestamp_ns.to_bytes(8, "big"))
        h.update(serde.encode(r.schema, r.value, topic=r.topic))
    return h.hexdigest()


def test_same_config_same_bytes_and_another_seed_differs(serde: Serde) -> None:
    a, b = flow(), flow()
    assert digest(a, serde) == digest(b, serde) and a.kinds == b.kinds
    c = flow(seed=6)
    assert digest(c, serde) != digest(a, serde)
    assert [r.value.get("price") for r in c.records[:200]] != [r.value.get("price") for r in a.records[:200]]


def test_exactly_the_orders_asked_for_in_time_order_keyed_and_signed() -> None:
    f = flow()
    cfg = f.config
    orders = [r for r in f.records if r.topic == ORDERS_TOPIC]
    assert len(orders) == 3000 and sum(n for k, n in f.kinds.items()) == 3000
    stamps = [r.timestamp_ns for r in f.records]
    assert stamps == sorted(stamps)
    end = T0 + 6 * S
    stale = [r for r in orders if r.timestamp_ns >= end]
    assert len(stale) == cfg.stale_probes and f.kinds["probe:MARKET_DATA_STALE"] == cfg.stale_probes
    assert all(stamp >= end + cfg.risk.md_stale_after_ns for stamp in (r.timestamp_ns for r in stale))
    assert all(T0 + cfg.warmup_ns <= r.timestamp_ns < end for r in orders if r not in stale)
    assert all(r.key == r.value["account"].encode() and r.value["ts_ns"] == r.timestamp_ns for r in orders)
    ids = [r.value["client_order_id"] for r in orders if r.schema.endswith("NewOrder")]
    assert len(ids) - len(set(ids)) == f.kinds["probe:DUPLICATE_CLIENT_ORDER_ID"]  # ids repeat only on purpose
    # the operator script: signed with the risk config's dev key, keyed by scope, ids unique
    ops = [r for r in f.records if r.topic == OPS_TOPIC]
    keys = RiskConfig().operator_keys()
    repo = SchemaRepo.load()
    assert len(ops) >= 10 and all(check(repo, r.schema, r.value, keys) is None for r in ops)
    assert all(r.key == scope_label((r.value.get("account"), r.value.get("symbol"))).encode() for r in ops)
    assert len({r.value["command_id"] for r in ops}) == len(ops)
    assert {r.schema.rpartition(".")[2] for r in ops} == {"Halt", "Resume", "ReduceOnly", "SetLimit", "CancelAll", "KillSwitch"}
    # one instrument nobody quotes, for NO_MARKET_DATA
    (inst,) = [r for r in f.records if r.topic == INSTRUMENTS_TOPIC]
    assert inst.value["symbol"] == universe(5)[-1].instrument.symbol and inst.timestamp_ns == T0


def test_everyday_orders_are_on_the_grid_and_near_the_feeds_fundamental_price() -> None:
    f = flow()
    listings = {li.instrument.symbol: (i, li) for i, li in enumerate(universe(4))}
    fund = Fundamentals(5, universe(4), T0)
    checked = 0
    for r in f.records:
        v = r.value
        if r.schema.endswith("NewOrder") and v["symbol"] in listings and v["price"] is not None and v["order_type"] == "LIMIT":
            i, li = listings[v["symbol"]]
            inst = li.instrument
            mid = fund.ticks(i, r.timestamp_ns) * inst.tick_size
            off_bps = abs(v["price"] - mid) * 10_000 // mid
            if v["price"] % inst.tick_size == 0 and v["quantity"] % inst.lot_size == 0 and v["quantity"] > 0:
                assert off_bps < 800  # within reach of the 500 bps band (or just outside, for the band probe)
                checked += 1
    assert checked > 1500


def test_regimes_differ_as_documented() -> None:
    calm, burst, storm = flow(regime="calm"), flow(regime="burst"), flow(regime="cancel-storm")

    def share(f: OrderFlow, kinds: tuple[str, ...]) -> float:
        return sum(f.kinds.get(k, 0) for k in kinds) / f.config.orders

    takers = ("market", "ioc", "fok")
    amends = ("cancel", "replace_down", "replace_price", "replace_up", "replace_post_only_cross")
    assert share(burst, takers) > 1.5 * share(calm, takers)
    assert share(storm, amends) > 1.5 * share(calm, amends)

    def clustered(f: OrderFlow) -> float:  # share of orders less than 100 us after the previous one
        ts = [r.timestamp_ns for r in f.records if r.topic == ORDERS_TOPIC]
        return sum(1 for a, b in zip(ts, ts[1:]) if b - a < 100_000) / len(ts)

    assert clustered(burst) > 3 * clustered(calm)


def test_without_script_or_probes_only_everyday_orders() -> None:
    f = flow(ops_script=False, probe_rate=0.0, stale_probes=0, unquoted_symbol=False)
    assert {r.topic for r in f.records} == {ORDERS_TOPIC}
    assert not [k for k in f.kinds if k.startswith("probe:") or k.startswith("bad_trade")]


def test_span_from_event_rate_and_aligned_with_a_feed() -> None:
    cfg = OrderSimConfig(orders=5000, event_rate=2500, start_ns=T0)
    assert cfg.span() == cfg.warmup_ns + 2 * S
    feed = SimConfig(venues=2, symbols=6, events=40_000, seed=9, regime="burst", start_ns=T0)
    aligned = OrderSimConfig.for_feed(feed, orders=100)
    assert (aligned.seed, aligned.symbols, aligned.regime, aligned.start_ns) == (9, 6, "burst", T0)
    assert aligned.span_ns == feed_span_ns(feed)
    # 20k events per venue at ~1 ms mean gap (burst: half quiet ~2 ms, half bursting ~15 us): a bit under 20 s
    assert 15 * S < feed_span_ns(feed) < 20 * S
    assert OrderSimConfig.for_feed(feed, span_ns=3 * S).span_ns == 3 * S


@pytest.mark.parametrize(("fields", "message"), [
    ({"accounts": 1}, "accounts"),
    ({"orders": -1}, "orders"),
    ({"regime": "panic"}, "regime"),
    ({"span_ns": 10_000_000}, "longer than the warm-up"),
    ({"probe_rate": 1.5}, "probe_rate"),
    ({"operator_id": "mallory"}, "no key in the risk config"),
    ({"colour": "blue"}, "colour"),
])
def test_config_validation(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OrderSimConfig(**fields)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as err:
        OrderSimConfig.build(**fields)
    assert err.value.hint


def test_config_is_frozen_and_an_explicit_key_signs_for_an_unlisted_operator() -> None:
    cfg = OrderSimConfig(orders=10)
    with pytest.raises(ValidationError):
        cfg.orders = 5  # type: ignore[misc]
    f = simulate_orders(OrderSimConfig(orders=300, operator_id="mallory", operator_key="k", start_ns=T0))
    ops = [r for r in f.records if r.topic == OPS_TOPIC]
    assert ops and all(check(SchemaRepo.load(), r.schema, r.value, {"mallory": b"k"}) is None for r in ops)

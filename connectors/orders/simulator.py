"""The client order-flow simulator: order commands that walk every path of risk and matching. Pure.

:func:`simulate_orders` turns an :class:`OrderSimConfig` into the records to publish, in time order:
``hftstream.orders.NewOrder`` / ``CancelOrder`` / ``ReplaceOrder`` on ``orders.in`` (keyed by
account), the signed operator script on ``ops.commands`` (:mod:`.script`), and one reference-data
record on ``refdata.instruments``. It reads no clock and draws only from ``random.Random`` seeded
with strings, so the same config gives the same records, byte for byte once encoded.

Prices follow the venue simulator's market: the generator walks the very
:class:`~connectors.venues.market.Fundamentals` that ``hftstream feed simulate`` draws its
venues' prices around (same seed, same symbols, same ``start_ns``), so an order at event time ``t``
is priced a few ticks from where the venues quote at ``t``, inside risk's price band. Event times
lie in ``[start_ns + warmup_ns, start_ns + span)``; align them with a feed by giving the feed's seed,
symbols and start (``OrderSimConfig.for_feed``), so risk sees market data younger than
``md_stale_after_ns`` at every order.

What the flow contains (``OrderFlow.kinds`` counts each):

* the everyday mix -- passive limit orders that rest (DAY, GTC, some GTD that expire, some
  post-only), aggressive limits that fill or partly fill and rest the rest, market orders,
  IOC, FOK (some too big to fill), post-only orders priced to cross (matching rejects them),
  self-trades (an account trading into its own resting order), cancels, and replaces (a smaller
  quantity keeps time priority; a new price or a larger quantity loses it; a post-only moved
  across the book is refused). A :class:`~.shadow.Shadow` book tells the generator what rests,
  so cancels and replaces name live orders; each account keeps at most ``max_resting`` orders
  per symbol and leans against its position, so exposure stays bounded;
* probes, each step with probability ``probe_rate``: a reused client order id, a fat-finger
  quantity, an order above the notional limit, a price outside the band, a cancel and a
  replace of an order that never existed, an off-tick price, a zero quantity, an unlisted
  symbol, a symbol listed without market data (the next instrument of the venue universe, whose
  refdata record the flow carries), a GTD order already expired and a post-only IOC (matching
  refuses those two);
* the operator script (:mod:`.script`): halts, reduce-only, temporary limits, a cancel-all and a
  kill switch, with the orders that meet them;
* ``stale_probes`` orders ``md_stale_after_ns + 1 s`` after the span: the feed has ended, risk
  must refuse them as stale.

With the defaults, about 80-85% of order commands are accepted by risk and the rest spread over
the rejection reasons at 0.2-3% each (``tests/unit/test_order_flow_coverage.py`` prints the mix).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.orders import script
from connectors.orders.shadow import CANCEL_ORDER, NEW_ORDER, REPLACE_ORDER, Shadow
from connectors.venues.market import Fundamentals
from connectors.venues.simulator import DEFAULT_START_NS, SimConfig, mean_gap_ns
from connectors.venues.universe import MAX_SYMBOLS, Listing, universe
from streams.errors import ConfigError
from streams.processors.risk.config import RiskConfig
from streams.processors.risk.controls import Controls
from streams.serde.repo import SchemaRepo

ORDERS_TOPIC = "orders.in"
OPS_TOPIC = script.OPS_TOPIC
INSTRUMENTS_TOPIC = "refdata.instruments"
INSTRUMENT_SCHEMA = "hftstream.refdata.Instrument"
Regime = Literal["calm", "burst", "cancel-storm"]
NS = 1_000_000_000
MS = 1_000_000

# Everyday kinds and their weights per regime.
KINDS = ("passive", "post_only", "gtd", "aggressive", "market", "ioc", "fok", "post_only_cross", "self_trade", "cancel",
         "replace_down", "replace_price", "replace_up", "replace_post_only_cross")
WEIGHTS: dict[str, tuple[int, ...]] = {
    "calm": (30, 6, 4, 16, 6, 6, 4, 2, 2, 12, 4, 4, 2, 1),
    "burst": (20, 4, 2, 24, 12, 12, 6, 2, 2, 8, 3, 3, 1, 1),
    "cancel-storm": (24, 8, 4, 8, 3, 3, 2, 2, 2, 30, 6, 6, 3, 1),
}
# Probe kinds (named for the reason they should meet) and their relative weights.
PROBES = ("DUPLICATE_CLIENT_ORDER_ID", "MAX_ORDER_QTY", "MAX_NOTIONAL", "PRICE_BAND", "UNKNOWN_ORDER_CANCEL",
          "UNKNOWN_ORDER_REPLACE", "NO_MARKET_DATA", "INVALID_PRICE", "INVALID_QUANTITY", "UNKNOWN_SYMBOL",
          "INVALID_EXPIRY", "INVALID_ORDER")
PROBE_WEIGHTS = (2, 2, 2, 2, 1, 1, 2, 1, 1, 1, 1, 1)
UNLISTED_SYMBOL = "ZZZZ-UNLISTED"


class OrderSimConfig(BaseModel):
    """What to simulate. Frozen; unknown fields are an error.

    ``accounts``         how many trading accounts, named ``ACC1`` ... (at least 2: fills need two sides);
    ``symbols``          how many instruments, the venue simulator's universe in order (AAPL, BTC-USD, ...):
                         give the feed's ``--symbols``;
    ``orders``           order commands on ``orders.in`` (new, cancel and replace; operator commands not counted);
    ``seed``             give the feed's seed: prices follow its market;
    ``regime``           calm (resting liquidity, steady arrivals), burst (clustered arrivals, takers: market,
                         IOC, FOK), cancel-storm (cancels and replaces dominate);
    ``start_ns``         the feed's start (``hftstream feed simulate --start``); orders start ``warmup_ns`` later;
    ``span_ns``          event time from ``start_ns`` to the last order; ``None``: the warm-up plus ``orders / event_rate`` s;
    ``event_rate``       orders per second of event time when ``span_ns`` is not given. Risk's default rate limit
                         is per account (infra/risk.yaml: 2000/s), so keep ``event_rate / accounts`` below it;
    ``probe_rate``       share of steps that probe a rejection (split over :data:`PROBES`);
    ``max_resting``      an account's open orders per symbol before it cancels or replaces instead of adding;
    ``ops_script``       publish the operator script (:mod:`connectors.orders.script`);
    ``operator_id``      who signs it; ``operator_key`` its key (``None``: that operator's key in ``risk``);
    ``stale_probes``     orders placed after the feed (at ``end + md_stale_after_ns + 1 s``): MARKET_DATA_STALE;
    ``unquoted_symbol``  list the universe's next instrument (no venue quotes it) and send it a few orders;
    ``risk``             the risk configuration the flow is aimed at (default: the shipped infra/risk.yaml):
                         probe sizes come from its limits, the script restores its values, and its operator
                         keys sign the script.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    accounts: int = Field(default=4, ge=2, le=9999)
    symbols: int = Field(default=4, ge=1, le=MAX_SYMBOLS)
    orders: int = Field(default=10_000, ge=0)
    seed: int = 1
    regime: Regime = "calm"
    start_ns: int = Field(default=DEFAULT_START_NS, ge=0)
    span_ns: int | None = Field(default=None, gt=0)
    event_rate: int = Field(default=1000, gt=0)
    warmup_ns: int = Field(default=20 * MS, ge=0)
    probe_rate: float = Field(default=0.06, ge=0.0, le=1.0)
    max_resting: int = Field(default=5, ge=1)
    ops_script: bool = True
    operator_id: str = Field(default="ops-dev", min_length=1)
    operator_key: SecretStr | None = None
    stale_probes: int = Field(default=3, ge=0)
    unquoted_symbol: bool = True
    risk: RiskConfig = Field(default_factory=RiskConfig)

    @model_validator(mode="after")
    def _consistent(self) -> OrderSimConfig:
        if self.span() <= self.warmup_ns:
            raise ValueError(f"the span ({self.span()} ns) must be longer than the warm-up ({self.warmup_ns} ns)")
        if self.ops_script and self.operator_key is None and self.operator_id not in self.risk.operators:
            raise ValueError(f"operator {self.operator_id!r} has no key in the risk config: give operator_key, "
                             f"or one of {sorted(self.risk.operators)}")
        return self

    @classmethod
    def build(cls, **fields: Any) -> OrderSimConfig:
        """The config, or a :class:`ConfigError` naming the bad field (for the CLI and callers that want an HftError)."""
        from pydantic import ValidationError

        try:
            return cls(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "config"
            raise ConfigError(f"order simulation: {where}: {first['msg']}",
                              hint="see `hftstream orders simulate --help` for each option's range") from None

    @classmethod
    def for_feed(cls, feed: SimConfig, **fields: Any) -> OrderSimConfig:
        """A flow aligned with a venue simulation: its seed, symbols, regime and start, and a span it covers
        (:func:`feed_span_ns`) unless ``fields`` say otherwise."""
        base: dict[str, Any] = {"seed": feed.seed, "symbols": feed.symbols, "regime": feed.regime, "start_ns": feed.start_ns,
                                "span_ns": feed_span_ns(feed)}
        base.update(fields)
        return cls.build(**base)

    def span(self) -> int:
        """Event time from ``start_ns`` to the end of the flow (ns)."""
        if self.span_ns is not None:
            return self.span_ns
        return self.warmup_ns + max(self.orders, 1) * NS // self.event_rate

    def account_names(self) -> list[str]:
        return [f"ACC{i}" for i in range(1, self.accounts + 1)]

    def per_account_rate(self) -> float:
        """Average orders per second of event time per account (compare with risk's max_orders_per_second)."""
        return self.orders / self.accounts / max((self.span() - self.warmup_ns) / NS, 1e-9)


def feed_span_ns(feed: SimConfig) -> int:
    """A conservative estimate of a venue simulation's event-time span: 90% of the expected time its
    least busy venue needs for its events (``SimConfig.expected_span_ns``: its ``span_ns`` when given, else
    the mean inter-arrival gap of the regime, bursts half the time)."""
    if feed.span_ns is not None:
        return max(int(feed.span_ns * 0.9), 1)
    return max(int(feed.events // feed.venues * mean_gap_ns(feed.regime) * feed.gap_scale * 0.9), 1)


class OrderRecord(NamedTuple):
    """One record to publish."""

    topic: str
    key: bytes
    schema: str
    value: dict[str, Any]
    timestamp_ns: int


@dataclass
class OrderFlow:
    """What :func:`simulate_orders` made: the records in publishing order and what each order command was meant to do."""

    config: OrderSimConfig
    records: list[OrderRecord]
    kinds: dict[str, int] = field(default_factory=dict)
    windows: dict[str, script.Window] = field(default_factory=dict)
    first_ts_ns: int = 0
    last_ts_ns: int = 0

    def by_schema(self) -> dict[str, int]:
        """Records per Avro schema."""
        out: dict[str, int] = {}
        for r in self.records:
            out[r.schema] = out.get(r.schema, 0) + 1
        return dict(sorted(out.items()))


def simulate_orders(config: OrderSimConfig, *, repo: SchemaRepo | None = None) -> OrderFlow:
    """Every record of ``config``'s order flow (see the module docstring). ``repo``: the schemas the script is signed over."""
    return _Generator(config, repo or SchemaRepo.load()).run()


class _Generator:
    def __init__(self, config: OrderSimConfig, repo: SchemaRepo) -> None:
        self.cfg = config
        self.repo = repo
        self.rng = random.Random(f"{config.seed}:orders")
        self.listings: list[Listing] = universe(config.symbols)
        self.symbols = [li.instrument.symbol for li in self.listings]
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.fund = Fundamentals(config.seed, self.listings, config.start_ns)
        self.accounts = config.account_names()
        self.shadow = Shadow()
        risk = config.risk
        self.controls = Controls(repo, {}, replay_window_ns=risk.replay_window_ns, max_command_age_ns=risk.max_command_age_ns,
                                 limits=risk.limit_table())
        self.t0 = config.start_ns + config.warmup_ns
        self.t1 = config.start_ns + config.span()
        self.windows = script.plan(self.accounts, self.symbols, self.t0, self.t1)
        names = ("halt", "reduce_only", "rate", "position", "gross", "daily_loss", "kill") if config.ops_script else ()
        self._refusing = [self.windows[n] for n in names]  # windows in which risk refuses the account's (symbol's) orders
        self._kind_weights = list(accumulate(WEIGHTS[config.regime]))
        self._probe_weights = list(accumulate(PROBE_WEIGHTS))
        self.unquoted: Listing | None = None
        if config.unquoted_symbol and config.symbols < MAX_SYMBOLS:
            self.unquoted = universe(config.symbols + 1)[-1]
        self.kinds: dict[str, int] = {}
        self.used: dict[str, list[str]] = {a: [] for a in self.accounts}  # client order ids sent, per account
        self.n = 0
        self._caps: dict[tuple[str, str], int] = {}

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> OrderFlow:
        cfg = self.cfg
        records: list[OrderRecord] = []
        if self.unquoted is not None:
            inst = self.unquoted.instrument
            records.append(OrderRecord(INSTRUMENTS_TOPIC, inst.symbol.encode(), INSTRUMENT_SCHEMA, inst.to_record(cfg.start_ns),
                                       cfg.start_ns))
        ops = self._ops()
        stale = min(cfg.stale_probes, cfg.orders)
        times = self._times(cfg.orders - stale)
        scripted: list[tuple[int, str, dict[str, Any]]] = []
        bad = self.windows["bad_trade"]
        bad_due = bad.start_ns if cfg.ops_script else 1 << 63
        oi = 0
        for t in times:
            while oi < len(ops) and ops[oi][3] <= t:
                self._operator(ops[oi], records)
                oi += 1
            if t >= bad_due:
                scripted.extend(self._bad_trade(t))
                bad_due = 1 << 63
            if scripted:
                _, kind, value = scripted.pop(0)
                value["ts_ns"] = t
                self._emit(records, kind, NEW_ORDER, value, apply=True)
                continue
            self._step(t, records)
        while oi < len(ops):
            self._operator(ops[oi], records)
            oi += 1
        # After the feed: the span may be an estimate (feed_span_ns errs short by ~10%), so a fifth more, then stale + 1 s.
        stale_at = self.t1 + (self.t1 - cfg.start_ns) // 5 + cfg.risk.md_stale_after_ns + NS
        for j in range(stale):
            self._stale_probe(stale_at + j * MS, j, records)
        stamps = [r.timestamp_ns for r in records]
        return OrderFlow(cfg, records, dict(sorted(self.kinds.items())), self.windows,
                         min(stamps, default=0), max(stamps, default=0))

    def _times(self, n: int) -> list[int]:
        """``n`` distinct event times in ``[t0, t1)``, sorted; clustered in the burst regime."""
        rng, t0, t1 = self.rng, self.t0, self.t1
        if self.cfg.regime != "burst":
            times = [rng.randrange(t0, t1) for _ in range(n)]
        else:
            centers = [rng.randrange(t0, t1) for _ in range(max(1, n // 40))]
            times = [min(rng.choice(centers) + rng.randrange(0, 2 * MS), t1 - 1) if rng.random() < 0.6 else rng.randrange(t0, t1)
                     for _ in range(n)]
        times.sort()
        for i in range(1, n):  # distinct, still increasing (a nanosecond apart at worst)
            if times[i] <= times[i - 1]:
                times[i] = times[i - 1] + 1
        return times

    def _ops(self) -> list[tuple[bytes, str, dict[str, Any], int]]:
        cfg = self.cfg
        if not cfg.ops_script:
            return []
        key = cfg.operator_key.get_secret_value().encode() if cfg.operator_key is not None else \
            cfg.risk.operators[cfg.operator_id].resolve(cfg.operator_id)
        cmds = script.commands(self.windows, self.symbols, self.controls)
        return script.signed(cmds, self.repo, cfg.operator_id, key, cfg.seed)

    def _operator(self, op: tuple[bytes, str, dict[str, Any], int], records: list[OrderRecord]) -> None:
        key, schema, value, ts = op
        records.append(OrderRecord(OPS_TOPIC, key, schema, value, ts))
        kind = schema.rpartition(".")[2]
        if kind == "KillSwitch":
            for acct, sym, cid in self.shadow.open_orders(account=value["account"]):
                self.shadow.apply(CANCEL_ORDER, {"account": acct, "symbol": sym, "client_order_id": cid, "reason": "KILL_SWITCH", "ts_ns": ts})
        elif kind == "CancelAll":
            for acct, sym, cid in self.shadow.open_orders(symbol=value["symbol"]):
                self.shadow.apply(CANCEL_ORDER, {"account": acct, "symbol": sym, "client_order_id": cid, "reason": "CANCEL_ALL", "ts_ns": ts})

    # -- helpers -----------------------------------------------------------------------------

    def _in(self, name: str, t: int) -> script.Window | None:
        w = self.windows[name]
        return w if self.cfg.ops_script and w.start_ns <= t < w.end_ns else None

    def _expected_refusal(self, account: str, symbol: str, t: int, market: bool) -> bool:
        """Whether the operator script makes risk refuse a new order or replace of ``account`` on ``symbol`` at ``t``."""
        for w in self._refusing:
            if w.start_ns <= t < w.end_ns and (w.account == account if w.symbol is None else w.symbol == symbol):
                return True
        w = self.windows["spread"]
        return market and self.cfg.ops_script and w.start_ns <= t < w.end_ns and w.account == account

    def _cid(self, account: str) -> str:
        self.n += 1
        cid = f"{account}-{self.n}"
        self.used[account].append(cid)
        return cid

    def _mid(self, i: int, t: int) -> int:
        """The venues' common fundamental price of symbol ``i`` at ``t``, in ticks."""
        return self.fund.ticks(i, t)

    def _limit(self, kind: str, account: str, symbol: str | None) -> int | None:
        return self.controls.limit(kind, account, symbol)

    def _cap(self, account: str, i: int) -> int:
        """The largest everyday order, in lots: the listing's typical maximum, a quarter of the quantity and notional
        limits, and small enough that ``max_resting`` orders and a position in every symbol stay inside gross exposure."""
        symbol = self.symbols[i]
        got = self._caps.get((account, symbol))
        if got is not None:
            return got
        li = self.listings[i]
        inst = li.instrument
        lot, price = inst.lot_size, li.ref_ticks * inst.tick_size * 11 // 10
        lots = li.max_lots
        max_qty = self._limit("MAX_ORDER_QTY", account, symbol)
        if max_qty is not None:
            lots = min(lots, max_qty // 4 // lot)
        max_notional = self._limit("MAX_NOTIONAL", account, symbol)
        if max_notional is not None:
            lots = min(lots, max_notional * 10**inst.size_scale // 4 // (price * lot))
        gross = self._limit("MAX_GROSS_EXPOSURE", account, None)
        if gross is not None:
            budget = gross // (40 * len(self.symbols))  # money at money_scale for one order
            per_lot = _money(price * lot, inst.price_scale + inst.size_scale, self.cfg.risk.money_scale)
            lots = min(lots, budget // max(per_lot, 1))
        self._caps[(account, symbol)] = got = max(1, lots)
        return got

    def _qty(self, account: str, i: int, rng: random.Random) -> int:
        li = self.listings[i]
        cap = self._cap(account, i)
        return rng.randint(min(li.min_lots, cap), cap) * li.instrument.lot_size

    def _side(self, account: str, i: int) -> str:
        """BUY or SELL, leaning against the account's position beyond a quarter of its limit."""
        symbol = self.symbols[i]
        pos = self.shadow.positions.get((account, symbol), 0)
        lean = 10 * self._cap(account, i) * self.listings[i].instrument.lot_size
        limit = self._limit("MAX_POSITION", account, symbol)
        if limit is not None:
            lean = min(lean, limit // 4)
        p_buy = 0.15 if pos > lean else 0.85 if pos < -lean else 0.5
        return "BUY" if self.rng.random() < p_buy else "SELL"

    def _new(self, account: str, symbol: str, side: str, otype: str, tif: str, price: int | None, qty: int, t: int, *,
             post_only: bool = False, expire: int | None = None, cid: str | None = None) -> dict[str, Any]:
        return {"account": account, "symbol": symbol, "client_order_id": cid or self._cid(account), "side": side,
                "order_type": otype, "tif": tif, "price": price, "quantity": qty, "expire_ts_ns": expire,
                "reduce_only": False, "post_only": post_only, "ts_ns": t}

    def _emit(self, records: list[OrderRecord], kind: str, schema: str, value: dict[str, Any], *, apply: bool) -> None:
        records.append(OrderRecord(ORDERS_TOPIC, value["account"].encode(), schema, value, value["ts_ns"]))
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if apply:
            self.shadow.apply(schema, value)

    # -- one step ------------------------------------------------------------------------------

    def _step(self, t: int, records: list[OrderRecord]) -> None:
        rng, cfg = self.rng, self.cfg
        account = rng.choice(self.accounts)
        i = rng.randrange(len(self.symbols))
        if cfg.probe_rate and rng.random() < cfg.probe_rate:
            self._probe(rng.choices(PROBES, cum_weights=self._probe_weights)[0], account, i, t, records)
            return
        kind = rng.choices(KINDS, cum_weights=self._kind_weights)[0]
        spread = self._in("spread", t)
        if spread is not None and spread.account == account and kind not in ("cancel",):
            kind = "market"  # the desk under a zero spread limit keeps sending market orders: SPREAD_TOO_WIDE
        symbol = self.symbols[i]
        live = self.shadow.live(account, symbol)
        if kind in ("passive", "post_only", "gtd") and len(live) >= cfg.max_resting:
            kind = rng.choice(("cancel", "replace_down", "replace_price"))
        if kind.startswith("replace") or kind == "cancel":
            if live:
                self._amend(kind, account, i, rng.choice(live), t, records)
                return
            kind = "passive"
        self._order(kind, account, i, t, records)

    def _order(self, kind: str, account: str, i: int, t: int, records: list[OrderRecord]) -> None:
        rng, shadow = self.rng, self.shadow
        symbol, inst = self.symbols[i], self.listings[i].instrument
        tick, mid = inst.tick_size, self._mid(i, t)
        side = self._side(account, i)
        buy = side == "BUY"
        sign = 1 if buy else -1
        qty = self._qty(account, i, rng)
        if kind == "self_trade":
            mine = [shadow.order(account, symbol, c) for c in shadow.live(account, symbol)]
            if mine:
                o = max((o for o in mine if o is not None), key=lambda o: o[3] if o[2] else -o[3])  # best-priced own order
                obuy, oprice = o[2], o[3]
                others, own = shadow.crossing(symbol, not obuy, oprice, account)
                lot = inst.lot_size
                qty = max(lot, min(others + own, 3 * self._cap(account, i) * lot) // lot * lot)
                value = self._new(account, symbol, "SELL" if obuy else "BUY", "LIMIT", "IOC", oprice, qty, t)
                self._emit(records, kind, NEW_ORDER, value, apply=not self._expected_refusal(account, symbol, t, False))
                return
            kind = "aggressive"
        price: int | None
        tif, otype, post_only, expire = "DAY", "LIMIT", False, None
        if kind in ("passive", "post_only", "gtd"):
            price = (mid - sign * rng.randint(1, 6)) * tick
            post_only = kind == "post_only"
            if kind == "gtd":
                tif, expire = "GTD", t + rng.randint(20, 400) * MS
            elif rng.random() < 0.5:
                tif = "GTC"
        elif kind == "market":
            otype, price, tif = "MARKET", None, "IOC"
            qty = max(inst.lot_size, qty // 2 // inst.lot_size * inst.lot_size)
        elif kind == "post_only_cross":
            best = shadow.best(symbol, not buy)
            price = best if best is not None else (mid + sign * rng.randint(0, 3)) * tick
            post_only = True
        else:  # aggressive, ioc, fok
            price = (mid + sign * rng.randint(0, 3)) * tick
            if kind == "ioc":
                tif = "IOC"
            elif kind == "fok":
                tif = "FOK"
                others, _ = shadow.crossing(symbol, buy, price, account)
                lot = inst.lot_size
                if others and rng.random() < 0.5:
                    qty = max(lot, min(others, qty) // lot * lot)  # fits: fills
                else:
                    qty = others + qty  # more than there is: FOK_UNFILLED
        value = self._new(account, symbol, side, otype, tif, price, qty, t, post_only=post_only, expire=expire)
        self._emit(records, kind, NEW_ORDER, value, apply=not self._expected_refusal(account, symbol, t, otype == "MARKET"))

    def _amend(self, kind: str, account: str, i: int, cid: str, t: int, records: list[OrderRecord]) -> None:
        rng, shadow = self.rng, self.shadow
        symbol, inst = self.symbols[i], self.listings[i].instrument
        o = shadow.order(account, symbol, cid)
        assert o is not None
        buy, price, qty, cum, leaves, post_only = shadow.terms(o)
        lot, tick = inst.lot_size, inst.tick_size
        base = {"account": account, "symbol": symbol, "client_order_id": cid}
        if kind == "cancel":
            self._emit(records, kind, CANCEL_ORDER, {**base, "reason": None, "ts_ns": t}, apply=True)
            return
        if kind == "replace_post_only_cross":
            best = shadow.best(symbol, not buy)
            if not post_only or best is None:
                kind = "replace_price"
            else:
                value = {**base, "price": best, "quantity": None, "ts_ns": t}
                self._emit(records, kind, REPLACE_ORDER, value, apply=not self._expected_refusal(account, symbol, t, False))
                return
        if kind == "replace_down" and leaves < 2 * lot:
            kind = "replace_up"
        new_price, new_qty = None, None
        if kind == "replace_down":
            new_qty = qty - rng.randint(1, leaves // lot - 1) * lot
        elif kind == "replace_up":
            new_qty = qty + rng.randint(1, self._cap(account, i)) * lot
        else:  # replace_price: a tick or two either way, never across the mid (stays passive, mostly)
            mid = self._mid(i, t)
            step = rng.choice((-2, -1, 1, 2))
            ticks = price // tick + step
            ticks = min(ticks, mid - 1) if buy else max(ticks, mid + 1)
            if ticks * tick == price:
                ticks += -1 if buy else 1
            new_price = max(tick, ticks * tick)
        value = {**base, "price": new_price, "quantity": new_qty, "ts_ns": t}
        self._emit(records, kind, REPLACE_ORDER, value, apply=not self._expected_refusal(account, symbol, t, False))

    # -- scripted orders -----------------------------------------------------------------------

    def _bad_trade(self, t: int) -> list[tuple[int, str, dict[str, Any]]]:
        """On up to three symbols, just after the global cancel-all: ``A[3]`` rests a sell half a price band above
        the mid and ``A[2]`` buys it -- a loss for the daily-loss window (three, in case a venue halts one symbol)."""
        loser = self.windows["daily_loss"].account
        assert loser is not None
        seller = self.accounts[(self.accounts.index(loser) + 1) % len(self.accounts)]
        out: list[tuple[int, str, dict[str, Any]]] = []
        for i in range(min(3, len(self.symbols))):
            inst = self.listings[i].instrument
            symbol, tick, lot = inst.symbol, inst.tick_size, inst.lot_size
            band = self._limit("PRICE_BAND_BPS", loser, symbol)
            bps = 250 if band is None else max(band // 2, 1)
            mid = self._mid(i, t)
            price = (mid + max(1, mid * bps // 10_000)) * tick
            qty = 4 * min(self._cap(loser, i), self._cap(seller, i)) * lot
            out.append((t, "bad_trade_sell", self._new(seller, symbol, "SELL", "LIMIT", "GTC", price, qty, t)))
            out.append((t, "bad_trade_buy", self._new(loser, symbol, "BUY", "LIMIT", "IOC", price, qty, t)))
        return out

    def _stale_probe(self, t: int, j: int, records: list[OrderRecord]) -> None:
        account = self.accounts[j % max(1, len(self.accounts) - 1)]  # not the killed account (the last one)
        i = j % len(self.symbols)
        inst = self.listings[i].instrument
        mid = self._mid(i, t)
        value = self._new(account, inst.symbol, "BUY", "LIMIT", "DAY", (mid - 3) * inst.tick_size, inst.lot_size, t)
        self._emit(records, "probe:MARKET_DATA_STALE", NEW_ORDER, value, apply=False)

    def _probe(self, probe: str, account: str, i: int, t: int, records: list[OrderRecord]) -> None:
        rng = self.rng
        symbol, li = self.symbols[i], self.listings[i]
        inst = li.instrument
        tick, lot, mid = inst.tick_size, inst.lot_size, self._mid(i, t)
        side = rng.choice(("BUY", "SELL"))
        sign = 1 if side == "BUY" else -1
        passive = (mid - sign * rng.randint(1, 4)) * tick
        qty = self._qty(account, i, rng)
        kind = f"probe:{probe}"
        schema, value = NEW_ORDER, None
        if probe == "DUPLICATE_CLIENT_ORDER_ID" and self.used[account]:
            value = self._new(account, symbol, side, "LIMIT", "DAY", passive, qty, t, cid=rng.choice(self.used[account]))
        elif probe == "MAX_ORDER_QTY":
            limit = self._limit("MAX_ORDER_QTY", account, symbol)
            if limit is not None:
                value = self._new(account, symbol, side, "LIMIT", "DAY", passive, (limit // lot + 1) * lot, t)
        elif probe == "MAX_NOTIONAL":
            value = self._notional_probe(account, side, t)
        elif probe == "PRICE_BAND":
            band = self._limit("PRICE_BAND_BPS", account, symbol)
            if band is not None:
                off = mid * (band + 200) // 10_000 + 1
                value = self._new(account, symbol, side, "LIMIT", "DAY", max(tick, (mid + rng.choice((-1, 1)) * off) * tick), qty, t)
        elif probe == "UNKNOWN_ORDER_CANCEL":
            schema = CANCEL_ORDER
            value = {"account": account, "symbol": symbol, "client_order_id": f"{account}-ghost-{t}", "reason": None, "ts_ns": t}
        elif probe == "UNKNOWN_ORDER_REPLACE":
            schema = REPLACE_ORDER
            value = {"account": account, "symbol": symbol, "client_order_id": f"{account}-ghost-{t}", "price": passive,
                     "quantity": None, "ts_ns": t}
        elif probe == "NO_MARKET_DATA" and self.unquoted is not None:
            u = self.unquoted.instrument
            value = self._new(account, u.symbol, side, "LIMIT", "DAY", self.unquoted.ref_ticks * u.tick_size, u.lot_size, t)
        elif probe == "INVALID_PRICE":
            value = self._new(account, symbol, side, "LIMIT", "DAY", passive + 1 if tick > 1 else None, qty, t)
        elif probe == "INVALID_QUANTITY":
            value = self._new(account, symbol, side, "LIMIT", "DAY", passive, qty + 1 if lot > 1 else 0, t)
        elif probe == "UNKNOWN_SYMBOL":
            value = self._new(account, UNLISTED_SYMBOL, side, "LIMIT", "DAY", 100, 1, t)
        elif probe == "INVALID_EXPIRY":  # risk passes it; matching refuses it (OrderRejected)
            value = self._new(account, symbol, side, "LIMIT", "GTD", passive, qty, t, expire=t)
        elif probe == "INVALID_ORDER":  # a post-only IOC: likewise
            value = self._new(account, symbol, side, "LIMIT", "IOC", passive, qty, t, post_only=True)
        if value is None:  # the probe does not apply here (no such limit, no earlier id): an everyday order instead
            self._order("passive", account, i, t, records)
            return
        self._emit(records, kind, schema, value, apply=False)

    def _notional_probe(self, account: str, side: str, t: int) -> dict[str, Any] | None:
        """An order within the quantity limit whose notional is above the notional limit, on the first symbol where one exists."""
        for i, li in enumerate(self.listings):
            inst = li.instrument
            symbol, tick, lot = inst.symbol, inst.tick_size, inst.lot_size
            limit = self._limit("MAX_NOTIONAL", account, symbol)
            if limit is None:
                continue
            price = (self._mid(i, t) + (-1 if side == "BUY" else 1)) * tick  # one tick passive
            qty = (limit * 10**inst.size_scale // price // lot + 1) * lot
            max_qty = self._limit("MAX_ORDER_QTY", account, symbol)
            if max_qty is None or qty <= max_qty:
                return self._new(account, symbol, side, "LIMIT", "DAY", price, qty, t)
        return None


def _money(value: int, from_scale: int, money_scale: int) -> int:
    """A scaled amount at ``money_scale``, rounded up."""
    if money_scale >= from_scale:
        return value * 10 ** (money_scale - from_scale)
    return -(-value // 10 ** (from_scale - money_scale))

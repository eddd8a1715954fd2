"""The operator script that rides along with the simulated order flow: signed ``hftstream.ops.*`` commands.

Trading-state and limit rejections need an operator to act. The script is a fixed timeline over
the flow's event-time span ``[t0, t1)`` (fractions of it below), with roles given to accounts
and symbols by position, so it is the same for every seed:

============  =====================================================================  =====================
when          what                                                                   risk then answers
============  =====================================================================  =====================
0.20 - 0.26   ``Halt`` symbol ``S[1]``, then ``Resume``                              HALTED
0.30 - 0.36   ``ReduceOnly`` account ``A[1]`` on, then off                           REDUCE_ONLY
0.40 - 0.46   ``SetLimit`` ``A[2]``: 1 order/s, burst 1; then the configured values  RATE_LIMIT
0.50 - 0.56   ``SetLimit`` ``A[3]`` x each symbol: max position 0; then restored     POSITION_LIMIT
0.58 - 0.64   ``SetLimit`` ``A[0]``: max gross exposure 0; then restored             GROSS_EXPOSURE
0.66 - 0.72   ``SetLimit`` ``A[1]`` x each symbol: max spread 0 bps (it sends market  SPREAD_TOO_WIDE
              orders meanwhile); then restored
0.735         ``CancelAll`` global (every resting order)                            cancels, CANCEL_ALL
0.735+        (orders) on ``S[0]``, ``S[1]``, ``S[2]``: ``A[3]`` rests a sell half a    (a loss for ``A[2]``)
              price band above the mid on the emptied book, ``A[2]`` buys it
0.74 - 0.80   ``SetLimit`` ``A[2]``: max daily loss 0; then restored                 DAILY_LOSS_LIMIT
0.90 - end    ``KillSwitch`` account ``A[-1]`` (never released)                     cancels, KILL_SWITCH
============  =====================================================================  =====================

(``A[i]`` is ``accounts[i % len(accounts)]``, ``S[i]`` likewise.) A limit is "restored" by setting
the value the risk configuration gives that scope (a SetLimit cannot unset; an unset limit is
restored as :data:`NO_LIMIT`). Per-symbol limits are set per ``(account, symbol)`` so that
restoring them never overrides a symbol's own configured value; at most :data:`MAX_SCOPED_SYMBOLS`
symbols get them. Commands are signed as ``hftstream ops`` signs them
(:func:`streams.ops.signing.sign`); ids are ``<operator>-sim<seed>-<n>``, deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from streams.ops.signing import sign
from streams.processors.risk.controls import Controls, scope_label
from streams.serde.repo import SchemaRepo

OPS_TOPIC = "ops.commands"
NO_LIMIT = 1 << 62
MAX_SCOPED_SYMBOLS = 8


class Window(NamedTuple):
    """One episode of the script: its name, who it targets, and when (event time, ns)."""

    name: str
    account: str | None
    symbol: str | None
    start_ns: int
    end_ns: int


class Command(NamedTuple):
    """One unsigned operator command: schema short name, fields, event time."""

    kind: str
    fields: dict[str, Any]
    ts_ns: int


def _at(t0: int, t1: int, fraction: float) -> int:
    return t0 + int((t1 - t0) * fraction)


def plan(accounts: Sequence[str], symbols: Sequence[str], t0: int, t1: int) -> dict[str, Window]:
    """The script's episodes by name (see the module docstring); ``end_ns`` of the kill switch is ``t1``."""
    a = lambda i: accounts[i % len(accounts)]  # noqa: E731
    s = lambda i: symbols[i % len(symbols)]  # noqa: E731
    at = lambda f: _at(t0, t1, f)  # noqa: E731
    return {w.name: w for w in (
        Window("halt", None, s(1), at(0.20), at(0.26)),
        Window("reduce_only", a(1), None, at(0.30), at(0.36)),
        Window("rate", a(2), None, at(0.40), at(0.46)),
        Window("position", a(3), None, at(0.50), at(0.56)),
        Window("gross", a(0), None, at(0.58), at(0.64)),
        Window("spread", a(1), None, at(0.66), at(0.72)),
        Window("cancel_all", None, None, at(0.735), at(0.735)),
        Window("bad_trade", a(2), s(0), at(0.735), at(0.74)),
        Window("daily_loss", a(2), None, at(0.74), at(0.80)),
        Window("kill", a(-1), None, at(0.90), t1),
    )}


def commands(windows: dict[str, Window], symbols: Sequence[str], controls: Controls) -> list[Command]:
    """The unsigned commands of the script, in time order. ``controls`` (built from the risk config) resolves
    the configured limits the script restores."""
    out: list[Command] = []
    scoped = list(symbols[:MAX_SCOPED_SYMBOLS])

    def restore(kind: str, account: str, symbol: str | None) -> int:
        value = controls.limit(kind, account, symbol)
        return NO_LIMIT if value is None else value

    def set_limit(ts: int, account: str, symbol: str | None, kind: str, value: int) -> None:
        out.append(Command("SetLimit", {"account": account, "symbol": symbol, "limit": kind, "value": value}, ts))

    w = windows["halt"]
    out.append(Command("Halt", {"symbol": w.symbol, "account": None, "reason": "simulated: news pending"}, w.start_ns))
    out.append(Command("Resume", {"symbol": w.symbol, "account": None, "reason": "simulated: news out"}, w.end_ns))
    w = windows["reduce_only"]
    out.append(Command("ReduceOnly", {"account": w.account, "symbol": None, "enabled": True, "reason": "simulated: margin call"}, w.start_ns))
    out.append(Command("ReduceOnly", {"account": w.account, "symbol": None, "enabled": False, "reason": "simulated: margin met"}, w.end_ns))
    w = windows["rate"]
    assert w.account is not None
    set_limit(w.start_ns, w.account, None, "MAX_ORDERS_PER_SECOND", 1)
    set_limit(w.start_ns, w.account, None, "ORDER_BURST", 1)
    set_limit(w.end_ns, w.account, None, "MAX_ORDERS_PER_SECOND", restore("MAX_ORDERS_PER_SECOND", w.account, None))
    set_limit(w.end_ns, w.account, None, "ORDER_BURST", restore("ORDER_BURST", w.account, None))
    for name, kind in (("position", "MAX_POSITION"), ("spread", "MAX_SPREAD_BPS")):
        w = windows[name]
        assert w.account is not None
        for sym in scoped:
            set_limit(w.start_ns, w.account, sym, kind, 0)
        for sym in scoped:
            set_limit(w.end_ns, w.account, sym, kind, restore(kind, w.account, sym))
    for name, kind in (("gross", "MAX_GROSS_EXPOSURE"), ("daily_loss", "MAX_DAILY_LOSS")):
        w = windows[name]
        assert w.account is not None
        set_limit(w.start_ns, w.account, None, kind, 0)
        set_limit(w.end_ns, w.account, None, kind, restore(kind, w.account, None))
    w = windows["cancel_all"]
    out.append(Command("CancelAll", {"account": None, "symbol": w.symbol, "reason": "simulated: desk reset"}, w.start_ns))
    w = windows["kill"]
    out.append(Command("KillSwitch", {"account": w.account, "symbol": None, "engaged": True, "reason": "simulated: runaway algo"},
                       w.start_ns))
    out.sort(key=lambda c: c.ts_ns)  # stable: same-time commands keep the order above
    return out


def signed(cmds: Sequence[Command], repo: SchemaRepo, operator: str, key: bytes, seed: int) -> list[tuple[bytes, str, dict[str, Any], int]]:
    """``(key, schema, signed value, ts_ns)`` per command; the record key is the scope, as ``hftstream ops`` writes it."""
    out = []
    for n, cmd in enumerate(cmds, 1):
        schema = f"hftstream.ops.{cmd.kind}"
        value = {"command_id": f"{operator}-sim{seed}-{n}", "operator_id": operator, **cmd.fields, "ts_ns": cmd.ts_ns,
                 "signature": b""}
        scope = scope_label((cmd.fields.get("account"), cmd.fields.get("symbol")))
        out.append((scope.encode(), schema, sign(repo, schema, value, key), cmd.ts_ns))
    return out

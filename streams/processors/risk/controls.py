"""Operator commands: signature and replay checks, trading state per scope, run-time limits. Pure.

One :class:`Controls` is the whole effect of ``ops.commands``: the risk processor feeds it every
command in log order, and ``hftstream ops state`` replays the topic through the same class, so
what the CLI prints is what risk enforces.

A *scope* is ``(account, symbol)``, either ``None`` for "every": ``(None, None)`` is global,
``("A", None)`` an account, ``(None, "S")`` an instrument, ``("A", "S")`` one account in one
instrument. A scope carries up to three independent flags: kill switch, halt and reduce-only.
An order for account ``a`` in symbol ``s`` is governed by the four scopes that cover it; the
strictest flag wins: KILL_SWITCH, then HALTED, then REDUCE_ONLY, else ACTIVE.

* ``Halt`` / ``Resume``       set / clear the halt flag of exactly that scope;
* ``ReduceOnly(enabled)``     sets / clears the reduce-only flag;
* ``KillSwitch(engaged)``     sets / clears the kill-switch flag (``Resume`` does not release it: a kill
                              switch needs its own release); engaging also cancels resting orders (processor);
* ``CancelAll``               no flag: cancels resting orders in scope (processor);
* ``SetLimit``                one limit at one scope (account-wide kinds take no symbol).

Refusals (:class:`CommandRefused`, nothing changes), in the order they are checked::

    NOT_AN_OPERATOR_COMMAND  the record is not an hftstream.ops.* command
    UNKNOWN_OPERATOR         operator_id has no key in the risk config
    UNSIGNED                 empty signature
    BAD_SIGNATURE            the HMAC does not match (forged, altered, or signed with another key)
    EXPIRED_COMMAND          appended more than max_command_age_ns after its own ts_ns (a signed command held back)
    REPLAYED_COMMAND_ID      a command_id this operator already had accepted
    REPLAYED_TIMESTAMP       ts_ns older than the operator's newest accepted command by more than replay_window_ns
    INVALID_COMMAND          well signed but meaningless (a negative limit, an account-wide limit given a symbol)

Command ids are remembered per operator for ``replay_window_ns`` behind that operator's newest
accepted command; anything older is refused by its timestamp, so the memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from streams.ops.signing import check
from streams.processors.risk.config import ACCOUNT_LIMITS, LIMIT_KINDS
from streams.serde.repo import SchemaRepo

HALT, RESUME, REDUCE_ONLY_CMD, KILL, CANCEL_ALL, SET_LIMIT = (
    f"hftstream.ops.{n}" for n in ("Halt", "Resume", "ReduceOnly", "KillSwitch", "CancelAll", "SetLimit")
)
OPS_SCHEMAS = (HALT, RESUME, REDUCE_ONLY_CMD, KILL, CANCEL_ALL, SET_LIMIT)

ACTIVE, REDUCE_ONLY, HALTED, KILL_SWITCH = "ACTIVE", "REDUCE_ONLY", "HALTED", "KILL_SWITCH"
FLAGS = (KILL_SWITCH, HALTED, REDUCE_ONLY)  # strictest first

EXPIRED_COMMAND = "EXPIRED_COMMAND"
REPLAYED_COMMAND_ID = "REPLAYED_COMMAND_ID"
REPLAYED_TIMESTAMP = "REPLAYED_TIMESTAMP"
INVALID_COMMAND = "INVALID_COMMAND"
REFUSAL_CODES = (
    "NOT_AN_OPERATOR_COMMAND", "UNKNOWN_OPERATOR", "UNSIGNED", "BAD_SIGNATURE", EXPIRED_COMMAND, REPLAYED_COMMAND_ID,
    REPLAYED_TIMESTAMP, INVALID_COMMAND,
)

Scope = tuple[str | None, str | None]


class CommandRefused(Exception):
    """An operator command that is not acted on: ``code`` (stable) and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Cause(NamedTuple):
    """Which accepted command set a flag (for decisions' details and ``ops state``)."""

    operator_id: str
    command_id: str
    ts_ns: int
    reason: str


class Applied(NamedTuple):
    """An accepted command: its kind (short name), scope, and whether it asks to cancel resting orders."""

    kind: str
    scope: Scope
    cancel: bool
    cause: Cause


def scope_label(scope: Scope) -> str:
    """``global``, ``account:A``, ``symbol:S`` or ``account:A,symbol:S`` (the CLI's ``--scope`` syntax)."""
    account, symbol = scope
    parts = ([f"account:{account}"] if account is not None else []) + ([f"symbol:{symbol}"] if symbol is not None else [])
    return ",".join(parts) or "global"


class Controls:
    """The trading state and run-time limits that accepted operator commands built (see the module docstring)."""

    def __init__(
        self, repo: SchemaRepo, keys: Mapping[str, bytes], *, replay_window_ns: int, max_command_age_ns: int,
        limits: Mapping[Scope, Mapping[str, int]],
    ) -> None:
        self.repo = repo
        self.keys = dict(keys)
        self.replay_window_ns = replay_window_ns
        self.max_command_age_ns = max_command_age_ns
        self.flags: dict[str, dict[Scope, Cause]] = {f: {} for f in FLAGS}
        self.limits: dict[Scope, dict[str, int]] = {k: dict(v) for k, v in limits.items()}
        # (scope, limit) -> the SetLimit behind its value, with the operator's reason: for `ops state`. Not in the
        # snapshot (nothing decides by it); complete when the commands are replayed from the start, as `ops state` does.
        self.limit_causes: dict[tuple[Scope, str], Cause] = {}
        self.seen: dict[str, dict[str, int]] = {}  # operator -> command_id -> ts_ns (within the window)
        self.newest: dict[str, int] = {}  # operator -> ts_ns of its newest accepted command
        self.accepted = 0
        self.refused: dict[str, int] = dict.fromkeys(REFUSAL_CODES, 0)
        self.version = 0  # bumped on every accepted command: callers cache what depends on limits and flags

    # -- commands --------------------------------------------------------------------------

    def apply(self, schema: str, value: Mapping[str, Any], log_ts_ns: int) -> Applied:
        """Verify and apply one command appended at ``log_ts_ns``; raises :class:`CommandRefused` changing nothing."""
        try:
            return self._apply(schema, value, log_ts_ns)
        except CommandRefused as exc:
            self.refused[exc.code] += 1
            raise

    def _apply(self, schema: str, value: Mapping[str, Any], log_ts_ns: int) -> Applied:
        if schema not in OPS_SCHEMAS:
            raise CommandRefused("NOT_AN_OPERATOR_COMMAND", f"{schema} is not an operator command")
        operator, command_id, ts = value["operator_id"], value["command_id"], value["ts_ns"]
        who = f"{schema.rpartition('.')[2]} {command_id!r} from {operator!r}"
        problem = check(self.repo, schema, value, self.keys)
        if problem is not None:
            raise CommandRefused(problem, f"{who}: {problem.lower().replace('_', ' ')}")
        if log_ts_ns - ts > self.max_command_age_ns:
            raise CommandRefused(EXPIRED_COMMAND, f"{who}: signed at {ts}, appended {log_ts_ns - ts} ns later (max {self.max_command_age_ns})")
        seen = self.seen.setdefault(operator, {})
        if command_id in seen:
            raise CommandRefused(REPLAYED_COMMAND_ID, f"{who}: command id already used")
        newest = self.newest.get(operator)
        if newest is not None and ts < newest - self.replay_window_ns:
            raise CommandRefused(REPLAYED_TIMESTAMP, f"{who}: ts_ns {ts} is older than {newest} - {self.replay_window_ns} ns")
        scope: Scope = (value.get("account"), value.get("symbol"))
        kind = schema.rpartition(".")[2]
        cause = Cause(operator, command_id, ts, value.get("reason") or "")
        cancel = False
        if schema == SET_LIMIT:
            limit, amount = value["limit"], value["value"]
            if limit not in LIMIT_KINDS:
                raise CommandRefused(INVALID_COMMAND, f"{who}: unknown limit {limit}")
            if amount < 0:
                raise CommandRefused(INVALID_COMMAND, f"{who}: {limit} {amount} must be >= 0")
            if limit in ACCOUNT_LIMITS and scope[1] is not None:
                raise CommandRefused(INVALID_COMMAND, f"{who}: {limit} is account-wide; give no symbol")
            if limit == "ORDER_BURST" and amount < 1:
                raise CommandRefused(INVALID_COMMAND, f"{who}: ORDER_BURST must be >= 1")
            self.limits.setdefault(scope, {})[limit] = amount
            self.limit_causes[(scope, limit)] = cause
            cause = cause._replace(reason=f"{limit}={amount}")
        elif schema == HALT:
            self.flags[HALTED][scope] = cause
        elif schema == RESUME:
            self.flags[HALTED].pop(scope, None)
        elif schema == REDUCE_ONLY_CMD:
            self._flag(REDUCE_ONLY, scope, cause, value["enabled"])
        elif schema == KILL:
            self._flag(KILL_SWITCH, scope, cause, value["engaged"])
            cancel = value["engaged"]
        else:  # CANCEL_ALL
            cancel = True
        # Accepted: remember it, and forget ids the timestamp rule now covers.
        seen[command_id] = ts
        if newest is None or ts > newest:
            self.newest[operator] = newest = ts
            floor = newest - self.replay_window_ns
            for cid in [c for c, t in seen.items() if t < floor]:
                del seen[cid]
        self.accepted += 1
        self.version += 1
        return Applied(kind, scope, cancel, cause)

    def _flag(self, flag: str, scope: Scope, cause: Cause, on: bool) -> None:
        if on:
            self.flags[flag][scope] = cause
        else:
            self.flags[flag].pop(scope, None)

    # -- what orders see -------------------------------------------------------------------

    def state_of(self, account: str, symbol: str) -> tuple[str, Scope, Cause] | None:
        """The strictest flag over the scopes covering ``(account, symbol)``, or ``None`` when ACTIVE."""
        for flag in FLAGS:
            scopes = self.flags[flag]
            if scopes:
                for scope in ((None, None), (account, None), (None, symbol), (account, symbol)):
                    cause = scopes.get(scope)
                    if cause is not None:
                        return flag, scope, cause
        return None

    def limit(self, kind: str, account: str, symbol: str | None) -> int | None:
        """The limit in force for ``(account, symbol)``: the most specific scope that sets it (``None``: no limit)."""
        limits = self.limits
        order = ((account, symbol), (account, None), (None, symbol), (None, None)) if symbol is not None else ((account, None), (None, None))
        for scope in order:
            got = limits.get(scope)
            if got is not None and kind in got:
                return got[kind]
        return None

    def states(self) -> dict[str, str]:
        """Each scope's own state (its strictest flag), ``global`` always included: ``{scope label: state}``."""
        out = {"global": ACTIVE}
        for flag in reversed(FLAGS):  # stricter flags overwrite
            for scope in self.flags[flag]:
                out[scope_label(scope)] = flag
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Every scope with a flag set, for ``ops state``: scope, state, and the command that set it."""
        out: dict[Scope, dict[str, Any]] = {}
        for flag in reversed(FLAGS):  # stricter flags overwrite the state shown
            for scope, cause in self.flags[flag].items():
                row = out.setdefault(scope, {"scope": scope_label(scope), "flags": []})
                row["flags"].append(flag)
                row.update(state=HALTED if flag == KILL_SWITCH else flag, kill_switch=flag == KILL_SWITCH or row.get("kill_switch", False),
                           operator_id=cause.operator_id, command_id=cause.command_id, ts_ns=cause.ts_ns, reason=cause.reason)
        return [out[s] for s in sorted(out, key=_scope_order)]

    # -- snapshot ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The state as JSON-ready values in a deterministic order."""
        return {
            "flags": {f: [[list(s), list(c)] for s, c in sorted(self.flags[f].items(), key=lambda kv: _scope_order(kv[0]))] for f in FLAGS},
            "limits": [[list(s), dict(sorted(v.items()))] for s, v in sorted(self.limits.items(), key=lambda kv: _scope_order(kv[0]))],
            "seen": {op: dict(sorted(ids.items())) for op, ids in sorted(self.seen.items())},
            "newest": dict(sorted(self.newest.items())),
            "accepted": self.accepted,
            "refused": dict(self.refused),
        }

    def load_json(self, state: Mapping[str, Any]) -> None:
        """Replace the state with :meth:`to_json` output."""
        self.flags = {f: {(s[0], s[1]): Cause(*c) for s, c in state["flags"][f]} for f in FLAGS}
        self.limits = {(s[0], s[1]): dict(v) for s, v in state["limits"]}
        self.seen = {op: dict(ids) for op, ids in state["seen"].items()}
        self.newest = dict(state["newest"])
        self.accepted = state["accepted"]
        self.refused = dict.fromkeys(REFUSAL_CODES, 0) | state["refused"]
        self.version += 1


def _scope_order(scope: Scope) -> tuple[bool, str, bool, str]:
    return (scope[0] is not None, scope[0] or "", scope[1] is not None, scope[1] or "")

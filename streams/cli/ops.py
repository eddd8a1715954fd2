"""``hftstream ops``: publish signed operator commands to ``ops.commands``, and show the trading state they built.

Every command is signed with the operator's key (HMAC-SHA256, :mod:`streams.ops.signing`) and
carries a fresh command id and the time it was signed; the risk processor verifies both and
refuses (and records in ``dlq.risk``) anything unsigned, forged, replayed or from an unknown
operator. Before publishing, the CLI checks the signature against the risk config's key for
the operator when it can read that key, so a wrong key fails here, not silently downstream.
``ops state`` replays ``ops.commands`` through the very class risk uses (:class:`Controls`).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import typer

from streams.cli.common import fail, state, table

OPS_TOPIC = "ops.commands"
OPERATOR_ENV, KEY_ENV = "HFTSTREAM_OPERATOR_ID", "HFTSTREAM_OPERATOR_KEY"

EXAMPLES = """
Examples:

  export HFTSTREAM_OPERATOR_ID=ops-dev HFTSTREAM_OPERATOR_KEY=...   # your id and shared secret
  hftstream ops halt --scope symbol:AAPL --reason "news pending"
  hftstream ops resume --scope symbol:AAPL
  hftstream ops reduce-only --scope account:ACC1 --reason "margin call"
  hftstream ops kill --scope account:ACC1 --reason "runaway algo"     # halt + cancel its resting orders
  hftstream ops kill --scope account:ACC1 --release
  hftstream ops cancel-all --scope account:ACC1,symbol:AAPL
  hftstream ops set-limit max-order-qty 500 --scope account:ACC1,symbol:AAPL --reason "desk cap"   # 500 AAPL (size_scale)
  hftstream ops set-limit max-order-qty 5000000 --raw --scope account:ACC1 --reason "desk cap"    # the scaled integer
  hftstream ops state
"""

app = typer.Typer(no_args_is_help=True, epilog=EXAMPLES)

SCOPE = typer.Option("global", "--scope", help="global | account:A | symbol:S | account:A,symbol:S")
REASON = typer.Option("", "--reason", help="Why (kept on the log for the audit).")
OPERATOR = typer.Option(None, "--operator", envvar=OPERATOR_ENV, show_envvar=True, help="Your operator id.")
KEY = typer.Option(None, "--key", envvar=KEY_ENV, show_envvar=True, help="Your signing key (shared secret).")
CONFIG = typer.Option(None, "--config", help="Risk config with the operators' keys (default: $HFTSTREAM_RISK_CONFIG or infra/risk.yaml).")
SKIP_CHECK = typer.Option(False, "--skip-check", help="Publish even if the risk config says the key is wrong (tests risk's refusal).")


def parse_scope(text: str) -> tuple[str | None, str | None]:
    """``global``, ``account:A``, ``symbol:S`` or both joined by a comma -> ``(account, symbol)``."""
    account = symbol = None
    if text.strip() != "global":
        for part in text.split(","):
            kind, sep, name = part.strip().partition(":")
            if not sep or not name or kind not in ("account", "symbol"):
                fail(f"bad --scope {text!r}", hint="use global, account:A, symbol:S or account:A,symbol:S")
            if kind == "account":
                account = name
            else:
                symbol = name
    return account, symbol


def _check_scope(ctx: typer.Context, scope: tuple[str | None, str | None], config: str | None) -> None:
    """Refuse a scope that names a symbol or account that does not exist (say so when it cannot be checked)."""
    from streams.ops.checks import accounts, instruments, scope_problem
    from streams.processors.risk.config import load_risk_config

    if scope == (None, None):
        return
    st = state(ctx)
    symbols = instruments(st.log(), st.serde()) if scope[1] is not None else {}
    known = accounts(st.log(), load_risk_config(config)) if scope[0] is not None else set()
    problem = scope_problem(scope, symbols, known)
    if problem is not None:
        fail(problem[0] + "; nothing was published", hint=problem[1])
    if scope[1] is not None and not symbols:
        typer.secho(f"warning: cannot check symbol {scope[1]!r}: refdata.instruments holds no instrument", fg=typer.colors.YELLOW, err=True)
    if scope[0] is not None and not known:
        typer.secho(f"warning: cannot check account {scope[0]!r}: no account is known yet (none in the risk config, no order)",
                    fg=typer.colors.YELLOW, err=True)


def _publish(ctx: typer.Context, kind: str, fields: dict[str, Any], operator: str | None, key: str | None,
             config: str | None, skip_check: bool, *, shown: str = "", scope_checked: bool = False) -> None:
    from streams.ops.signing import check, sign
    from streams.processors.risk.config import load_risk_config
    from streams.processors.risk.controls import scope_label
    from streams.topics import ensure_topics

    if not operator:
        fail("no operator id", hint=f"export {OPERATOR_ENV}=<your operator id> (or pass --operator)")
    if not key:
        fail("no signing key", hint=f"export {KEY_ENV}=<your shared secret> (or pass --key); the risk config holds the matching key")
    st = state(ctx)
    serde = st.serde()
    schema = f"hftstream.ops.{kind}"
    ts = time.time_ns()
    value = {"command_id": f"{operator}-{ts}-{uuid.uuid4().hex[:8]}", "operator_id": operator, **fields, "ts_ns": ts,
             "signature": b""}
    value = sign(serde.repo, schema, value, key.encode())
    if not skip_check:
        cfg = load_risk_config(config)
        known = cfg.operators.get(operator)
        if known is None:
            fail(f"operator {operator!r} is not in the risk config: risk would refuse this command (UNKNOWN_OPERATOR)",
                 hint="use an operator id listed under `operators:` in the risk config, or ask for yours to be added")
        if known.key is not None or (known.key_env and os.environ.get(known.key_env)):
            problem = check(serde.repo, schema, value, {operator: known.resolve(operator)})
            if problem is not None:
                fail(f"the key for operator {operator!r} does not match the risk config: risk would refuse this command ({problem})",
                     hint=f"check {KEY_ENV} (or --key); nothing was published")
        if not scope_checked:
            _check_scope(ctx, (fields.get("account"), fields.get("symbol")), config)
    scope = scope_label((fields.get("account"), fields.get("symbol")))
    log = st.log()
    ensure_topics(log, [OPS_TOPIC])
    with log.producer() as producer:
        producer.produce(OPS_TOPIC, serde.encode(schema, value, topic=OPS_TOPIC), scope.encode(), timestamp_ns=ts)
    typer.echo(f"published {kind} {value['command_id']} ({scope}{', ' + shown if shown else ''}) by {operator} to {OPS_TOPIC}")


@app.command("halt", epilog=EXAMPLES)
def halt(ctx: typer.Context, scope: str = SCOPE, reason: str = REASON, operator: str = OPERATOR, key: str = KEY,
         config: str = CONFIG, skip_check: bool = SKIP_CHECK) -> None:
    """Halt trading in scope: new orders and replaces are rejected (HALTED) until `resume`; cancels pass."""
    account, symbol = parse_scope(scope)
    _publish(ctx, "Halt", {"symbol": symbol, "account": account, "reason": reason}, operator, key, config, skip_check)


@app.command("resume", epilog=EXAMPLES)
def resume(ctx: typer.Context, scope: str = SCOPE, reason: str = REASON, operator: str = OPERATOR, key: str = KEY,
           config: str = CONFIG, skip_check: bool = SKIP_CHECK) -> None:
    """Lift the halt of exactly this scope (a kill switch needs `kill --release`: resume refuses while one applies)."""
    account, symbol = parse_scope(scope)
    if not skip_check:
        _refuse_under_kill_switch(ctx, (account, symbol), config)
    _publish(ctx, "Resume", {"symbol": symbol, "account": account, "reason": reason}, operator, key, config, skip_check)


def _refuse_under_kill_switch(ctx: typer.Context, scope: tuple[str | None, str | None], config: str | None) -> None:
    from streams.ops.checks import kill_switches_over
    from streams.processors.risk.config import load_risk_config
    from streams.processors.risk.controls import KILL_SWITCH, scope_label

    st = state(ctx)
    controls, _ = replay_controls(st.log(), st.serde(), load_risk_config(config))
    kills = kill_switches_over(controls.flags[KILL_SWITCH], scope)
    if kills:
        names = ", ".join(scope_label(k) for k in kills)
        fail(f"a kill switch is engaged on {names}: resume lifts a halt only, so {scope_label(scope)} would stay killed; nothing was published",
             hint=" then ".join(f"`hftstream ops kill --scope {scope_label(k)} --release`" for k in kills)
             + " releases it (then resume what should trade again)")


@app.command("reduce-only", epilog=EXAMPLES)
def reduce_only(ctx: typer.Context, scope: str = SCOPE, off: bool = typer.Option(False, "--off", help="Leave reduce-only mode."),
                reason: str = REASON, operator: str = OPERATOR, key: str = KEY, config: str = CONFIG,
                skip_check: bool = SKIP_CHECK) -> None:
    """Accept only orders that shrink a position in scope (or leave that mode with --off)."""
    account, symbol = parse_scope(scope)
    _publish(ctx, "ReduceOnly", {"account": account, "symbol": symbol, "enabled": not off, "reason": reason}, operator, key,
             config, skip_check)


@app.command("kill", epilog=EXAMPLES)
def kill(ctx: typer.Context, scope: str = SCOPE, release: bool = typer.Option(False, "--release", help="Release the kill switch."),
         reason: str = REASON, operator: str = OPERATOR, key: str = KEY, config: str = CONFIG,
         skip_check: bool = SKIP_CHECK) -> None:
    """Kill switch: halt the scope and cancel every resting order in it (--release lifts it)."""
    account, symbol = parse_scope(scope)
    _publish(ctx, "KillSwitch", {"account": account, "symbol": symbol, "engaged": not release, "reason": reason}, operator, key,
             config, skip_check)


@app.command("cancel-all", epilog=EXAMPLES)
def cancel_all(ctx: typer.Context, scope: str = SCOPE, reason: str = REASON, operator: str = OPERATOR, key: str = KEY,
               config: str = CONFIG, skip_check: bool = SKIP_CHECK) -> None:
    """Cancel every resting order in scope; trading stays allowed."""
    account, symbol = parse_scope(scope)
    _publish(ctx, "CancelAll", {"account": account, "symbol": symbol, "reason": reason}, operator, key, config, skip_check)


@app.command("set-limit", epilog=EXAMPLES, context_settings={"ignore_unknown_options": True})
def set_limit(
    ctx: typer.Context,
    limit: str = typer.Argument(..., help="max-order-qty, max-notional, max-position, price-band-bps, max-orders-per-second, "
                                          "order-burst, max-gross-exposure, max-daily-loss, max-spread-bps"),
    value: str = typer.Argument(..., metavar="VALUE", help="New value in human units: max-order-qty / max-position in units of the "
                                "scope's instrument (e.g. 1.5), max-notional in its currency, max-gross-exposure / max-daily-loss "
                                "in currency; bps and counts are integers. With --raw: the scaled integer infra/risk.yaml uses."),
    raw: bool = typer.Option(False, "--raw", help="VALUE is the scaled integer (size_scale, price_scale or money_scale applied already)."),
    scope: str = SCOPE,
    reason: str = typer.Option("", "--reason", help="Why (required: kept on the log, covered by the signature, shown by `ops state`)."),
    operator: str = OPERATOR, key: str = KEY, config: str = CONFIG, skip_check: bool = SKIP_CHECK,
) -> None:
    """Change one pre-trade limit at run time for a scope (most specific scope wins). Needs --reason.

    The value is converted with the instrument's scale from refdata.instruments and both are printed, e.g.
    `max-order-qty 1.5 --scope symbol:AAPL` publishes 15000 when AAPL's size_scale is 4.
    """
    from streams.ops.checks import instruments, limit_value
    from streams.processors.risk.config import ACCOUNT_LIMITS, LIMIT_KINDS, load_risk_config

    kind = limit.strip().upper().replace("-", "_")
    if kind not in LIMIT_KINDS:
        fail(f"unknown limit {limit!r}", hint=f"one of: {', '.join(k.lower().replace('_', '-') for k in LIMIT_KINDS)}")
    account, symbol = parse_scope(scope)
    if kind in ACCOUNT_LIMITS and symbol is not None:
        fail(f"{limit} is account-wide: it takes no symbol", hint="use --scope global or --scope account:A")
    if not skip_check:
        _check_scope(ctx, (account, symbol), config)  # a scope that does not exist first, then the value
    st = state(ctx)
    scales = instruments(st.log(), st.serde()) if symbol is not None and not raw else {}
    amount, shown = limit_value(kind, value, raw=raw, symbol=symbol, scales=scales, money_scale=load_risk_config(config).money_scale)
    if kind == "ORDER_BURST" and amount < 1:
        fail(f"{limit} {value}: the bucket holds at least 1 order", hint="give 1 or more")
    if not reason.strip():
        fail("set-limit needs --reason: a limit change is audited like a halt",
             hint='add --reason "WHY" to the same command, e.g. --reason "client asked for a lower cap"')
    _publish(ctx, "SetLimit", {"account": account, "symbol": symbol, "limit": kind, "value": amount, "reason": reason.strip()},
             operator, key, config,
             skip_check, shown=f"{kind} {shown}", scope_checked=True)


def replay_controls(log: Any, serde: Any, config: Any, until: dict[int, int] | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """Replay ``ops.commands`` through :class:`Controls`: the state, and every refused command.

    ``until``: partition -> offset; only the records before it count (what risk has applied, see :func:`risk_position`).
    """
    from streams.errors import PoisonError, UnknownTopicError
    from streams.processors.risk.controls import CommandRefused, Controls

    controls = Controls(serde.repo, config.operator_keys(), replay_window_ns=config.replay_window_ns,
                        max_command_age_ns=config.max_command_age_ns, limits=config.limit_table())
    refused: list[dict[str, Any]] = []
    try:
        partitions = log.partitions(OPS_TOPIC)
    except UnknownTopicError:
        return controls, refused
    ends = {p: log.watermarks(OPS_TOPIC, p)[1] for p in range(partitions)}
    if until is not None:
        ends = {p: min(end, until.get(p, 0)) for p, end in ends.items()}
    records = []
    with log.reader([(OPS_TOPIC, p, 0) for p in range(partitions)]) as reader:
        while any(reader.position(OPS_TOPIC, p) < end for p, end in ends.items()):
            records.extend(r for r in reader.poll(1000, timeout=1.0) if r.offset < ends[r.partition])
    records.sort(key=lambda r: (r.timestamp_ns // 1_000_000, r.partition, r.offset))  # the runtime's merge order
    for rec in records:
        where = f"{OPS_TOPIC}/{rec.partition}@{rec.offset}"
        try:
            decoded = serde.decode(rec.value)
            controls.apply(decoded.schema, decoded.value, rec.timestamp_ns)
        except PoisonError as exc:
            refused.append({"at": where, "code": "UNDECODABLE", "reason": str(exc)})
        except CommandRefused as exc:
            refused.append({"at": where, "code": exc.code, "reason": str(exc)})
    return controls, refused


def risk_position(log: Any, serde: Any) -> dict[int, int]:
    """partition -> the offset of ``ops.commands`` every risk task has committed past (empty: risk has not run).

    ``ops.commands`` is a global input of risk: each task applies every command, so a command is in force once
    the slowest task committed past it.
    """
    from streams.runtime.status import processor_status

    position: dict[int, int] = {}
    status = processor_status(log, serde, "risk")
    if not status.committed_tasks:
        return position  # risk never committed on this log: nothing is applied
    for part in status.partitions:
        if part.topic == OPS_TOPIC:
            position[part.partition] = min(position.get(part.partition, part.committed), part.committed)
    return position


def applied_rows(full: Any, applied: Any) -> list[dict[str, Any]]:
    """``full``'s rows, each with ``applied`` (risk enforces it), plus the scopes risk still enforces that a pending command lifts."""
    enforced = {r["scope"]: r for r in applied.rows()}
    rows = [dict(r, applied=enforced.get(r["scope"], {}).get("command_id") == r["command_id"]) for r in full.rows()]
    shown = {r["scope"] for r in rows}
    rows += [dict(r, applied=True, lifted_pending=True) for s, r in enforced.items() if s not in shown]
    return rows


@app.command("state", epilog=EXAMPLES)
def show_state(ctx: typer.Context, config: str = CONFIG, as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """The trading state per scope (and run-time limits, refused commands), from ops.commands.

    Each scope says whether risk has applied it yet: a command risk has not read (risk not running, or behind)
    shows as PENDING, and a scope a pending command lifts shows what risk still enforces.
    """
    from streams.processors.risk.config import load_risk_config
    from streams.processors.risk.controls import scope_label
    from streams.timeutil import format_iso_ns

    st = state(ctx)
    cfg = load_risk_config(config)
    controls, refused = replay_controls(st.log(), st.serde(), cfg)
    position = risk_position(st.log(), st.serde())
    enforced, _ = replay_controls(st.log(), st.serde(), cfg, until=position)
    rows = applied_rows(controls, enforced)
    pending = controls.accepted - enforced.accepted
    base = cfg.limit_table()
    changed = [
        {"scope": scope_label(s), "limit": k, "value": v, "configured": base.get(s, {}).get(k),
         "applied": enforced.limits.get(s, {}).get(k) == v, **_limit_cause(controls, s, k)}
        for s, lim in sorted(controls.limits.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or ""))
        for k, v in sorted(lim.items()) if base.get(s, {}).get(k) != v
    ]
    if as_json:
        typer.echo(json.dumps({"scopes": rows, "limits_changed": changed, "accepted": controls.accepted, "refused": refused,
                               "pending": pending, "risk_position": {str(p): o for p, o in sorted(position.items())}},
                              sort_keys=True))
        return
    if not any(r["scope"] == "global" for r in rows):
        rows.insert(0, {"scope": "global", "state": "ACTIVE", "flags": [], "operator_id": "", "command_id": "", "ts_ns": 0,
                        "reason": "", "applied": True})
    typer.echo(table(
        ["scope", "state", "risk", "flags", "by", "command", "since", "reason"],
        [[r["scope"], r["state"], _risk_column(r), ",".join(r["flags"]) or "-", r["operator_id"] or "-", r["command_id"] or "-",
          format_iso_ns(r["ts_ns"]) if r["ts_ns"] else "-", r["reason"] or "-"] for r in rows],
    ))
    typer.echo("(every other scope: ACTIVE)")
    if pending:
        where = ", ".join(f"{OPS_TOPIC}/{p}@{o}" for p, o in sorted(position.items())) or "nothing: risk has not run on this log"
        typer.secho(f"\n{pending} command(s) not applied by risk yet (risk has committed {where}): PENDING rows are not "
                    "enforced until `hftstream run risk` reads them", fg=typer.colors.YELLOW)
    if changed:
        typer.echo("\nlimits changed at run time:")
        typer.echo(table(["scope", "limit", "value", "configured", "risk", "by", "command", "reason"],
                         [[c["scope"], c["limit"], c["value"], c["configured"] if c["configured"] is not None else "-",
                           "enforced" if c["applied"] else "PENDING", c["operator_id"] or "-", c["command_id"] or "-",
                           c["reason"] or "-"] for c in changed]))
    typer.echo(f"\n{controls.accepted} command(s) accepted, {len(refused)} refused")
    for r in refused:
        typer.echo(f"  refused {r['at']}: {r['code']}: {r['reason']}")


def _limit_cause(controls: Any, scope: Any, kind: str) -> dict[str, Any]:
    """Who set a run-time limit, with which command and why (empty for a SetLimit written before v3 had a reason)."""
    cause = controls.limit_causes.get((scope, kind))
    if cause is None:
        return {"operator_id": "", "command_id": "", "reason": "", "ts_ns": 0}
    return {"operator_id": cause.operator_id, "command_id": cause.command_id, "reason": cause.reason, "ts_ns": cause.ts_ns}


def _risk_column(row: dict[str, Any]) -> str:
    if row.get("lifted_pending"):
        return "enforced, lift pending"
    return "enforced" if row.get("applied") else "PENDING"

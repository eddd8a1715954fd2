"""``hftstream orders``: publish simulated client order flow.

Thin: ``simulate`` builds an :class:`~connectors.orders.simulator.OrderSimConfig`, calls
:func:`connectors.orders.publish.publish_orders` and prints the summary.
"""

from __future__ import annotations

import json
from enum import Enum

import typer

from streams.cli.common import duration_ns, progress, state, table

app = typer.Typer(no_args_is_help=True)

EXAMPLES = """
Examples:

  hftstream feed simulate --symbols 4 --events 40000 --seed 7 --start 2026-01-02T14:30:00Z
  hftstream orders simulate --accounts 4 --symbols 4 --orders 10000 --seed 7 --start 2026-01-02T14:30:00Z --span 18s
  hftstream orders simulate --orders 20000 --rate 5000 --regime burst       # paced: 5000 order commands per second
"""


class Regime(str, Enum):
    calm = "calm"
    burst = "burst"
    cancel_storm = "cancel-storm"


@app.command("simulate", epilog=EXAMPLES)
def simulate_cmd(
    ctx: typer.Context,
    accounts: int = typer.Option(4, "--accounts", "-a", min=2, max=9999, help="Trading accounts, named ACC1, ACC2, ... (at least 2: a fill needs two sides)."),
    symbols: int = typer.Option(4, "--symbols", "-m", min=1, max=10_000, help="Instruments, the feed simulator's universe in order (AAPL, BTC-USD, MSFT, EUR-USD, ...): give the feed's --symbols."),
    orders: int = typer.Option(10_000, "--orders", "-n", min=0, help="Order commands (new, cancel, replace) to publish to orders.in."),
    seed: int = typer.Option(1, "--seed", "-s", help="Random seed; give the feed's seed: orders are priced around its market. The same options give byte-identical records."),
    regime: Regime = typer.Option(Regime.calm, "--regime", help="calm: resting liquidity, steady arrivals; burst: clustered arrivals, takers (market, IOC, FOK); cancel-storm: cancels and replaces dominate."),
    rate: float = typer.Option(None, "--rate", "-r", min=0.001, help="Pace the publishing at R order commands per second of wall time. Default: as fast as possible.", show_default=False),
    start: str = typer.Option(None, "--start", help="The feed's start (ISO-8601 or ns; default: today 00:00 UTC, as `feed simulate`). Orders begin 20 ms later.", show_default=False),
    span: str = typer.Option(None, "--span", help="Event time from --start to the last order (e.g. 5m, 18s, 500ms, or ns). Keep it inside the feed's span (`feed simulate --span S`: give about 0.9 x S, as `hftstream demo` does) so risk sees fresh market data. Default: --orders / --event-rate.", show_default=False),
    event_rate: int = typer.Option(1000, "--event-rate", min=1, help="Order commands per second of event time when --span is not given (risk limits each account to 2000/s by default)."),
    probe_rate: float = typer.Option(0.06, "--probe-rate", min=0.0, max=1.0, help="Share of order commands that probe a rejection (reused id, fat finger, off-band price, unknown order, ...)."),
    no_ops: bool = typer.Option(False, "--no-ops", help="Leave out the operator script (halt, reduce-only, temporary limits, cancel-all, kill switch)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
) -> None:
    """Publish simulated client order commands to orders.in, with a signed operator script on ops.commands.

    The flow exercises every path of risk and matching: fills, partial fills, resting orders, cancels, replaces (keeping or losing time priority), market, IOC, FOK and post-only orders, self-trades, and every risk rejection (size, notional, position, gross exposure, rate, price band, spread, missing or stale market data, daily loss, duplicate ids, unknown orders, halts, reduce-only, kill switch). Orders are priced around the market `hftstream feed simulate` produces for the same --seed, --symbols and --start, and stamped inside --span so risk sees fresh market data. The operator script is signed with the dev operator's key from the risk config (infra/risk.yaml). Missing topics are created from infra/topics.yaml.

    Example: hftstream orders simulate --accounts 4 --symbols 4 --orders 10000 --seed 7 --span 18s --rate 2000
    """
    from connectors.orders.publish import publish_orders
    from connectors.orders.simulator import OrderSimConfig
    from streams.cli.feed import sim_start_ns

    config = OrderSimConfig.build(
        accounts=accounts, symbols=symbols, orders=orders, seed=seed, regime=regime.value, start_ns=sim_start_ns(start),
        span_ns=_span_ns(span), event_rate=event_rate, probe_rate=probe_rate, ops_script=not no_ops,
    )
    st = state(ctx)
    log, serde = st.log(), st.serde()
    with progress("publishing orders", None) as update:
        summary = publish_orders(log, serde, config, rate=rate, progress=(lambda n: update(n, None)) if update else None)
    from streams.cli.feed import warn_expired

    warn_expired(log, {t: summary.first_ts_ns for t in summary.by_topic}, "simulate with a recent --start (without it the clock starts today at 00:00 UTC)")
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), sort_keys=True))
        return
    typer.echo(table(["SCHEMA", "RECORDS"], [[s, n] for s, n in summary.by_schema.items()]))
    typer.echo("")
    typer.echo(table(["KIND", "ORDERS"], [[k, n] for k, n in summary.kinds.items()]))
    per_s = summary.records / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
    typer.echo(f"{summary.orders} order commands -> orders.in, "
               f"{summary.by_topic.get('ops.commands', 0)} operator commands -> ops.commands; "
               f"event time {summary.first_ts_ns} .. {summary.last_ts_ns}")
    typer.echo(f"published in {summary.elapsed_s:.2f} s ({per_s:,.0f} records/s)", err=True)


def _span_ns(text: str | None) -> int | None:
    """``--span``: ``18s``, ``500ms``, ``250us``, ``2m`` or integer ns."""
    return duration_ns(text, "--span")

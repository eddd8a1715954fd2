"""What ``hftstream ops`` checks before it publishes: scopes that exist, limits in human units, kill switches.

Reference data (``refdata.instruments``) names the symbols and their scales; the accounts are the risk
config's and those that sent orders (``orders.in`` keys). When the log has neither, nothing can be checked
and the CLI says so instead of refusing. Pure functions apart from :func:`instruments` / :func:`accounts`,
which read the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from streams.errors import ConfigError, UnknownTopicError

INSTRUMENTS_TOPIC, ORDERS_TOPIC = "refdata.instruments", "orders.in"
Scope = tuple[str | None, str | None]

# How a limit's value is scaled: by the instrument's size_scale, its price_scale, the config's money_scale, or not at all.
SIZE_SCALED = ("MAX_ORDER_QTY", "MAX_POSITION")
PRICE_SCALED = ("MAX_NOTIONAL",)
MONEY_SCALED = ("MAX_GROSS_EXPOSURE", "MAX_DAILY_LOSS")


@dataclass(frozen=True)
class Scale:
    price_scale: int
    size_scale: int


def instruments(log: Any, serde: Any) -> dict[str, Scale]:
    """symbol -> its scales, from the latest record of each symbol on ``refdata.instruments`` (empty when none)."""
    from streams.demo.report import committed_records

    out: dict[str, Scale] = {}
    try:
        records = list(committed_records(log, INSTRUMENTS_TOPIC))
    except UnknownTopicError:
        return out
    for rec in records:
        if rec.value is None:
            continue
        try:
            value = serde.decode(rec.value).value
        except Exception:  # noqa: BLE001 - an undecodable record names no instrument
            continue
        out[str(value["symbol"])] = Scale(int(value["price_scale"]), int(value["size_scale"]))
    return out


def accounts(log: Any, config: Any) -> set[str]:
    """Accounts the risk config names and accounts that sent orders (the keys of ``orders.in``)."""
    from streams.demo.report import committed_records

    known = set(config.accounts) | set(config.account_symbols)
    try:
        known |= {rec.key.decode("utf-8", "replace") for rec in committed_records(log, ORDERS_TOPIC) if rec.key}
    except UnknownTopicError:
        pass
    return known


def _listing(names: Iterable[str], most: int = 12) -> str:
    names = sorted(names)
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def scope_problem(scope: Scope, symbols: Iterable[str], known_accounts: Iterable[str]) -> tuple[str, str] | None:
    """``(error, hint)`` when the scope names a symbol or account that does not exist; ``None`` otherwise.

    An empty list of symbols (or accounts) means "cannot tell": not a problem.
    """
    account, symbol = scope
    symbols, known_accounts = set(symbols), set(known_accounts)
    if symbol is not None and symbols and symbol not in symbols:
        return (f"symbol {symbol!r} is not in the reference data (refdata.instruments)",
                f"known symbols: {_listing(symbols)}; or pass --skip-check to publish it anyway")
    if account is not None and known_accounts and account not in known_accounts:
        return (f"account {account!r} is not known: not in the risk config and it never sent an order",
                f"known accounts: {_listing(known_accounts)}; or pass --skip-check to publish it anyway")
    return None


def covers(outer: Scope, inner: Scope) -> bool:
    """Whether a flag set on ``outer`` applies to ``inner`` (global covers all; account:A covers account:A,symbol:S)."""
    return all(o is None or o == i for o, i in zip(outer, inner))


def kill_switches_over(flags: Mapping[Scope, Any], scope: Scope) -> list[Scope]:
    """The engaged kill switches that apply to ``scope``."""
    return sorted((s for s in flags if covers(s, scope)), key=lambda s: (s[0] or "", s[1] or ""))


def limit_value(kind: str, text: str, *, raw: bool, symbol: str | None, scales: Mapping[str, Scale],
                money_scale: int) -> tuple[int, str]:
    """The scaled integer a ``set-limit VALUE`` means, and how to show it (``"1.5 = raw 15000 (size_scale 4)"``).

    With ``raw`` the value is already the scaled integer. Otherwise quantities are in units of the scope's
    instrument (its size_scale), notional in its currency (price_scale), exposure and loss in the config's
    money (money_scale); basis points and counts are plain integers. Raises :class:`ConfigError`.
    """
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ConfigError(f"limit value {text!r} is not a number", hint="give a number, e.g. 500 or 1.5") from None
    if not amount.is_finite():
        raise ConfigError(f"limit value {text!r} is not a number", hint="give a number, e.g. 500 or 1.5")
    if amount < 0:
        raise ConfigError(f"limit value {text}: a limit is >= 0", hint="give a value of 0 or more (0 refuses every order it applies to)")
    if raw or kind not in (*SIZE_SCALED, *PRICE_SCALED, *MONEY_SCALED):
        if amount != amount.to_integral_value():
            what = "--raw takes the scaled integer" if raw else f"{kind} is a whole number (basis points or a count)"
            raise ConfigError(f"limit value {text} is not a whole number: {what}", hint="give an integer")
        return int(amount), (f"raw {int(amount)}" if raw and kind not in _UNSCALED else f"{int(amount)}")
    if kind in MONEY_SCALED:
        scale, unit = money_scale, f"money_scale {money_scale}"
    else:
        if symbol is None:
            raise ConfigError(f"{kind} is scaled by each instrument's {'size' if kind in SIZE_SCALED else 'price'}_scale, "
                              "and this scope names no instrument",
                              hint="name one (--scope symbol:S or account:A,symbol:S) to give the value in its units, "
                              "or pass --raw and the scaled integer")
        if symbol not in scales:
            raise ConfigError(f"{symbol!r} is not in the reference data: its scale is unknown",
                              hint="publish its instrument to refdata.instruments first, or pass --raw and the scaled integer")
        sc = scales[symbol]
        scale = sc.size_scale if kind in SIZE_SCALED else sc.price_scale
        unit = f"{symbol} {'size' if kind in SIZE_SCALED else 'price'}_scale {scale}"
    scaled = amount.scaleb(scale)
    if scaled != scaled.to_integral_value():
        raise ConfigError(f"limit value {text} has more decimals than {unit} allows",
                          hint=f"give at most {scale} decimal(s)")
    return int(scaled), f"{text.strip()} = raw {int(scaled)} ({unit})"


_UNSCALED = ("PRICE_BAND_BPS", "MAX_SPREAD_BPS", "MAX_ORDERS_PER_SECOND", "ORDER_BURST")

"""Settings of the pre-trade risk processor: operator keys, replay protection, market-data freshness, limits.

Read once at start (never per record) from ``infra/risk.yaml``, or the file ``HFTSTREAM_RISK_CONFIG``
names, or ``hftstream run risk --config FILE``. Limits change at run time through signed
``SetLimit`` commands (the processor keeps its own table, seeded from here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from streams.errors import ConfigError

CONFIG_ENV = "HFTSTREAM_RISK_CONFIG"

# Limit kinds, as ``hftstream.ops.LimitKind`` names them. Per-order ones resolve by (account, symbol);
# account-wide ones (the rate limiter, gross exposure, daily loss) by account only.
ORDER_LIMITS = ("MAX_ORDER_QTY", "MAX_NOTIONAL", "MAX_POSITION", "PRICE_BAND_BPS", "MAX_SPREAD_BPS")
ACCOUNT_LIMITS = ("MAX_ORDERS_PER_SECOND", "ORDER_BURST", "MAX_GROSS_EXPOSURE", "MAX_DAILY_LOSS")
LIMIT_KINDS = ORDER_LIMITS + ACCOUNT_LIMITS


class Limits(BaseModel):
    """Limits set at one scope; ``None`` = not set here (a wider scope's value applies; unset everywhere = no limit).

    ``max_order_qty``, ``max_position``   scaled by the instrument's ``size_scale``;
    ``max_notional``                      price x quantity / 10^size_scale: scaled by the instrument's ``price_scale``;
    ``price_band_bps``                    how far (basis points) a limit price may be from the reference price;
    ``max_spread_bps``                    the widest spread (basis points of the mid) a market order accepts;
    ``max_orders_per_second``, ``order_burst``  the account's token bucket: refill rate and size (NEW and REPLACE count);
    ``max_gross_exposure``, ``max_daily_loss``  account-wide money at the config's ``money_scale``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_order_qty: int | None = Field(default=None, ge=0)
    max_notional: int | None = Field(default=None, ge=0)
    max_position: int | None = Field(default=None, ge=0)
    price_band_bps: int | None = Field(default=None, ge=0)
    max_spread_bps: int | None = Field(default=None, ge=0)
    max_orders_per_second: int | None = Field(default=None, ge=0)
    order_burst: int | None = Field(default=None, ge=1)
    max_gross_exposure: int | None = Field(default=None, ge=0)
    max_daily_loss: int | None = Field(default=None, ge=0)

    def by_kind(self) -> dict[str, int]:
        """The limits set here, by ``LimitKind`` name."""
        return {name.upper(): v for name, v in self.model_dump().items() if v is not None}


class OperatorKey(BaseModel):
    """One operator's HMAC key: ``key`` inline (development only) or ``key_env``, the variable that holds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: SecretStr | None = None
    key_env: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> OperatorKey:
        if (self.key is None) == (self.key_env is None):
            raise ValueError("give exactly one of key or key_env")
        return self

    def resolve(self, operator: str) -> bytes:
        """The key's bytes (UTF-8 of the secret text); raises :class:`ConfigError` if ``key_env`` is unset."""
        if self.key is not None:
            return self.key.get_secret_value().encode()
        assert self.key_env is not None
        value = os.environ.get(self.key_env)
        if not value:
            raise ConfigError(
                f"operator {operator!r}: environment variable {self.key_env} (its key) is not set",
                hint=f"export {self.key_env}=<the operator's shared secret>, or remove the operator from the risk config",
            )
        return value.encode()


class RiskConfig(BaseModel):
    """The risk processor's configuration. Frozen; unknown fields are an error.

    ``operators``            operator id -> key; commands from anyone else are refused (UNKNOWN_OPERATOR);
    ``replay_window_ns``     a command older than the newest accepted from the same operator by more
                             than this is refused (REPLAYED); command ids are remembered that long;
    ``max_command_age_ns``   a command appended to the log more than this after its own ``ts_ns`` is refused (EXPIRED);
    ``md_stale_after_ns``    market data older than this (by ``recv_ts_ns``, against the order's ``ts_ns``) is stale;
    ``money_scale``          decimal places of account-wide money (gross exposure, daily PnL): every instrument's
                             notional is brought to this scale (rounded away from zero, so limits err on the safe side);
    ``limits``               the defaults; ``accounts``, ``symbols`` and ``account_symbols`` (account -> symbol ->
                             limits) override them. The most specific scope that sets a limit wins: account+symbol,
                             then account, then symbol, then the default.

    ``RiskConfig()`` with no fields at all is the shipped file (``infra/risk.yaml`` or ``$HFTSTREAM_RISK_CONFIG``),
    so ``hftstream run risk`` without ``--config`` runs with it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    operators: dict[str, OperatorKey] = Field(default_factory=dict)
    replay_window_ns: int = Field(default=300_000_000_000, ge=0)
    max_command_age_ns: int = Field(default=300_000_000_000, ge=0)
    md_stale_after_ns: int = Field(default=5_000_000_000, gt=0)
    money_scale: int = Field(default=4, ge=0, le=18)
    limits: Limits = Field(default_factory=Limits)
    accounts: dict[str, Limits] = Field(default_factory=dict)
    symbols: dict[str, Limits] = Field(default_factory=dict)
    account_symbols: dict[str, dict[str, Limits]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shipped_when_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            return _read_yaml(config_file())
        return data

    def operator_keys(self) -> dict[str, bytes]:
        """Operator id -> key bytes (``key_env`` variables are read now)."""
        return {op: k.resolve(op) for op, k in sorted(self.operators.items())}

    def limit_table(self) -> dict[tuple[str | None, str | None], dict[str, int]]:
        """``(account or None, symbol or None)`` -> the limits set at that scope, by kind."""
        table: dict[tuple[str | None, str | None], dict[str, int]] = {(None, None): self.limits.by_kind()}
        for account, lim in self.accounts.items():
            table[account, None] = lim.by_kind()
        for symbol, lim in self.symbols.items():
            table[None, symbol] = lim.by_kind()
        for account, per_symbol in self.account_symbols.items():
            for symbol, lim in per_symbol.items():
                table[account, symbol] = lim.by_kind()
        return {k: v for k, v in table.items() if v or k == (None, None)}


def config_file() -> Path:
    """The risk configuration in force: ``$HFTSTREAM_RISK_CONFIG``, else the shipped ``infra/risk.yaml``."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    from streams.config import data_dir

    return data_dir("infra") / "risk.yaml"


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read the risk config {path}: {exc}", hint=f"create it, or set {CONFIG_ENV} to a readable file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the risk config {path} is not valid YAML: {exc}", hint="fix the file (see infra/risk.yaml)") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"the risk config {path} is empty or not a mapping", hint="see infra/risk.yaml for the fields")
    return raw


def load_risk_config(path: str | Path | None = None) -> RiskConfig:
    """The risk configuration from ``path`` (default :func:`config_file`); :class:`ConfigError` names the bad field."""
    from pydantic import ValidationError

    p = Path(path) if path is not None else config_file()
    try:
        return RiskConfig.model_validate(_read_yaml(p))
    except ValidationError as exc:
        raise ConfigError(f"{p} is not a valid risk configuration: {exc}", hint="see infra/risk.yaml for the fields and their units") from None

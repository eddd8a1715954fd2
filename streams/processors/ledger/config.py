"""Settings of the ledger: the fee schedule (``infra/fees.yaml``) and how often marks re-value positions."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, StrictInt

PPM = 1_000_000  # fee rates are parts per million of notional: 100 ppm = 1 bp


class FeeRates(BaseModel):
    """Maker and taker rates in parts per million of notional (negative = rebate). Integers only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    maker_ppm: StrictInt = Field(ge=-PPM, le=PPM)
    taker_ppm: StrictInt = Field(ge=-PPM, le=PPM)

    def rate(self, liquidity: str) -> int:
        """The rate for a fill of ``liquidity`` (``MAKER`` / ``TAKER``)."""
        return self.maker_ppm if liquidity == "MAKER" else self.taker_ppm


class FeeSchedule(BaseModel):
    """``default`` rates, overridden per venue (``Fill.venue``) by ``venues``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: FeeRates = FeeRates(maker_ppm=0, taker_ppm=0)
    venues: dict[str, FeeRates] = Field(default_factory=dict)

    def rate(self, venue: str, liquidity: str) -> int:
        """The rate in ppm for a fill on ``venue`` with ``liquidity``."""
        return self.venues.get(venue, self.default).rate(liquidity)

    @classmethod
    def load(cls, path: Path | None = None) -> FeeSchedule:
        """Read a fee schedule file (default ``infra/fees.yaml``); a bad file is a :class:`ConfigError`."""
        import yaml
        from pydantic import ValidationError

        from streams.config import data_dir
        from streams.errors import ConfigError

        path = path or data_dir("infra") / "fees.yaml"
        try:
            raw = yaml.safe_load(path.read_text()) or {}
            return cls.model_validate(raw)
        except OSError as exc:
            raise ConfigError(f"cannot read the fee schedule {path}: {exc}", hint="restore infra/fees.yaml or give `fees:` in the ledger config") from None
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(
                f"{path} is not a valid fee schedule: {exc}",
                hint="rates are integers in ppm of notional: default: {maker_ppm: -20, taker_ppm: 30}, venues: {NAME: {...}}",
            ) from None


class LedgerConfig(BaseModel):
    """How the ledger charges fees and re-values positions. Frozen; unknown fields are an error.

    ``fees``                 the fee schedule; default: ``infra/fees.yaml``, read when the config is built
                             (never by the processor);
    ``remark_interval_ns``   a mark (trade or quote on ``md.normalized``) re-emits the open positions of its
                             symbol when at least this much event time has passed since the symbol's last
                             re-emission (``0``: every mark; ``None``: only fills emit positions). Positions
                             are always emitted, with the latest mark, on each fill.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fees: FeeSchedule = Field(default_factory=FeeSchedule.load)
    remark_interval_ns: int | None = Field(default=1_000_000_000, ge=0)

"""Settings of the reconciler: the matching window, the halt threshold and the reconciler's signing identity."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DEV_KEY = "hftstream-dev-reconciler-key"


class ReconcileConfig(BaseModel):
    """How the reconciler matches fills to execution reports, and when it halts trading. Frozen; unknown fields are an error.

    ``match_window_ns``   event time a fill waits for its execution report (and a report for its fill); past it,
                          the missing side is a break (``MISSING_VENUE`` / ``MISSING_INTERNAL``). A report at
                          exactly the window matches; one ns later it is late (see the package docstring);
    ``halt_threshold``    a venue's open breaks may reach this number; one more sets its status HALTED and
                          publishes one signed ``Halt`` (every instrument) to ``ops.commands``;
    ``operator_id``       who the halt is from; risk must know this operator and its key;
    ``signing_key``       the reconciler's HMAC key (UTF-8 text). The default is a development key: set your
                          own in the config file, and the same key for ``operator_id`` in risk's configuration.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    match_window_ns: int = Field(default=5_000_000_000, gt=0)
    halt_threshold: int = Field(default=10, ge=0)
    operator_id: str = Field(default="reconciler", min_length=1)
    signing_key: SecretStr = SecretStr(DEV_KEY)

    def key_bytes(self) -> bytes:
        """The signing key as bytes."""
        return self.signing_key.get_secret_value().encode()

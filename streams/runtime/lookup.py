"""Find a processor class by name (the registry in :mod:`streams.processors`) or by import path."""

from __future__ import annotations

import importlib
from typing import Any

from streams.errors import ConfigError
from streams.processors.base import Processor


def registry() -> dict[str, type[Processor]]:
    """Every built-in processor, by name, in pipeline order."""
    try:
        from streams.processors import PROCESSORS  # type: ignore[attr-defined]
    except ImportError:
        return {}
    return dict(PROCESSORS)


def find_processor(name: str) -> type[Processor]:
    """A built-in processor (``normalize``) or any ``package.module:Class`` importable here."""
    known = registry()
    if name in known:
        return known[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"cannot import processor {name!r}: {exc}",
                hint="give MODULE:CLASS importable from this Python environment (check PYTHONPATH)",
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, Processor)):
            raise ConfigError(f"{name!r} is not a streams.processors.base.Processor subclass")
        return cls
    raise ConfigError(
        f"unknown processor {name!r}",
        hint=f"built-in processors: {', '.join(known) or '(none)'}; or give MODULE:CLASS of your own",
    )


def default_config(cls: type[Processor]) -> Any:
    """The processor's default configuration (its ``config_class()``), or ``None``."""
    config_class = getattr(cls, "config_class", None)
    return config_class() if config_class is not None else None

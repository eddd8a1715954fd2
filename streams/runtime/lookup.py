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


def load_config(cls: type[Processor], path: str | None = None) -> Any:
    """The processor's configuration: its ``config_class`` from a YAML/JSON file, or the defaults.

    Raises :class:`ConfigError` naming the file and the bad field.
    """
    config_class = getattr(cls, "config_class", None)
    if path is None:
        return config_class() if config_class is not None else None
    if config_class is None:
        raise ConfigError(f"processor {cls.name!r} takes no configuration, but --config {path} was given")
    import yaml
    from pydantic import ValidationError

    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
        return config_class.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read --config {path}: {exc}", hint="give a readable YAML or JSON file") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(
            f"--config {path} is not a valid {cls.name} configuration: {exc}",
            hint=f"fields of {config_class.__name__}: {', '.join(getattr(config_class, 'model_fields', {}))}",
        ) from None


def default_config(cls: type[Processor]) -> Any:
    """The processor's default configuration (its ``config_class()``), or ``None``."""
    return load_config(cls, None)

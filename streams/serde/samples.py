"""Deterministic sample values built from a schema: for tests, benchmarks and docs.

``sample(schema, seed)`` returns a value that fits ``schema`` (a self-contained JSON
schema, e.g. ``SchemaRepo.schema(name)``). The same (schema, seed) always gives the same
value; different seeds vary numbers, strings, enum symbols and union branches, and
``seed % 2 == 1`` picks the null branch of nullable fields so both branches get exercised.
"""

from __future__ import annotations

import random
from typing import Any

_PRIMITIVE_SAMPLES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")


def sample(schema: Any, seed: int = 0) -> Any:
    """A value that fits ``schema``, determined by ``seed``."""
    return _Sampler(seed).value(schema, "", {})


class _Sampler:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def value(self, s: Any, field: str, names: dict[str, Any]) -> Any:
        rng = self.rng
        if isinstance(s, list):
            non_null = [b for b in s if b != "null"]
            if "null" in s and (self.seed % 2 == 1 or not non_null):
                return None
            return self.value(non_null[rng.randrange(len(non_null))], field, names)
        if isinstance(s, str):
            if s in names:
                return self.value(names[s], field, names)
            return self.primitive(s, field)
        t = s["type"]
        if t in ("record", "error", "enum", "fixed"):
            names[s["name"]] = s
            if "namespace" in s:
                names[f"{s['namespace']}.{s['name']}"] = s
        if t in ("record", "error"):
            return {f["name"]: self.value(f["type"], f["name"], names) for f in s["fields"]}
        if t == "enum":
            return s["symbols"][rng.randrange(len(s["symbols"]))]
        if t == "fixed":
            return bytes(rng.randrange(256) for _ in range(s["size"]))
        if t == "array":
            return [self.value(s["items"], field, names) for _ in range(1 + rng.randrange(3))]
        if t == "map":
            return {f"k{i}": self.value(s["values"], field, names) for i in range(1 + rng.randrange(3))}
        return self.value(t, field, names)

    def primitive(self, t: str, field: str) -> Any:
        rng = self.rng
        if t == "null":
            return None
        if t == "boolean":
            return rng.random() < 0.5
        if t == "int":
            return rng.randrange(0, 9)
        if t == "long":
            if field.endswith("_ns"):
                return 1_700_000_000_000_000_000 + rng.randrange(10**12)
            return rng.randrange(1, 10**7)
        if t in ("float", "double"):
            return rng.randrange(10**6) / 64.0
        if t == "bytes":
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24)))
        if t == "string":
            return f"{field or 's'}-{rng.randrange(10**6)}"
        raise ValueError(f"cannot sample unknown type {t!r}")

"""Topic declarations (``infra/topics.yaml``) and applying them to a log.

The YAML is read once into :class:`TopicSpec` values. Templates such as
``md.raw.{venue}`` expand for the venues/processors the file lists, and on demand
for any other name that matches (a new venue needs no YAML edit).

Replication (Kafka): the file's ``replication:`` block names environments, each with a
``replication_factor`` and ``min_insync_replicas``, and a ``default`` one;
``HFTSTREAM_KAFKA_ENVIRONMENT`` selects another (:func:`replication_environment`). Every declared
topic carries the selected pair (DECISIONS #50).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from streams.config import topics_file
from streams.errors import ConfigError, HftError, RetryableError, UnknownTopicError
from streams.log.base import Log, TopicChange, TopicSpec
from streams.timeutil import format_iso_ns

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_FIELDS = {"name", "partitions", "key", "value_schema", "retention", "retention_bytes", "cleanup_policy", "description"}


def parse_retention(value: Any, where: str) -> int | None:
    """``"7d"`` -> 604800000 ms; ``"forever"`` / ``None`` -> ``None``; an int is taken as ms."""
    if value is None or value == "forever":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _DURATION.match(str(value))
    if not m:
        raise ConfigError(f"{where}: retention {value!r} is not a duration", hint="write e.g. 7d, 12h, 30m, 1000ms, or forever")
    return int(m.group(1)) * _UNITS_MS[m.group(2)]


@dataclass(frozen=True)
class TopicCatalog:
    """The declared topics plus the templates that name families of topics."""

    topics: dict[str, TopicSpec]
    templates: tuple[tuple[re.Pattern[str], TopicSpec], ...]
    source: Path
    replication: Replication | None = None

    def spec_for(self, name: str) -> TopicSpec:
        """The declaration for ``name``: an explicit topic, or a template instantiated for it."""
        if name in self.topics:
            return self.topics[name]
        for pattern, template in self.templates:
            if pattern.fullmatch(name):
                return replace(template, name=name)
        raise UnknownTopicError(
            name,
            hint=f"{name!r} is not declared in {self.source}; add it there (or match a template such as md.raw.{{venue}})",
        )

    def declares(self, name: str) -> bool:
        """Whether ``name`` is declared, by name or through a template."""
        try:
            self.spec_for(name)
        except UnknownTopicError:
            return False
        return True

    def all(self) -> list[TopicSpec]:
        """Every concrete declared topic, sorted by name."""
        return [self.topics[n] for n in sorted(self.topics)]


def _spec(raw: dict[str, Any], where: str) -> TopicSpec:
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}", hint=f"allowed fields: {sorted(_FIELDS)}")
    if "name" not in raw:
        raise ConfigError(f"{where}: a topic has no name")
    schema = raw.get("value_schema")
    if isinstance(schema, list):
        schema = ",".join(schema)
    policy = raw.get("cleanup_policy", "delete")
    if policy not in ("delete", "compact"):
        raise ConfigError(f"{where}: cleanup_policy {policy!r}", hint="use delete or compact")
    partitions = raw.get("partitions", 1)
    if not isinstance(partitions, int) or partitions < 1:
        raise ConfigError(f"{where}: partitions must be a positive integer, got {partitions!r}")
    return TopicSpec(
        name=str(raw["name"]),
        partitions=partitions,
        key=raw.get("key"),
        value_schema=schema,
        retention_ms=parse_retention(raw.get("retention"), where),
        retention_bytes=raw.get("retention_bytes"),
        cleanup_policy=policy,
        description=str(raw.get("description", "")).strip(),
    )


def load_catalog(path: Path | None = None) -> TopicCatalog:
    """Read and validate a topics file (default: ``infra/topics.yaml`` or ``HFTSTREAM_TOPICS_FILE``)."""
    path = Path(path) if path else topics_file()
    return _load_catalog_cached(path.resolve(), os.environ.get(ENVIRONMENT_ENV, "").strip())


ENVIRONMENT_ENV = "HFTSTREAM_KAFKA_ENVIRONMENT"


@dataclass(frozen=True, slots=True)
class Replication:
    """One replication environment of the topics file."""

    environment: str
    replication_factor: int
    min_insync_replicas: int


def replication_environment(doc: Mapping[str, Any], where: str, selected: str | None = None) -> Replication | None:
    """The replication environment ``selected`` (default: ``HFTSTREAM_KAFKA_ENVIRONMENT``, then the file's default)."""
    block = doc.get("replication")
    if block is None:
        return None
    envs = block.get("environments") if isinstance(block, dict) else None
    if not isinstance(envs, dict) or not envs:
        raise ConfigError(f"{where}: replication needs an 'environments' mapping", hint="e.g. dev: {replication_factor: 1, min_insync_replicas: 1}")
    name = selected or os.environ.get(ENVIRONMENT_ENV, "").strip() or block.get("default")
    if name not in envs:
        raise ConfigError(
            f"{where}: replication environment {name!r} is not declared",
            hint=f"set {ENVIRONMENT_ENV} to one of {sorted(envs)} (or fix replication.default)",
        )
    env = envs[name] or {}
    rf, isr = env.get("replication_factor"), env.get("min_insync_replicas")
    if not isinstance(rf, int) or not isinstance(isr, int) or rf < 1 or not 1 <= isr <= rf:
        raise ConfigError(
            f"{where}: replication environment {name!r}: replication_factor {rf!r}, min_insync_replicas {isr!r}",
            hint="both are positive integers and min_insync_replicas <= replication_factor (prod: 3 and 2)",
        )
    return Replication(str(name), rf, isr)


def catalog_replication(path: Path | None = None) -> Replication | None:
    """The replication environment the topics file selects now (``topics apply`` prints it)."""
    path = Path(path) if path else topics_file()
    return _load_catalog_cached(path.resolve(), os.environ.get(ENVIRONMENT_ENV, "").strip()).replication


@lru_cache(maxsize=8)
def _load_catalog_cached(path: Path, environment: str = "") -> TopicCatalog:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"topics file {path} not found", hint="set HFTSTREAM_TOPICS_FILE or run from the repository") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"topics file {path} is not valid YAML: {exc}") from None
    names = {"venue": doc.get("venues", []), "processor": doc.get("processors", [])}
    repl = replication_environment(doc, str(path), environment or None)
    topics: dict[str, TopicSpec] = {}
    templates: list[tuple[re.Pattern[str], TopicSpec]] = []
    for i, raw in enumerate(doc.get("templates", [])):
        spec = _with(_spec(raw, f"{path}: templates[{i}]"), repl)
        placeholder = re.search(r"\{(\w+)\}", spec.name)
        if not placeholder or placeholder.group(1) not in names:
            raise ConfigError(f"{path}: template {spec.name!r} needs a {{venue}} or {{processor}} placeholder")
        var = placeholder.group(1)
        prefix, suffix = spec.name.split("{" + var + "}")
        templates.append((re.compile(re.escape(prefix) + r"[a-zA-Z0-9_-]+" + re.escape(suffix)), spec))
        for value in names[var]:
            name = spec.name.replace("{" + var + "}", str(value))
            topics[name] = replace(spec, name=name)
    for i, raw in enumerate(doc.get("topics", [])):
        spec = _with(_spec(raw, f"{path}: topics[{i}]"), repl)
        if spec.name in topics:
            raise ConfigError(f"{path}: topic {spec.name!r} is declared twice")
        topics[spec.name] = spec
    return TopicCatalog(topics=topics, templates=tuple(templates), source=path, replication=repl)


def _with(spec: TopicSpec, repl: Replication | None) -> TopicSpec:
    if repl is None:
        return spec
    return replace(spec, replication_factor=repl.replication_factor, min_insync_replicas=repl.min_insync_replicas)


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One declared topic in a plan: the change applying it makes, or the error applying it would stop at."""

    spec: TopicSpec
    change: TopicChange | None = None
    error: HftError | None = None

    @property
    def action(self) -> str:
        """``created`` / ``partitions`` / ``config`` / ``unchanged``, or ``error``."""
        return self.change.action if self.change else "error"

    @property
    def detail(self) -> str:
        """What changes (``partitions 3 -> 4; retention.ms ...``), or the error message."""
        return self.change.detail if self.change else str(self.error)


class TopicPlanError(ConfigError):
    """``topics apply`` refused to start: some declared topics cannot be applied. Nothing was changed."""

    def __init__(self, plan: list[PlanEntry]) -> None:
        bad = [e for e in plan if e.error is not None]
        super().__init__(
            f"{len(bad)} of {len(plan)} declared topic(s) cannot be applied; nothing was changed:\n  "
            + "\n  ".join(f"{e.spec.name}: {e.detail}" for e in bad),
            hint=next((e.error.hint for e in bad if e.error is not None and e.error.hint), "")
            + " -- then run `hftstream topics apply --dry-run` to see the whole plan",
        )
        self.plan = plan


def plan_topics(log: Log, specs: Iterable[TopicSpec] | None = None) -> list[PlanEntry]:
    """What :func:`apply_topics` would do, entry by entry, without changing anything (``topics apply --dry-run``).

    Each backend answers with the same code path as the real apply (:meth:`Log.plan_topic`; Kafka
    validates every request with the broker), so creations, partition growth, config changes and
    errors (a shrink, a setting the broker refuses) are exactly what the apply would meet.
    """
    plan = []
    for spec in load_catalog().all() if specs is None else specs:
        try:
            plan.append(PlanEntry(spec, change=log.plan_topic(spec)))
        except HftError as exc:
            if isinstance(exc, RetryableError):
                raise  # the broker is down: that is no verdict on the entry
            plan.append(PlanEntry(spec, error=exc))
    return plan


def apply_topics(log: Log, specs: Iterable[TopicSpec] | None = None) -> list[TopicChange]:
    """Create or update every declared topic on ``log``; one :class:`TopicChange` per topic.

    Every entry is checked first (:func:`plan_topics`): when any of them cannot be applied,
    :class:`TopicPlanError` lists them all and nothing is changed.
    """
    plan = plan_topics(log, specs)
    if any(e.error is not None for e in plan):
        raise TopicPlanError(plan)
    return [log.create_topic(e.spec) for e in plan]


def format_duration_ms(ms: int) -> str:
    """``604800000`` -> ``"7d"``: the largest unit of ``infra/topics.yaml`` that divides ``ms``."""
    for unit in ("d", "h", "m", "s"):
        if ms and ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


def expired_on_publish(log: Log, oldest: Mapping[str, int | None], advice: str, now_ns: int | None = None) -> list[str]:
    """One warning per topic in ``oldest`` (topic -> the smallest record timestamp just published) whose
    records are already older than the topic's time retention, so the log may delete them at any moment.

    ``advice`` says how to publish recent timestamps with the command that published. Compacted topics and
    topics kept forever never warn. ``now_ns`` defaults to the wall clock.
    """
    now = time.time_ns() if now_ns is None else now_ns
    warnings = []
    for topic, ts in oldest.items():
        if ts is None:
            continue
        spec = log.describe_topic(topic)
        if spec.retention_ms is None or spec.cleanup_policy != "delete":
            continue
        cutoff = now - spec.retention_ms * 1_000_000
        if ts >= cutoff:
            continue
        deleter = (
            "Kafka deletes such records at its next retention check (within minutes)"
            if log.url.startswith("kafka://")
            else "`hftstream log retain` deletes such records"
        )
        warnings.append(
            f"{topic}: records were published with timestamps older than the topic's retention "
            f"(oldest {_seconds(ts)}; retention {format_duration_ms(spec.retention_ms)} keeps {_seconds(cutoff)} on); {deleter}. "
            f"To keep them: {advice}, or raise the retention of {topic} in infra/topics.yaml and run `hftstream topics apply`."
        )
    return warnings


def _seconds(ns: int) -> str:
    return format_iso_ns(ns)[:19] + "Z"


def ensure_topics(log: Log, names: Iterable[str], catalog: TopicCatalog | None = None) -> list[TopicChange]:
    """Create the named topics that do not exist yet, from their declarations (templates included)."""
    catalog = catalog or load_catalog()
    existing = {t.name for t in log.list_topics()}
    return [log.create_topic(catalog.spec_for(n)) for n in dict.fromkeys(names) if n not in existing]


def declared_topics(names: Iterable[str], catalog: TopicCatalog | None = None) -> list[str]:
    """The names among ``names`` that infra/topics.yaml declares (templates included)."""
    catalog = catalog or load_catalog()
    out = []
    for name in names:
        try:
            catalog.spec_for(name)
        except UnknownTopicError:
            continue
        out.append(name)
    return out

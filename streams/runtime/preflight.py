"""What must hold before a processor can start, checked the same way by ``hftstream run`` and ``status``.

``run`` calls these as it opens (:class:`~streams.runtime.runner.Runner`) and recovers each
task; ``status`` calls :func:`start_problem`, which runs the same functions without joining
the group, so a processor that ``run`` would refuse shows the same error and hint in
``status``'s problem column:

* the inputs resolve (:func:`plan_inputs`), the outputs exist (:func:`check_topics`);
* the group's committed offsets are readable (a damaged ``__consumer_offsets/<group>.json``
  on the embedded log) and agree with each task's last commit manifest -- a group moved by
  ``kafka-consumer-groups --reset-offsets`` does not (:func:`check_group_agrees`);
* the commit log ``state.<processor>`` is readable and contiguous (:meth:`StateStore.history`);
* every input record recovery must replay is still on the log, and no record the processor
  has already consumed was removed under it (:func:`check_inputs_present`). When records are
  gone the message names the cause the log can tell: ``log repair`` (a declared hole, a
  truncation), retention, or unknown.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from streams.errors import ConfigError
from streams.log.base import Log, Loss, TopicPartition
from streams.processors.base import Processor
from streams.runtime.reset import group_of
from streams.runtime.state import StateStore, TaskHistory, state_topic
from streams.serde import Serde
from streams.timeutil import format_iso_ns

STATE_HINT = "see RUNBOOK.md 'Processor state lost or damaged'"


class GroupDisagrees(ConfigError):
    """The group's committed offsets and the task's last commit manifest differ."""


class HistoryBehindGroup(GroupDisagrees):
    """The commit log has not caught up with the group's offsets yet (an open transaction): read it again."""


@dataclass(frozen=True, slots=True)
class InputPlan:
    """The resolved inputs: topic names, ranks, partition counts, which are keyed."""

    keyed: tuple[str, ...]
    global_: tuple[str, ...]
    ranks: dict[str, int]
    partitions: dict[str, int]
    as_of: tuple[str, ...] = ()  # the global inputs of scope "as_of" (in global_ too)

    @property
    def tasks(self) -> int:
        """How many tasks the processor has (1 with only global inputs)."""
        return self.partitions[self.keyed[0]] if self.keyed else 1

    def task_partitions(self, task: int) -> list[tuple[TopicPartition, int]]:
        """``((topic, partition), rank)`` of every input partition of ``task``."""
        out = [((t, task), self.ranks[t]) for t in self.keyed]
        out += [((t, p), self.ranks[t]) for t in self.global_ for p in range(self.partitions[t])]
        return out


def plan_inputs(log: Log, processor: Processor) -> InputPlan:
    """Resolve ``processor.inputs`` (names and ``*`` patterns) against the topics on ``log``."""
    existing = {t.name: t.partitions for t in log.list_topics()}
    keyed: list[str] = []
    global_: list[str] = []
    as_of: list[str] = []
    ranks: dict[str, int] = {}
    for rank, inp in enumerate(processor.inputs):
        names = sorted(n for n in existing if fnmatch.fnmatchcase(n, inp.topic)) if "*" in inp.topic else (
            [inp.topic] if inp.topic in existing else []
        )
        if not names:
            raise ConfigError(
                f"processor {processor.name!r}: input {inp.topic!r} matches no topic on the log",
                hint="run `hftstream topics apply` (and publish the feed) first; `hftstream topics list` shows what exists",
            )
        for n in names:
            if n in ranks:
                raise ConfigError(f"processor {processor.name!r}: topic {n!r} is named by two inputs")
            ranks[n] = rank
            (keyed if inp.scope == "keyed" else global_).append(n)
            if inp.scope == "as_of":
                as_of.append(n)
    counts = {existing[t] for t in keyed}
    if len(counts) > 1:
        detail = ", ".join(f"{t}={existing[t]}" for t in keyed)
        raise ConfigError(
            f"processor {processor.name!r}: keyed inputs must have the same partition count ({detail})",
            hint="co-partitioned inputs need equal partition counts: fix infra/topics.yaml and re-create the topic",
        )
    return InputPlan(tuple(keyed), tuple(global_), ranks, {t: existing[t] for t in keyed + global_}, tuple(as_of))


def check_topics(log: Log, name: str, proto: Processor) -> InputPlan:
    """The processor's inputs resolve and its outputs exist; returns the :class:`InputPlan`."""
    plan = plan_inputs(log, proto)
    missing = [t for t in proto.outputs if t not in {i.name for i in log.list_topics()}]
    if missing:
        raise ConfigError(
            f"processor {name!r}: output topic(s) {', '.join(missing)} do not exist (and infra/topics.yaml does not declare them)",
            hint="create them (`hftstream topics apply` creates every declared topic), or declare them in infra/topics.yaml",
        )
    return plan


def check_group_agrees(
    name: str, task: int, hist: TaskHistory, committed: Mapping[TopicPartition, int | None],
    damage: Callable[[], str | None] | None = None,
) -> None:
    """The group's committed offsets equal the task's last manifest (raises :class:`HistoryBehindGroup` if the manifest lags).

    ``damage`` (asked only when they disagree) says what is wrong with the file the offsets are kept in, if
    anything: then the message names the damage, not an outside reset.
    """
    ends = hist.last.ends() if hist.last else {}
    behind = {tp: c for tp, c in committed.items() if c is not None and (tp not in ends or ends[tp] < c)}
    ahead = {tp: ends[tp] for tp, c in committed.items() if tp in ends and (c is None or ends[tp] > c)}
    if not behind and not ahead:
        return
    tp = next(iter(ahead or behind))
    c = committed.get(tp)
    how = "moved behind" if ahead and c is not None else "lost" if ahead else "ahead of"
    error = HistoryBehindGroup if not ahead else GroupDisagrees
    found = damage() if damage is not None else None
    if found:
        raise error(
            f"{name}: group {group_of(name)!r} committed {tp[0]}/{tp[1]} at {c}, but the last commit manifest of task {task} "
            f"says {ends.get(tp)}: the group's offsets file is damaged: {found}",
            hint="restore the file from a backup, or delete it and put the group back at the manifest's offsets, or reset "
            f"the processor; {STATE_HINT}",
        )
    raise error(
        f"{name}: group {group_of(name)!r} committed {tp[0]}/{tp[1]} at {c}, but the last commit manifest of task {task} "
        f"says {ends.get(tp)} (the group's offsets were {how} the commit log: reset outside hftstream?)",
        hint="the group offsets and state.<processor> disagree; put the group back at the manifest's offsets, or reset the "
        f"processor; {STATE_HINT}",
    )


Marks = dict[TopicPartition, tuple[int, int, list[Loss]]]


def gone_cause(log: Log, tp: TopicPartition, start: int, end: int, since_ns: int, cache: Marks | None = None) -> str | None:
    """Why records ``[start, end)`` of ``tp``, there at wall time ``since_ns``, cannot be read now (None: they can).

    ``cache`` keeps each partition's watermarks and losses across calls (one request per partition).
    """
    cache = {} if cache is None else cache
    if tp not in cache:
        cache[tp] = (*log.watermarks(*tp), log.losses(*tp))
    low, high, losses = cache[tp]
    for loss in losses:
        if loss.first < end and start < loss.end and (loss.ts_ns == 0 or loss.ts_ns >= since_ns):
            when = f" on {format_iso_ns(loss.ts_ns)[:19]}Z" if loss.ts_ns else ""
            return f"offsets {max(start, loss.first)}..{min(end, loss.end) - 1} were {loss.cause}{when}"
    if end > high:
        return f"the partition now ends at {high} (truncated or re-created; the log does not say why: cause unknown)"
    if start < low:
        return f"removed by retention (the partition now starts at {low})"
    return None


def check_inputs_present(log: Log, name: str, task: int, hist: TaskHistory) -> None:
    """Every input range recovery replays is readable, and nothing the last commit consumed was removed since."""
    cache: Marks = {}
    for m in hist.after:
        for tp, start, end in m.ranges:
            if end > start and (cause := gone_cause(log, tp, start, end, m.committed_ts_ns, cache)):
                raise ConfigError(
                    f"{name}: cannot recover task {task}: records {tp[0]}/{tp[1]} {start}..{end - 1} of commit {m.seq} are "
                    f"gone: {cause}",
                    hint=f"recovery replays every input since the last snapshot; re-publish them, or reset the processor; {STATE_HINT}",
                )
    last = hist.last
    if last is None:
        return
    for tp, pos in last.ends().items():
        if pos > 0 and (cause := gone_cause(log, tp, pos - 1, pos, last.committed_ts_ns, cache)) and "retention" not in cause:
            raise ConfigError(
                f"{name}: task {task} committed {tp[0]}/{tp[1]} up to {pos}, but records it consumed are gone: {cause}; "
                "new records there would be skipped",
                hint=f"replay the processor from before the damage, or reset it; {STATE_HINT}",
            )


def check_task(log: Log, name: str, task: int, hist: TaskHistory, committed: Mapping[TopicPartition, int | None]) -> None:
    """Every check of one task before it starts: group agreement, then its inputs."""
    check_group_agrees(name, task, hist, committed, lambda: log.group_offsets_damage(group_of(name)))
    check_inputs_present(log, name, task, hist)


def start_problem(
    log: Log, serde: Serde, proto: Processor, name: str, *, wait_s: float = 2.0, tasks: Sequence[int] | None = None,
) -> ConfigError | None:
    """The error ``hftstream run`` would stop with before processing anything, or None (``status``).

    Reads the group's offsets without joining the group, so it is safe on a running processor.
    A running instance's commit makes its manifest and its group offsets visible a moment
    apart, so a disagreement is read again (both sides) for up to ``wait_s`` before it counts.
    """
    try:
        plan = check_topics(log, name, proto)
        if state_topic(name) not in {t.name for t in log.list_topics()}:
            return None
        keyed = [(t, p) for p in range(plan.tasks) for t in plan.keyed]
        store = StateStore(log, serde, name)
        deadline = time.monotonic() + wait_s
        for task in tasks if tasks is not None else range(plan.tasks):
            while True:
                committed = log.group_offsets(group_of(name), [tp for tp in keyed if tp[1] == task]) if keyed else {}
                hist = store.history(task)
                try:
                    check_task(log, name, task, hist, {tp: committed.get(tp) for tp in keyed if tp[1] == task})
                    break
                except GroupDisagrees:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.1)
    except ConfigError as exc:
        return exc
    return None

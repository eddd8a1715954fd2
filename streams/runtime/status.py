"""``hftstream status``: where each processor is -- committed positions, lag, dead letters, last commit.

Read from the log alone (the last commit manifest of each task in ``state.<processor>``,
the inputs' end offsets, the records of ``dlq.<processor>``), so it works on either log, for
processors running in other processes or machines, and for ones that are stopped.

The problem column is what ``hftstream run`` would stop with before processing anything:
the same checks (:func:`streams.runtime.preflight.start_problem`), with the same hint.
A global input is read by every task; its lag counts once per processor (the slowest
task's position), not once per task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.errors import ConfigError
from streams.log.base import Log, TopicPartition
from streams.runtime.codec import dlq_topic
from streams.runtime.lookup import default_config, find_processor, registry
from streams.runtime.preflight import start_problem
from streams.runtime.runner import plan_inputs
from streams.runtime.state import StateStore, read_range, state_topic
from streams.serde import Serde


@dataclass
class PartitionStatus:
    """One input partition of one task."""

    topic: str
    partition: int
    committed: int
    end: int
    scope: str = "keyed"  # "global": every task reads it; the row shows the slowest task

    @property
    def lag(self) -> int:
        """Records on the log not yet committed by the processor."""
        return max(0, self.end - self.committed)


@dataclass
class ProcessorStatus:
    """One processor: its tasks' positions, its dead letters, its last commit."""

    name: str
    tasks: int = 0
    committed_tasks: int = 0
    last_commit_ns: int | None = None
    last_instance: str | None = None
    dead_letters: int = 0
    partitions: list[PartitionStatus] = field(default_factory=list)
    problem: str | None = None
    hint: str | None = None

    @property
    def lag(self) -> int:
        """Total lag over every input partition (a global input's partitions counted once)."""
        return sum(p.lag for p in self.partitions)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "processor": self.name,
            "tasks": self.tasks,
            "committed_tasks": self.committed_tasks,
            "last_commit_ns": self.last_commit_ns,
            "last_instance": self.last_instance,
            "dead_letters": self.dead_letters,
            "lag": self.lag,
            "problem": self.problem,
            "hint": self.hint,
            "partitions": [
                {"topic": p.topic, "partition": p.partition, "scope": p.scope, "committed": p.committed, "end": p.end, "lag": p.lag}
                for p in self.partitions
            ],
        }


def _count(log: Log, topic: str) -> int:
    """Committed records of ``topic`` (on Kafka, offsets also hold transaction markers and aborted records)."""
    try:
        n = log.partitions(topic)
    except Exception:
        return 0
    total = 0
    for p in range(n):
        low, high = log.watermarks(topic, p)
        if log.offsets_are_records:
            total += high - low
        else:
            total += sum(1 for _ in read_range(log, topic, p, low, high))
    return total


def processor_status(log: Log, serde: Serde, name: str, config: Any = None, *, as_name: str | None = None) -> ProcessorStatus:
    """The status of one processor (see the module docstring)."""
    cls = find_processor(name)
    name = as_name or cls.name
    st = ProcessorStatus(name)
    proto = cls(config if config is not None else default_config(cls), 0)
    try:
        plan = plan_inputs(log, proto)
    except ConfigError as exc:
        st.problem, st.hint = str(exc), exc.hint
        return st
    st.tasks = plan.tasks
    st.dead_letters = _count(log, dlq_topic(name))
    topics = {t.name for t in log.list_topics()}
    latest = StateStore(log, serde, name).latest(plan.tasks) if state_topic(name) in topics else {}
    st.committed_tasks = len(latest)
    ends: dict[TopicPartition, int] = {}
    shared: dict[TopicPartition, PartitionStatus] = {}  # global inputs: one row, the slowest task's position
    for task in range(plan.tasks):
        m = latest.get(task)
        positions = m.ends() if m else {}
        for tp, _ in plan.task_partitions(task):
            if tp not in ends:
                ends[tp] = log.watermarks(*tp)[1]
            at = log.watermarks(*tp)[0] if tp not in positions else positions[tp]
            if tp[0] not in plan.global_:
                st.partitions.append(PartitionStatus(tp[0], tp[1], at, ends[tp]))
            elif tp not in shared:
                shared[tp] = PartitionStatus(tp[0], tp[1], at, ends[tp], "global")
                st.partitions.append(shared[tp])
            elif at < shared[tp].committed:
                shared[tp].committed = at
        if m and (st.last_commit_ns is None or m.committed_ts_ns > st.last_commit_ns):
            st.last_commit_ns, st.last_instance = m.committed_ts_ns, m.instance
    problem = start_problem(log, serde, proto, name)
    if problem is not None:
        st.problem, st.hint = str(problem), problem.hint
    return st


def all_status(log: Log, serde: Serde, names: list[str] | None = None) -> list[ProcessorStatus]:
    """Status of the named processors (default: every built-in one, and any other with a state topic)."""
    if names is None:
        names = list(registry())
    return [processor_status(log, serde, n) for n in names]

"""The processor contract: a pure, deterministic state machine from input records to output records.

A processor never touches I/O, never reads the wall clock and never draws an unseeded
random number. Time comes from the records (``Message.timestamp_ns`` and the event times
in the values). The runtime (:mod:`streams.runtime`) owns everything else: reading,
decoding, the merge order, batching, encoding, routing, lineage headers, dead letters,
transactions, snapshots and metrics. So one processor runs unchanged on the embedded log,
on Kafka, in a recovery replay, in ``hftstream verify`` and in a backtest, and the same
input always gives byte-identical output.

Writing one::

    class Upper(Processor):
        name = "upper"

        def __init__(self, config: UpperConfig, task: int) -> None:
            self.inputs = (Input("words.in"),)
            self.outputs = ("words.out",)
            self.seen = 0

        def process(self, msg: Message) -> Iterable[Output]:
            if not msg.value["text"]:
                raise Reject("EMPTY_TEXT", "text is empty")   # -> dlq.upper, the run goes on
            self.seen += 1
            yield Output("words.out", msg.key, "demo.Word", {"text": msg.value["text"].upper()})

        def snapshot(self) -> bytes:
            return self.seen.to_bytes(8, "little")

        def restore(self, blob: bytes) -> None:
            self.seen = int.from_bytes(blob, "little")

Tasks. The unit of state is a *task*: partition ``p`` of every ``keyed`` input (they must
have the same partition count: co-partitioned, same key) plus every partition of every
``global`` input. The runtime builds one processor object per task (``task`` = ``p``) and
gives it only that task's records, so a task can move between instances (a Kafka rebalance)
with its snapshot. A processor with only global inputs has one task, ``0``.

Merge order. Within a task the runtime hands records over in one deterministic order: a
k-way merge of the input partitions by ``(timestamp_ms, input rank, topic, partition)`` of
their next records; within one partition, always offset order. The *input rank* is the
position in :attr:`Processor.inputs` (a ``*`` pattern's topics share its rank). A
partition that may still hold earlier records holds the merge back (see
:mod:`streams.runtime.merge`), so on pre-published input the order does not depend on how
records were batched or polled.

As-of inputs. An input with ``scope="as_of"`` is a global input whose records only update what
the processor knows "as of now" (risk's quotes, marks and venue health) and never produce an
output. In until-idle runs, the lockstep schedule (the demo, so its digest) and replays they are
merged like any global input. A live run (``RunOptions.as_of="pinned"``, the default of a run that
is not until-idle) does not wait for them: the records read so far are applied at the start of
each transaction, merged among themselves, before the transaction's other inputs; records that
arrive during the transaction wait for the next one (a commit interval, a few ms on the order
path). So a late market-data feed never holds an order back, and a decision sees the market as it
had arrived. Each commit manifest names the inputs it applied first (``applied_first``), so
recovery and ``hftstream verify`` replay exactly what ran.

Inputs are read-only. A global input's record is decoded once per process and the same
:class:`Message` (its ``value`` dict included) goes to every task: build outputs in new dicts,
never change a message you were given.

Bad input. Raise :class:`Reject` (or any :class:`~streams.errors.PoisonError`) *before*
changing state: the runtime dead-letters the input with the reason and goes on. Any other
exception is a bug: the runtime stops without committing and names the record's lineage.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

from streams.errors import ConfigError, HftError, PoisonError

Scope = Literal["keyed", "global", "as_of"]


@dataclass(frozen=True, slots=True)
class Input:
    """One input of a processor.

    ``topic`` is a topic name or an ``fnmatch`` pattern (``"md.raw.*"``) resolved against
    the topics that exist when the processor starts. ``scope="keyed"``: the task owning
    partition ``p`` reads partition ``p``. ``scope="global"``: every task reads every
    partition (reference data, operator commands, market data used for reference prices).
    ``scope="as_of"``: a global input the processor only folds into "the latest value as of now"
    (marks, quotes, venue status) and that gives no output: a live run applies its records at the
    start of each transaction instead of merging them by time with the other inputs, so they never
    hold back the merge (see "As-of inputs" in the module docstring).
    """

    topic: str
    scope: Scope = "keyed"


class Message(NamedTuple):
    """A decoded input record as a processor sees it (never bytes)."""

    topic: str
    partition: int
    offset: int
    timestamp_ns: int
    key: bytes | None
    schema: str  # Avro full name of the value's schema, e.g. "hftstream.md.RawVenueMessage"
    value: dict[str, Any]


class Output(NamedTuple):
    """One record to write. ``key`` ``str`` is UTF-8 encoded; the partition is ``murmur2(key)``.

    ``timestamp_ns`` ``None`` means "the input's timestamp" (event time flows through).
    The runtime adds the lineage headers (the input's topic, partition and offset).
    """

    topic: str
    key: bytes | str | None
    schema: str
    value: dict[str, Any]
    timestamp_ns: int | None = None


class Reject(PoisonError):
    """Raised by a processor for an input it refuses: the runtime dead-letters it with this reason.

    ``reason_code`` is a stable machine-readable code (``UNKNOWN_SYMBOL``, ``OFF_TICK``...)
    that dashboards group by; the message is for people.
    """

    def __init__(self, reason_code: str, reason: str) -> None:
        super().__init__(reason)
        self.reason_code = reason_code


class ProcessorFailure(HftError):
    """A processor raised something other than :class:`Reject`: a bug. The runtime stops without committing."""

    hint = (
        "this is a bug in the processor, not bad input: nothing after the last commit was committed, so fix the code "
        "and run again (it resumes from the last commit); see RUNBOOK.md 'Processor crashed on a record'"
    )

    def __init__(self, processor: str, msg: Message, exc: BaseException) -> None:
        super().__init__(
            f"processor {processor!r} failed on {msg.topic}/{msg.partition}@{msg.offset} "
            f"({msg.schema}): {type(exc).__name__}: {exc}"
        )
        self.message = msg


# What process_batch returns per input: its outputs, or the reason it was rejected.
Result = list[Output] | PoisonError


class Processor:
    """Base class of every processor (see the module docstring). Subclasses set ``name``,
    ``inputs`` and ``outputs`` and implement :meth:`process`; stateful ones also
    :meth:`snapshot` and :meth:`restore`.
    """

    name: ClassVar[str]
    inputs: Sequence[Input]
    outputs: Sequence[str]
    # True when process() already returns a list: process_batch then skips the list() copy (hot path)
    returns_lists: ClassVar[bool] = False
    # outputs that others write too (operators' commands): `verify` does not count their records without lineage as foreign
    shared_outputs: ClassVar[tuple[str, ...]] = ()

    def process(self, msg: Message) -> Iterable[Output]:
        """Handle one input; return (or yield) its outputs. Raise :class:`Reject` to dead-letter it."""
        raise NotImplementedError

    def process_batch(self, msgs: Sequence[Message]) -> list[Result]:
        """Handle inputs in the given order; one :data:`Result` per input.

        Override only where batching pays; the default calls :meth:`process` per input.
        """
        out: list[Result] = []
        append, process, as_is = out.append, self.process, self.returns_lists
        for msg in msgs:
            try:
                append(process(msg) if as_is else list(process(msg)))  # type: ignore[arg-type]
            except PoisonError as exc:
                append(exc)
            except Exception as exc:
                raise ProcessorFailure(self.name, msg, exc) from exc
        return out

    def snapshot(self) -> bytes:
        """The state at this point, as bytes that :meth:`restore` accepts. Deterministic."""
        return b""

    def restore(self, blob: bytes) -> None:
        """Replace the state with a :meth:`snapshot` blob."""
        if blob:
            raise ValueError(f"{type(self).__name__} is stateless but was given a {len(blob)}-byte snapshot")

    def check_invariants(self) -> None:
        """Called by the runtime before every commit; raise to halt (e.g. the ledger's balance check)."""

    def states(self) -> dict[str, dict[str, str]]:
        """``{kind: {subject: state}}`` for the runtime's metrics, read after each commit (keep it cheap).

        Kinds the runtime publishes (:data:`streams.runtime.metrics.STATE_SETS`): ``trading``
        (scope -> ACTIVE / REDUCE_ONLY / HALTED / KILL_SWITCH) and ``recon`` (venue ->
        IN_SYNC / DIVERGED / HALTED). Default: none.
        """
        return {}


def dump_state(state: dict[str, Any]) -> bytes:
    """A snapshot as deterministic bytes: compact JSON with sorted keys (processors' usual ``snapshot()``)."""
    return json.dumps(state, sort_keys=True, separators=(",", ":")).encode()


def load_state(blob: bytes, processor: str, version: int) -> dict[str, Any]:
    """The state a :func:`dump_state` blob holds; refuses a snapshot written with another ``version``."""
    state = json.loads(blob)
    if state.get("version") != version:
        raise ConfigError(
            f"{processor} snapshot version {state.get('version')!r} is not {version}",
            hint="the snapshot was written by another hftstream version: restart the processor from its inputs' beginning",
        )
    return state

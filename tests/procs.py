"""Small processors for the runtime's tests (importable as ``procs``; subprocesses get ``PYTHONPATH=tests``).

``Counter`` is stateful on purpose: each output carries the running count of its symbol
within the task, so a lost, doubled or re-ordered input, or a state restored wrong, shows
up as a wrong number in the output bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from streams.processors.base import Input, Message, Output, Processor, Reject

RAW = "hftstream.md.RawVenueMessage"


class CounterConfig(BaseModel):
    """Topics and knobs of :class:`Counter`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: list[str]
    globals: list[str] = []
    as_of: list[str] = []  # global inputs of scope "as_of": counted, no output; keyed outputs say how many were seen
    output: str
    reject_seq: int | None = None
    fail_seq: int | None = None  # raise a plain exception (a processor bug) on this seq
    work_us: int = 0  # busy-wait per record, so crash tests have time to kill mid-run (outputs do not change)


class Counter(Processor):
    """Per symbol: count inputs and emit the input with ``seq`` = the running count and ``format`` = ``t<task>``.

    Global records are counted and emitted with ``format`` = ``g<task>`` (so a test can
    see that every task read every global record). ``seq == reject_seq`` is rejected.
    """

    name = "counter"
    config_class = CounterConfig

    def __init__(self, config: CounterConfig, task: int) -> None:
        self.config = config
        self.task = task
        self.inputs = (tuple(Input(t, "global") for t in config.globals) + tuple(Input(t, "as_of") for t in config.as_of)
                       + tuple(Input(t) for t in config.inputs))
        self.outputs = (config.output,)
        self.counts: dict[str, int] = {}
        self.globals_seen = 0
        self.as_of_seen = 0

    def process(self, msg: Message) -> Iterable[Output]:
        if self.config.work_us:
            _spin(self.config.work_us)
        value = msg.value
        if self.config.reject_seq is not None and value["seq"] == self.config.reject_seq:
            raise Reject("TEST_REJECT", f"seq {value['seq']} is rejected by configuration")
        if self.config.fail_seq is not None and value["seq"] == self.config.fail_seq:
            raise RuntimeError("deliberate bug")
        if msg.topic in self.config.as_of:
            self.as_of_seen += 1
            return []
        if msg.topic in self.config.globals:
            self.globals_seen += 1
            return [Output(self.config.output, value["symbol"], RAW, {**value, "seq": self.globals_seen, "format": f"g{self.task}"})]
        symbol = value["symbol"]
        n = self.counts[symbol] = self.counts.get(symbol, 0) + 1
        seen = f"a{self.as_of_seen}" if self.config.as_of else ""
        return [Output(self.config.output, symbol, RAW, {**value, "seq": n, "format": f"t{self.task}{seen}"})]

    def snapshot(self) -> bytes:
        state: dict[str, object] = {"counts": self.counts, "globals": self.globals_seen}
        if self.config.as_of:
            state["as_of"] = self.as_of_seen
        return json.dumps(state, sort_keys=True).encode()

    def restore(self, blob: bytes) -> None:
        state = json.loads(blob)
        self.counts = dict(state["counts"])
        self.globals_seen = state["globals"]
        self.as_of_seen = state.get("as_of", 0)


def _spin(us: int) -> None:
    import time

    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


def raw_value(i: int, symbol: str, payload: bytes = b"x") -> dict[str, object]:
    """A RawVenueMessage value for test input number ``i``."""
    return {"venue": "test", "format": "in", "seq": i, "recv_ts_ns": 1_700_000_000_000_000_000 + i, "symbol": symbol, "payload": payload}

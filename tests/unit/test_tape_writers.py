"""tape.record_appends names the writer of each topic (migration 0003); it must be the processor that declares it as an output."""

from __future__ import annotations

import ast
import re

from connectors.clickhouse.ddl import migrations_dir
from streams.runtime.lookup import default_config, registry


def _sql_writers() -> dict[str, str]:
    sql = (migrations_dir() / "0004_append_latency.sql").read_text()
    m = re.search(r"transform\(toString\(topic\),\s*(\[[^\]]*\]),\s*(\[[^\]]*\]), ''\)", sql)
    assert m, "the writer list of tape.record_appends moved: update this test"
    topics, processors = ast.literal_eval(m.group(1)), ast.literal_eval(m.group(2))
    assert len(topics) == len(processors) == len(set(topics))
    return dict(zip(topics, processors))


def test_every_output_topic_is_attributed_to_the_processor_that_writes_it():
    outputs = {}
    for name, cls in registry().items():
        for topic in cls(default_config(cls), 0).outputs:
            assert topic not in outputs, f"{topic} is written by {outputs[topic]} and {name}: one writer per topic"
            outputs[topic] = name
    assert _sql_writers() == outputs

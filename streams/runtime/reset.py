"""Start a processor over: forget its commits, its dead letters and its group's offsets.

Used by ``hftstream demo --reset`` and described in RUNBOOK.md 'Processor state lost or
damaged'. The processor must be stopped. Its outputs are the caller's to delete (other
processors may read them).
"""

from __future__ import annotations

from streams.errors import UnknownTopicError
from streams.log.base import Log
from streams.runtime.codec import dlq_topic
from streams.runtime.state import state_topic


def group_of(processor: str) -> str:
    """The consumer group a processor's instances share."""
    return f"hftstream.{processor}"


def reset_processor(log: Log, processor: str) -> list[str]:
    """Delete ``state.<processor>``, ``dlq.<processor>`` and the group's offsets; return what was removed."""
    removed = []
    for topic in (state_topic(processor), dlq_topic(processor)):
        try:
            log.delete_topic(topic)
            removed.append(topic)
        except UnknownTopicError:
            pass
    if log.delete_group(group_of(processor)):
        removed.append(f"group {group_of(processor)}")
    return removed

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


def global_group_of(processor: str) -> str:
    """The member-less group under which a processor's global input positions are published for Kafka's tools."""
    return f"hftstream.{processor}.global"


def reset_processor(log: Log, processor: str) -> list[str]:
    """Delete ``state.<processor>``, ``dlq.<processor>`` and the group's offsets; return what was removed."""
    removed = []
    for topic in (state_topic(processor), dlq_topic(processor)):
        try:
            log.delete_topic(topic)
            removed.append(topic)
        except UnknownTopicError:
            pass
    for group in (group_of(processor), global_group_of(processor)):
        try:
            if log.delete_group(group):
                removed.append(f"group {group}")
        except NotImplementedError:
            pass
    return removed

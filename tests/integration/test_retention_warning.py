"""Publishing records already older than a topic's retention warns (issue 5 #2), on both logs.

The retention comes from the log itself (Kafka: the broker's topic config), so the warning tells the
truth about what the log will delete, not what infra/topics.yaml says.
"""

from __future__ import annotations

import time

import pytest

from streams.log import Log, TopicSpec, open_log
from streams.topics import expired_on_publish, format_duration_ms

DAY_MS = 86_400_000


@pytest.fixture(params=["embedded", "kafka"])
def log(request, tmp_path):
    if request.param == "embedded":
        url = f"embedded://{tmp_path / 'log'}"
    else:
        url = "kafka://" + request.getfixturevalue("kafka_bootstrap")
    with open_log(url) as opened:
        yield opened


def test_warns_only_for_records_older_than_the_topics_retention(log: Log, unique_name):
    day, forever, compacted = unique_name("ret"), unique_name("ret"), unique_name("ret")
    log.create_topic(TopicSpec(day, partitions=1, retention_ms=DAY_MS))
    log.create_topic(TopicSpec(forever, partitions=1, retention_ms=None))
    log.create_topic(TopicSpec(compacted, partitions=1, retention_ms=DAY_MS, cleanup_policy="compact"))
    now = time.time_ns()
    two_days_ago = now - 2 * DAY_MS * 1_000_000
    warnings = expired_on_publish(log, {day: two_days_ago, forever: two_days_ago, compacted: two_days_ago}, "do X", now_ns=now)
    assert len(warnings) == 1
    (w,) = warnings
    assert w.startswith(f"{day}: records were published with timestamps older than the topic's retention (oldest ")
    assert "retention 1d keeps" in w and "To keep them: do X, or raise the retention of" in w
    assert ("Kafka deletes such records" in w) == log.url.startswith("kafka://")
    assert expired_on_publish(log, {day: now - DAY_MS * 1_000_000 + 10**9}, "do X", now_ns=now) == []
    assert expired_on_publish(log, {day: None}, "do X", now_ns=now) == []


def test_format_duration_ms_matches_the_topics_file_units():
    assert [format_duration_ms(v) for v in (604_800_000, 43_200_000, 90_000, 1_500, 0)] == ["7d", "12h", "90s", "1500ms", "0ms"]

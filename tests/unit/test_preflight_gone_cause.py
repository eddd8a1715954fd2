"""Why input records are gone, as `run` and `status` say it: `log repair`, retention, or unknown (issue 14, item 4)."""

from __future__ import annotations

from pathlib import Path

from streams.log.base import Loss, TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.log.embedded.partition import declare_holes, declare_truncation, hole_records, truncations
from streams.runtime.preflight import gone_cause

TP = ("t", 0)
COMMITTED = 1_000  # wall ns of the manifest that needs the records


class Marks:
    """A log seen through its watermarks and known losses (what gone_cause reads)."""

    def __init__(self, low: int, high: int, losses: list[Loss]) -> None:
        self.low, self.high, self._losses = low, high, losses

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        return self.low, self.high

    def losses(self, topic: str, partition: int) -> list[Loss]:
        return self._losses


def test_records_present_are_not_gone() -> None:
    assert gone_cause(Marks(0, 100, []), TP, 10, 20, COMMITTED) is None  # type: ignore[arg-type]


def test_retention_moved_the_start_past_the_range() -> None:
    cause = gone_cause(Marks(50, 100, []), TP, 10, 20, COMMITTED)  # type: ignore[arg-type]
    assert cause is not None and "retention" in cause and "starts at 50" in cause


def test_a_partition_ending_before_the_range_without_a_recorded_repair_is_unknown() -> None:
    cause = gone_cause(Marks(0, 5, []), TP, 10, 20, COMMITTED)  # type: ignore[arg-type]
    assert cause is not None and "cause unknown" in cause and "retention" not in cause


def test_a_truncation_made_after_the_commit_names_log_repair() -> None:
    losses = [Loss(8, 30, "dropped by `hftstream log repair` (it truncated the partition there)", COMMITTED + 1)]
    cause = gone_cause(Marks(0, 40, losses), TP, 10, 20, COMMITTED)  # type: ignore[arg-type]  # re-written past 20 since
    assert cause is not None and "log repair" in cause and "offsets 10..19" in cause


def test_a_hole_declared_before_the_commit_was_read_past_live_and_is_replayed_the_same_way() -> None:
    losses = [Loss(12, 15, "declared lost by `hftstream log repair`", COMMITTED - 1)]
    assert gone_cause(Marks(0, 100, losses), TP, 10, 20, COMMITTED) is None  # type: ignore[arg-type]
    undated = [Loss(12, 15, "declared lost by `hftstream log repair`", 0)]  # an older ~holes file: could be recent
    assert "log repair" in (gone_cause(Marks(0, 100, undated), TP, 10, 20, COMMITTED) or "")  # type: ignore[arg-type]


def test_the_embedded_log_reports_repairs_it_recorded_and_reads_older_holes_files(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    log.create_topic(TopicSpec("t"))
    directory = log.partition_dir("t", 0)
    (directory / "~holes").write_text('{"holes": [[3, 4]]}')  # written by an older version: no time
    assert hole_records(directory) == [(3, 4, 0)]
    declare_holes(directory, [(7, 9)], 555)
    declare_truncation(directory, 20, 30, 777)
    assert hole_records(directory) == [(3, 4, 0), (7, 9, 555)] and truncations(directory) == [(20, 30, 777)]
    losses = log.losses("t", 0)
    assert [(x.first, x.end, x.ts_ns) for x in losses] == [(3, 5, 0), (7, 10, 555), (20, 30, 777)]
    assert all("log repair" in x.cause for x in losses)

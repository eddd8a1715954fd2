"""The ClickHouse tape: every record of every topic, typed, queryable, traceable to its log offset.

:mod:`~connectors.clickhouse.client` opens the tape (chDB in ``DATA/tape`` or a server),
:mod:`~connectors.clickhouse.ddl` applies ``infra/clickhouse/migrations``,
:mod:`~connectors.clickhouse.tables` maps Avro records to table columns, and
:mod:`~connectors.clickhouse.sink` inserts them exactly once.
"""

from connectors.clickhouse.client import Tape, TapeLockedError, TapeUrl, open_tape, parse_tape_url, tape_url_for
from connectors.clickhouse.sink import SinkCounts, SinkOptions, TapeSink

__all__ = ["SinkCounts", "SinkOptions", "Tape", "TapeLockedError", "TapeSink", "TapeUrl", "open_tape", "parse_tape_url", "tape_url_for"]

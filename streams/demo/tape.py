"""The demo's tape step: sink every topic of the run into the tape (chDB in ``DATA/tape`` by default), exactly once.

It is the same :class:`~connectors.clickhouse.sink.TapeSink` as ``hftstream tape sink --until-idle``:
a rerun of the demo adds only what is not on the tape yet. When another process holds the
embedded tape, the demo says so and carries on (the pipeline's results do not depend on it).
"""

from __future__ import annotations

from typing import Any

from streams.errors import HftError

EXAMPLE_QUERY = (
    "SELECT symbol, count() AS fills, sum(quantity) AS qty FROM tape.fills GROUP BY symbol ORDER BY fills DESC LIMIT 5"
)


def sink_demo_tape(log: Any, serde: Any, tape_url: str) -> dict[str, Any]:
    """Initialise the tape at ``tape_url`` and sink every tape-able topic of ``log`` until idle; the figures, as plain data.

    Returns ``{"url", "records", "rows", "dead_letters", "already_present", "elapsed_s", "example_query"}``,
    or ``{"url", "error", "hint"}`` when the tape cannot be opened (held by another process, server down).
    """
    import time

    from connectors.clickhouse.client import open_tape, parse_tape_url
    from connectors.clickhouse.ddl import migrate
    from connectors.clickhouse.sink import SinkOptions, TapeSink

    display = parse_tape_url(tape_url).display
    t0 = time.monotonic()
    try:
        with open_tape(tape_url, create=True) as tape:
            migrate(tape.client)
            counts = TapeSink(log, serde, tape, SinkOptions(until_idle=True)).run()
    except HftError as exc:
        return {"url": display, "error": str(exc), "hint": exc.hint}
    return {
        "url": display,
        "records": counts.records,
        "rows": dict(sorted(counts.rows.items())),
        "dead_letters": counts.dead_letters,
        "already_present": counts.already_present,
        "elapsed_s": round(time.monotonic() - t0, 3),
        "example_query": EXAMPLE_QUERY,
    }


def reset_demo_tape(tape_url: str) -> str | None:
    """Empty every tape table (``--reset`` restarts the log at offset 0, so old rows would shadow new offsets).

    Returns ``None``, or why the tape could not be emptied (another process holds it).
    """
    from connectors.clickhouse.client import NoTapeError, open_tape
    from connectors.clickhouse.tables import TABLES

    try:
        with open_tape(tape_url) as tape:
            for table in [*TABLES, "sink_batches"]:
                tape.client.command(f"TRUNCATE TABLE IF EXISTS tape.{table}")
    except NoTapeError:
        return None  # no tape yet: nothing to empty
    except HftError as exc:
        return f"{exc} (hint: {exc.hint})"
    return None

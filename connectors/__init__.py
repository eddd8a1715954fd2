"""The edges of the pipeline: venue feed producers and (later) the ClickHouse tape sink."""

"""``hftstream demo``: the whole trading pipeline on one log, deterministic and crash-safe (see streams/cli/demo.py)."""

"""Process-level tuning for long-running processor processes (``hftstream run``, ``demo``).

CPython's cyclic garbage collector runs its young generation every 700 allocations; a
processor allocating a dict and a few tuples per record triggers it constantly, and each
pass walks every young object. Records form no reference cycles worth collecting that often,
so a processing process raises the threshold and freezes what start-up allocated (modules,
schemas, reference data) out of the collector's view. Measured on normalize: +15-45% msgs/s.
Library code never calls this: it changes the whole process.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


def tune_gc_for_streaming() -> None:
    """Freeze start-up objects and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)

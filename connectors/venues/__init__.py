"""Venue feed handlers: wire formats, the deterministic simulator, recorded-file replay.

* :mod:`.formats` / :mod:`.fix` -- per-venue wire formats (json-decimal, json-ticks, FIX 4.4): neutral
  :mod:`.events` <-> bytes, strict decoders raising :class:`.errors.VenueFormatError`;
* :mod:`.simulator` (with :mod:`.market`, :mod:`.universe`) -- a pure, seeded market simulation;
* :mod:`.publish` -- the simulation onto ``refdata.instruments`` and ``md.raw.<venue>``;
* :mod:`.file_feed` -- a recorded ndjson/csv feed onto ``md.raw.<venue>``.
"""

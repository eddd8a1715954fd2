"""The native core (Rust, PyO3) against its Python path and against fastavro, in the same process.

Rows per piece (records/s; subject = the public function with the native core, limit = the same function's
pure-Python path, called directly on the same data):

* segment parse: ``segment.parse_records`` vs ``segment.py_parse_records`` (frames with key, a Trade value and
  the three lineage headers, as the runtime writes them);
* framing: ``segment.encode_run`` vs ``segment.py_encode_run``;
* Avro decode / encode: ``Serde.decode``/``encode`` native vs the same serde with its native codecs removed
  (fastavro underneath), and native vs raw fastavro ``schemaless_reader``/``schemaless_writer`` (unframed);
* the batch encode: ``RuntimeCodec.encode_outputs`` (the hop's output loop in one native call) vs the Python loop of
  ``apply_records`` over the same batch (``lineage_headers`` + ``RuntimeCodec.encode``, native Avro in both);
* produce_built: ``EmbeddedProducer.produce_built`` with its native run (murmur2, buffers) vs its Python loop;
* the batch hop: ``runtime.runner.apply_batch`` (decode, a passthrough ``process_batch``, encode with lineage) with the
  native core vs the same with a pure-Python serde and codec (framing is the producer's, measured above);
* venue fast paths: ``Codec.decode_fields`` with the native fast path (``streams._native.*_fast``) vs the same codec with
  it switched off (the Python fast path, ``Codec._fast``), per format, on the same simulated well-formed payloads;
* the demo: ``hftstream demo`` with ``HFTSTREAM_NATIVE=1`` vs ``HFTSTREAM_NATIVE=0`` (orders/s).

Run alone: ``.venv/bin/python tests/benchmarks/run.py --only bench_native`` (``--quick`` for a smoke run).
Subject and limit alternate, best of N rounds. Needs the native core built (``hftstream --version``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from streams import native
from streams.log.embedded import segment
from streams.serde import SchemaRepo, Serde
from streams.serde.samples import sample

HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))
LINEAGE = (("hft.src.topic", b"md.normalized"), ("hft.src.partition", b"3"), ("hft.src.offset", b"1234567"))


def _rate(fn: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def _pair(name: str, subject: Callable[[], Any], limit: Callable[[], Any], n: int, rounds: int, labels: tuple[str, str]) -> dict:
    s_rates: list[float] = []
    l_rates: list[float] = []
    subject()
    limit()
    for i in range(rounds):
        order = ((subject, s_rates), (limit, l_rates)) if i % 2 == 0 else ((limit, l_rates), (subject, s_rates))
        for fn, rates in order:
            rates.append(_rate(fn, n))
    return {"name": name, "subject": labels[0], "subject_rate": max(s_rates), "limit": labels[1], "limit_rate": max(l_rates), "unit": "records/s"}


def _demo(flag: str, orders: int, data: str) -> tuple[float, str]:
    env = dict(os.environ, HFTSTREAM_NATIVE=flag)
    proc = subprocess.run(
        [HFTSTREAM, "--data", data, "demo", "--orders", str(orders), "--no-latency", "--no-verify", "--json"], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    report = json.loads(proc.stdout)
    return float(report["orders_per_s"]), report["digest"]


def _hop_row(nat: Serde, py: Serde, blobs: list[bytes], n: int, rounds: int) -> dict:
    from runtime_worker import PassConfig, Passthrough

    from streams.log.base import Record
    from streams.runtime.codec import RuntimeCodec
    from streams.runtime.metrics import RunCounts
    from streams.runtime.runner import apply_batch

    proc = Passthrough(PassConfig(source="md.normalized", sink="bench.out"), 0)
    records = [Record("md.normalized", 3, i, 1_700_000_000_000_000_000 + i, b"SYM%d" % (i % 50), b, LINEAGE) for i, b in enumerate(blobs)]
    fast, slow = RuntimeCodec(nat, proc.name), RuntimeCodec(py, proc.name)
    assert apply_batch(proc, fast, records, RunCounts()) == apply_batch(proc, slow, records, RunCounts())
    return _pair("native: batch hop, passthrough (decode, process_batch, encode, lineage)",
                 lambda: apply_batch(proc, fast, records, RunCounts()), lambda: apply_batch(proc, slow, records, RunCounts()), n, rounds,
                 ("apply_batch, native", "apply_batch, Python path"))


def _encode_row(nat: Serde, values: list[dict], blobs: list[bytes], name: str, n: int, rounds: int) -> dict:
    """The encode half of the hop alone: ``RuntimeCodec.encode_outputs`` (one native call for the batch) vs the Python
    loop of ``apply_records`` (``lineage_headers`` + ``RuntimeCodec.encode`` per output, native Avro underneath)."""
    from streams.lineage import lineage_headers
    from streams.log.base import Record
    from streams.processors.base import Output
    from streams.runtime.codec import RuntimeCodec

    codec = RuntimeCodec(nat, "bench")
    records = [Record("md.raw.v0", i % 4, i, 1_700_000_000_000_000_000 + i, b"SYM%d" % (i % 50), b, ()) for i, b in enumerate(blobs)]
    results = [[Output("md.normalized", "SYM%d" % (i % 50), name, v)] if i % 10 else [] for i, v in enumerate(values)]

    def loop() -> list:
        out: list = []
        for rec, res in zip(records, results):
            if res:
                lineage = lineage_headers(rec)
                for o in res:
                    out.append(codec.encode(o, rec, lineage))
        return out

    def native_loop() -> list:
        out: list = []
        codec.encode_outputs(records, results, 0, out)
        return out

    assert native_loop() == loop()
    return _pair(f"native: batch encode, the hop's output loop ({name}, str keys, lineage)",
                 native_loop, loop, n, rounds,
                 ("RuntimeCodec.encode_outputs, native", "Python loop: lineage_headers + RuntimeCodec.encode (native Avro)"))


def _queue_row(n: int, rounds: int) -> dict:
    """``EmbeddedProducer.produce_built`` (a transactional producer, as the runtime's): the native run (murmur2,
    per-partition buffers) vs the Python loop, on the runtime's Encoded tuples; nothing is written (abort)."""
    from streams.log.base import TopicSpec
    from streams.log.embedded import EmbeddedLog
    from streams.log.embedded import producer as producer_mod

    records = [("md.normalized", b"SYM%d" % (i % 50), b"v" * 60, 1_700_000_000_000_000_000 + i, LINEAGE) for i in range(n)]
    tmp = tempfile.mkdtemp(prefix="bench-queue-")
    log = EmbeddedLog(Path(tmp))
    log.create_topic(TopicSpec("md.normalized", 8))
    p = log.transactional_producer("bench")
    saved = producer_mod._native_queue

    def run(fast: bool) -> Callable[[], Any]:
        def go() -> None:
            producer_mod._native_queue = saved if fast else None
            p.begin()
            p.produce_built(records)
            p.abort()
        return go

    try:
        return _pair("native: produce_built, embedded (murmur2, per-partition buffers)", run(True), run(False), n, rounds,
                     ("produce_built, native run", "produce_built, Python loop"))
    finally:
        producer_mod._native_queue = saved
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _venue_row(fmt: str, venue: str, payloads: list[bytes], ref: Any, rounds: int) -> dict:
    from connectors.venues.formats import codec_for

    fast, slow = codec_for(venue, fmt), codec_for(venue, fmt)
    slow._native_fast = None  # type: ignore[misc]
    assert [fast.decode_fields(p, ref) for p in payloads] == [slow.decode_fields(p, ref) for p in payloads]
    return _pair(f"native: venue fast path ({fmt})", lambda: [fast.decode_fields(p, ref) for p in payloads],
                 lambda: [slow.decode_fields(p, ref) for p in payloads], len(payloads), rounds,
                 ("decode_fields, native fast path", "decode_fields, Python fast path"))


def _venue_rows(n: int, rounds: int) -> list[dict]:
    """One row per venue format: the native fast path vs the Python fast path on the simulator's messages."""
    from connectors.venues.instruments import RefData
    from connectors.venues.simulator import SimConfig, Simulation, instruments

    cfg = SimConfig(venues=3, symbols=8, events=3 * n, seed=7)
    feeds: dict[str, tuple[str, list[bytes]]] = {}
    for rec in Simulation(cfg).records():
        feeds.setdefault(rec.value["format"], (rec.value["venue"], []))[1].append(rec.value["payload"])
    ref = RefData(instruments(cfg))
    return [_venue_row(fmt, venue, payloads, ref, rounds) for fmt, (venue, payloads) in sorted(feeds.items())]


def run(quick: bool = False, demo: bool = True) -> list[dict]:
    """Rows for parse, framing, decode and encode (native vs Python path, native vs fastavro) and the demo."""
    if not native.active():
        return [{"name": "native core", "subject": native.status(), "subject_rate": 0.0, "limit": "—", "limit_rate": None, "unit": "records/s"}]
    n = 5_000 if quick else 20_000
    rounds = 3 if quick else 7
    repo = SchemaRepo.load()
    nat = Serde(repo)
    py = Serde(repo)
    py._native_enc.clear()
    py._native_dec.clear()
    rows: list[dict] = []
    name = "hftstream.md.Trade"
    parsed = repo.current(name).parsed
    values = [sample(repo.current(name).schema, i) for i in range(n)]
    blobs = [nat.encode(name, v) for v in values]
    batch = [(b"SYM%d" % (i % 50), b, 1_700_000_000_000_000_000 + i, LINEAGE) for i, b in enumerate(blobs)]
    seg = segment.py_encode_run(batch, 0, 0, 0, 1 << 40, 4096, 0, segment.MIN_TS).data

    def parse(fn: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: fn(seg, 0, len(seg), "md.normalized", 3, 0, n, [])

    def frame(fn: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: fn(batch, 0, 0, 0, 1 << 40, 4096, 0, segment.MIN_TS)

    rows.append(_pair("native: segment parse (CRC, 3 lineage headers, Record)", parse(segment.parse_records), parse(segment.py_parse_records), n, rounds,
                      ("parse_records, native", "py_parse_records")))
    rows.append(_pair("native: framing + CRC on write", frame(segment.encode_run), frame(segment.py_encode_run), n, rounds,
                      ("encode_run, native", "py_encode_run")))
    rows.append(_pair(f"native: Avro decode ({name})", lambda: [nat.decode(b) for b in blobs], lambda: [py.decode(b) for b in blobs], n, rounds,
                      ("Serde.decode, native", "Serde.decode, fastavro path")))
    rows.append(_pair(f"native: Avro encode ({name})", lambda: [nat.encode(name, v) for v in values], lambda: [py.encode(name, v) for v in values], n, rounds,
                      ("Serde.encode, native", "Serde.encode, fastavro path")))
    bodies = [b[10:] for b in blobs]

    def raw_decode() -> list:  # keeps its results, as the subject does (retained dicts cost GC time)
        return [schemaless_reader(BytesIO(b), parsed) for b in bodies]

    def raw_encode() -> list:
        out = []
        for v in values:
            bio = BytesIO()
            schemaless_writer(bio, parsed, v)
            out.append(bio.getvalue())
        return out

    rows.append(_pair(f"native: Avro decode vs raw fastavro ({name})", lambda: [nat.decode(b) for b in blobs], raw_decode, n, rounds,
                      ("Serde.decode, native (framed)", "fastavro schemaless_reader (unframed)")))
    rows.append(_pair(f"native: Avro encode vs raw fastavro ({name})", lambda: [nat.encode(name, v) for v in values], raw_encode, n, rounds,
                      ("Serde.encode, native (framed)", "fastavro schemaless_writer (unframed)")))
    rows.append(_hop_row(nat, py, blobs, n, rounds))
    rows.append(_encode_row(nat, values, blobs, name, n, rounds))
    rows.append(_queue_row(n, rounds))
    rows += _venue_rows(n, rounds)
    if demo:
        orders = 4_000 if quick else 20_000
        with tempfile.TemporaryDirectory(prefix="bench-native-") as tmp:
            fast, d1 = _demo("1", orders, f"{tmp}/native")
            slow, d0 = _demo("0", orders, f"{tmp}/python")
        rows.append({
            "name": "native: hftstream demo, embedded, unpaced", "subject": f"HFTSTREAM_NATIVE=1, {orders:,} orders", "subject_rate": fast,
            "limit": "HFTSTREAM_NATIVE=0", "limit_rate": slow, "unit": "orders/s",
            "note": f"digest {'identical' if d1 == d0 else 'DIFFERENT'} on both paths ({d1[:12]}...)",
        })
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv, demo="--no-demo" not in sys.argv):
        ratio = row["subject_rate"] / row["limit_rate"] if row.get("limit_rate") else 0.0
        print(f"{row['name']}: {row['subject_rate']:,.0f} vs {row.get('limit_rate') or 0:,.0f} {row['unit']} = {ratio:.2f}x  {row.get('note', '')}")

"""Serde throughput against raw fastavro on the same records (records/s).

Subject: ``Serde.encode`` / ``Serde.decode`` (single-object framing, the default) and the
batch calls. Limit: fastavro's ``schemaless_writer`` / ``schemaless_reader`` on the same
parsed schema and the same records, unframed (what the serde adds is the framing, the
schema lookup, the int guard on money fields and the trailing-bytes check). The batch rows
compare against a raw loop that also keeps its results in a list (retaining 20k decoded
dicts costs garbage-collector time that a discard-each-result loop never pays).
Subject and limit run interleaved, best of N rounds, in the same process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from streams.serde import SchemaRepo, Serde
from streams.serde.samples import sample

TARGET = 0.8
RECORDS = ("hftstream.md.Trade", "hftstream.md.Quote")


def _best_rate(fn: Callable[[], Any], n: int, best: list[float]) -> None:
    t0 = time.perf_counter()
    fn()
    best.append(n / (time.perf_counter() - t0))


def _pair(name: str, subject: Callable[[], Any], limit: Callable[[], Any], n: int, rounds: int, subject_label: str, limit_label: str) -> dict:
    s_rates: list[float] = []
    l_rates: list[float] = []
    subject()  # warm-up
    limit()
    for i in range(rounds):
        # alternate which goes first so neither always gets the warmer cache
        first, second = ((subject, s_rates), (limit, l_rates)) if i % 2 == 0 else ((limit, l_rates), (subject, s_rates))
        _best_rate(first[0], n, first[1])
        _best_rate(second[0], n, second[1])
    return {
        "name": name,
        "subject": subject_label,
        "subject_rate": max(s_rates),
        "limit": limit_label,
        "limit_rate": max(l_rates),
        "unit": "records/s",
        "target": TARGET,
    }


def run(quick: bool = False) -> list[dict]:
    """Encode and decode rates of the serde vs raw fastavro, for Trade and Quote records."""
    n = 5_000 if quick else 20_000
    rounds = 3 if quick else 7
    serde = Serde(SchemaRepo.load())
    rows: list[dict] = []
    for name in RECORDS:
        short = name.rpartition(".")[2]
        cur = serde.repo.current(name)
        parsed = cur.parsed
        values = [sample(cur.schema, seed) for seed in range(n)]
        framed = serde.encode_many(name, values)
        bodies = []
        for v in values:
            b = BytesIO()
            schemaless_writer(b, parsed, v)
            bodies.append(b.getvalue())
        assert [f[10:] for f in framed] == bodies  # same records, same bytes

        def enc_subject(values: list = values, name: str = name) -> None:
            encode = serde.encode
            for v in values:
                encode(name, v)

        def enc_limit(values: list = values, parsed: dict = parsed) -> None:
            for v in values:
                b = BytesIO()
                schemaless_writer(b, parsed, v)
                b.getvalue()

        def dec_subject(framed: list = framed) -> None:
            decode = serde.decode
            for d in framed:
                decode(d)

        def dec_limit(bodies: list = bodies, parsed: dict = parsed) -> None:
            for d in bodies:
                schemaless_reader(BytesIO(d), parsed)

        def enc_batch_limit(values: list = values, parsed: dict = parsed) -> list[bytes]:
            out = []
            for v in values:
                b = BytesIO()
                schemaless_writer(b, parsed, v)
                out.append(b.getvalue())
            return out

        def dec_batch_limit(bodies: list = bodies, parsed: dict = parsed) -> list[dict]:
            return [schemaless_reader(BytesIO(d), parsed) for d in bodies]

        def enc_batch(values: list = values, name: str = name) -> None:
            serde.encode_many(name, values)

        def dec_batch(framed: list = framed) -> None:
            serde.decode_many(framed)

        rows.append(_pair(f"encode {short}", enc_subject, enc_limit, n, rounds, "Serde.encode", "fastavro schemaless_writer"))
        rows.append(_pair(f"decode {short}", dec_subject, dec_limit, n, rounds, "Serde.decode", "fastavro schemaless_reader"))
        rows.append(_pair(f"encode_many {short}", enc_batch, enc_batch_limit, n, rounds, "Serde.encode_many", "fastavro schemaless_writer into a list"))
        rows.append(_pair(f"decode_many {short}", dec_batch, dec_batch_limit, n, rounds, "Serde.decode_many", "fastavro schemaless_reader into a list"))
    return rows


if __name__ == "__main__":
    import sys

    t0 = time.monotonic()
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['name']:<20} {r['subject_rate']:>10,.0f} vs {r['limit_rate']:>10,.0f} {r['unit']}  ratio {r['subject_rate'] / r['limit_rate']:.2f}")
    print(f"{time.monotonic() - t0:.1f} s")

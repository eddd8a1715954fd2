"""Every command's bad input, through the real console script: `error: ...`, a `hint: ...`, exit 2, no traceback.

README promises a hint on every error. This walks each command (the list is checked against the CLI's
command tree, so a new command without cases fails here) with the inputs users get wrong: bad option
values, missing arguments, unknown names, files that are not what they should be. Running the installed
`hftstream` script in a subprocess means nothing (not even CliRunner) can hide a traceback or click's
boxed usage message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from streams.cli.main import app
from streams.log import TopicSpec, open_log
from streams.serde import SchemaRepo, Serde

HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))
T0 = 1_767_364_200_000_000_000
TOPIC = "md.test"

# command path -> list of (bad arguments, a phrase the error must contain). {root} is a scratch folder.
CASES: dict[str, list[tuple[list[str], str]]] = {
    "": [
        (["nosuch"], "no such command"),
        (["--log", "ftp://x", "topics", "list"], "unknown log scheme"),
        (["--data"], "requires an argument"),
    ],
    "replay": [
        ([], "missing option '--topic'"),
        (["-t", TOPIC, "--from-offset", "-1"], "--from-offset"),
        (["-t", TOPIC, "--to-offset", "-5"], "--to-offset"),
        (["-t", TOPIC, "--partition", "-1"], "--partition"),
        (["-t", TOPIC, "--from-offset", "9", "--to-offset", "2"], "before --from-offset"),
        (["-t", TOPIC, "--filter", "symbol"], "FIELD=VALUE"),
        (["-t", TOPIC, "--filter", "nosuchfield=1"], "nosuchfield"),
        (["-t", TOPIC, "--format", "xml"], "xml"),
        (["-t", TOPIC, "--speed", "fast"], "--speed"),
        (["-t", TOPIC, "--speed", "0x"], "--speed"),
        (["-t", TOPIC, "--from-time", "yesterday"], "ISO-8601"),
        (["-t", "no.such.topic"], "unknown topic"),
        (["-t", TOPIC, "-p", "9"], "partition 9 does not exist"),
        (["-t", TOPIC, "--into", TOPIC], "is the topic being replayed"),
        (["-t", TOPIC, "--into", "orders.in", "--keep-partition"], "same partition count"),
        (["-t", TOPIC, "--into", "orders.in"], "does not declare"),
        (["-t", TOPIC, "--bogus"], "no such option"),
    ],
    "demo": [
        (["--events", "many"], "--events"),
        (["--venues", "0"], "venues"),
        (["--regime", "sideways"], "sideways"),
    ],
    "topics apply": [
        (["--file", "{root}/missing.yaml"], "not found"),
        (["--file", "{root}/garbage.yaml"], "not valid YAML"),
        (["--file", "{root}/bad-partitions.yaml"], "partitions"),
    ],
    "topics list": [(["--bogus"], "no such option")],
    "topics describe": [([], "missing argument"), (["nope"], "unknown topic")],
    "topics delete": [([], "missing argument"), (["nope", "--yes"], "unknown topic")],
    "feed simulate": [
        (["--venues", "0"], "--venues"),
        (["--regime", "sideways"], "sideways"),
        (["--start", "yesterday"], "--start"),
        (["--gap-rate", "2"], "--gap-rate"),
    ],
    "feed file": [
        ([], "missing argument"),
        (["{root}/missing.ndjson", "--venue", "alpha"], "missing.ndjson"),
        (["{root}/feed.ndjson"], "missing option '--venue'"),
        (["{root}/feed.ndjson", "--venue", "alpha", "--format", "xml"], "xml"),
    ],
    "refdata load": [
        ([], "missing argument"),
        (["{root}/missing.yaml"], "missing.yaml does not exist"),
        (["{root}/garbage.yaml"], "not valid YAML"),
        (["{root}/bad-partitions.yaml"], "must hold a list of instruments"),
        (["{root}/feed.ndjson", "--effective", "soon"], "--effective"),
    ],
    "refdata list": [(["--symbol", "NOPE"], "no instrument NOPE"), (["--bogus"], "no such option")],
    "orders simulate": [
        (["--accounts", "1"], "--accounts"),
        (["--regime", "sideways"], "sideways"),
        (["--start", "yesterday"], "--start"),
        (["--span", "soon"], "--span"),
        (["--span", "10ms"], "warm-up"),
        (["--rate", "0"], "--rate"),
        (["--probe-rate", "2"], "--probe-rate"),
    ],
    "schemas list": [(["--schemas-dir", "{root}/no-schemas"], "no-schemas")],
    "schemas show": [([], "missing argument"), (["hftstream.md.Nope"], "unknown schema"), (["hftstream.md.Trade", "--version", "99"], "v99")],
    "schemas check": [(["--schemas-dir", "{root}/no-schemas"], "no-schemas")],
    "schemas release": [(["hftstream.md.Nope", "--schemas-dir", "{root}/schemas-copy"], "unknown schema")],
    "log check": [(["--topic", "nope"], "unknown topic"), (["--log", "kafka://127.0.0.1:1"], "embedded log only")],
    "log repair": [([], "missing argument"), ([TOPIC, "x"], "partition"), ([TOPIC, "7", "--yes"], "partition 7 does not exist")],
    "log compact": [(["nope"], "unknown topic")],
    "log retain": [(["nope"], "unknown topic")],
    "dev kafka": [(["--port", "http"], "--port")],
    "dev kafka-stop": [(["--bogus"], "no such option")],
    "run": [([], "missing argument"), (["nosuch"], "unknown processor"), (["normalize", "--batch", "0"], "--batch")],
    "status": [(["nosuch"], "unknown processor"), (["--bogus"], "no such option")],
    "verify": [([], "missing argument"), (["normalize", "--since", "yesterday"], "--since"), (["normalize", "--from-offset", "-1"], "--from-offset")],
    "ops halt": [(["--scope", "planet:x"], "bad --scope")],
    "ops resume": [(["--scope", "account:"], "bad --scope")],
    "ops reduce-only": [(["--scope", "symbol:"], "bad --scope")],
    "ops kill": [(["--scope", "nowhere"], "bad --scope")],
    "ops cancel-all": [(["--bogus"], "no such option")],
    "ops set-limit": [([], "missing argument"), (["NOPE", "5"], "unknown limit"), (["max-order-qty", "-5"], "a limit is >= 0"),
                      (["max-order-qty", "5"], "names no instrument")],
    "ops state": [(["--config", "/nonexistent/risk.yaml"], "cannot read the risk config")],
    "tape init": [(["--clickhouse", "ftp://x"], "unknown tape URL scheme"), (["--clickhouse", "http://h:port"], "bad port"),
                  (["--data", "{root}/file-tape"], "is a file, not a tape directory")],
    "tape sink": [(["--topics", "no.such.topic"], "unknown topic"), (["--batch", "0"], "--batch"), (["--from-offset", "-1"], "--from-offset")],
    "tape report": [(["--from", "yesterday"], "not an ISO-8601 time"), (["--from", "2026-01-02", "--to", "2026-01-01"], "not before --to"),
                    (["--out", "{root}/no/such/dir/r.html"], "does not exist"), ([], "tape init"), ([], "there is no tape")],
    "tape bars": [([], "missing option '--symbol'"), (["--symbol", "AAPL", "--interval", "5m"], "unknown interval"),
                  (["--symbol", "AAPL"], "tape init"), (["--symbol", "AAPL", "--from", "yesterday"], "not a time"),
                  (["--symbol", "AAPL", "--source", "dark"], "--source"),
                  (["--symbol", "AAPL", "--from", "2026-01-02", "--to", "2026-01-01"], "not before --to")],
    "tape trace": [(["--topic", "orders.in", "--partition", "0"], "missing option '--offset'"),
                   (["--topic", "orders.in", "--partition", "0", "--offset", "5"], "tape init"),
                   (["--topic", "orders.in", "--partition", "-1", "--offset", "5"], "--partition")],
    "dashboards check": [(["--dir", "{root}/no/such/dir"], "does not exist"), ([], "tape init"),
                         (["--from", "yesterday"], "not a timestamp")],
    "tape query": [([], "missing argument"), (["SELECT 1"], "there is no tape"), (["SELECT 1", "--format", "xml"], "xml"), ([" "], "empty")],
}


def _leaf_commands() -> list[str]:
    def walk(cmd, path):  # type: ignore[no-untyped-def]
        subs = getattr(cmd, "commands", None)
        if not subs:
            return [" ".join(path)]
        return [leaf for name, sub in subs.items() for leaf in walk(sub, [*path, name])]

    return sorted(walk(typer.main.get_command(app), []))


def test_every_command_has_bad_input_cases():
    assert sorted(c for c in CASES if c) == _leaf_commands()


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A scratch folder: an embedded log with a 3-partition Trade topic, broken topic files, a feed file."""
    root = tmp_path_factory.mktemp("bad-input")
    serde = Serde(SchemaRepo.load())
    with open_log(f"embedded://{root / 'log'}") as log:
        log.create_topic(TopicSpec(TOPIC, partitions=3, key="symbol", value_schema="hftstream.md.Trade"))
        log.create_topic(TopicSpec("orders.in", partitions=8, key="account", value_schema="hftstream.orders.NewOrder"))
        with log.producer() as p:
            for i in range(12):
                trade = {
                    "venue": "alpha", "symbol": ["AAPL", "MSFT", "NVDA"][i % 3], "trade_id": f"T{i}", "price": 100 + i,
                    "size": 1, "aggressor_side": "BUY", "exchange_ts_ns": T0 + i, "recv_ts_ns": T0 + i, "seq": i,
                }
                p.produce(TOPIC, serde.encode("hftstream.md.Trade", trade), trade["symbol"].encode(), timestamp_ns=T0 + i)
    (root / "garbage.yaml").write_text("topics: [\n  - name: x\n   partitions: {{{\n")
    (root / "bad-partitions.yaml").write_text("topics:\n  - name: x.y\n    partitions: -3\n")
    (root / "file-tape").mkdir()
    (root / "file-tape" / "tape").touch()  # a file where the tape directory should be
    (root / "feed.ndjson").write_text('{"type":"heartbeat","ts":"2026-01-02T14:30:00Z"}\n')
    import shutil

    from streams.config import data_dir

    shutil.copytree(data_dir("schemas"), root / "schemas-copy")
    return root


def _cases() -> list:  # type: ignore[type-arg]
    return [
        pytest.param(command, args, needle, id=f"{command or 'hftstream'}: {' '.join(args) or '(none)'}")
        for command, cases in CASES.items()
        for args, needle in cases
    ]


@pytest.mark.parametrize(("command", "args", "needle"), _cases())
def test_bad_input_gives_error_and_hint(root, command, args, needle):
    argv = [*command.split(), *(a.replace("{root}", str(root)) for a in args)]
    proc = subprocess.run(
        [HFTSTREAM, "--log", f"embedded://{root / 'log'}", *argv], capture_output=True, text=True, timeout=60, cwd=root,
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert "╭" not in out and "Usage:" not in out, out  # no click usage box
    assert proc.returncode == 2, out
    assert proc.stderr.startswith("error: "), out
    hint = [line for line in proc.stderr.splitlines() if line.startswith("hint: ")]
    assert hint and len(hint[0]) > len("hint: ") + 10, out
    assert needle.lower() in proc.stderr.lower(), out

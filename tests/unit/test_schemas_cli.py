"""``hftstream schemas``: list, show, check and release, through the real root app on real schema folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.config import data_dir
from streams.serde import SchemaRepo

SCHEMAS = data_dir("schemas")
REPO = SchemaRepo.load(SCHEMAS)
runner = CliRunner()


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    """A private copy of schemas/ (current files and releases) to change."""
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    return root


def edit(root: Path, rel: str, change) -> None:  # type: ignore[no-untyped-def]
    path = root / rel
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2))


def field(schema: dict, name: str) -> dict:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_list_shows_every_schema_with_version_and_fingerprint() -> None:
    result = runner.invoke(app, ["schemas", "list", "--schemas-dir", str(SCHEMAS)])
    assert result.exit_code == 0, result.output
    for name in REPO.names():
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        assert line.split() == [name, f"v{REPO.releases(name)[-1].version}", REPO.current(name).fingerprint_hex]
    rows = json.loads(runner.invoke(app, ["schemas", "list", "--json", "--schemas-dir", str(SCHEMAS)]).stdout)
    assert [r["name"] for r in rows] == REPO.names()


def test_show_prints_the_self_contained_schema() -> None:
    result = runner.invoke(app, ["schemas", "show", "hftstream.fills.Fill"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == REPO.schema("hftstream.fills.Fill")
    canonical = runner.invoke(app, ["schemas", "show", "hftstream.fills.Fill", "--canonical"]).stdout.strip()
    assert canonical == REPO.current("hftstream.fills.Fill").canonical
    v1 = runner.invoke(app, ["schemas", "show", "hftstream.fills.Fill", "--version", "1"])
    assert json.loads(v1.stdout) == REPO.releases("hftstream.fills.Fill")[0].schema


def test_show_unknown_name_or_version_is_a_clean_error() -> None:
    result = runner.invoke(app, ["schemas", "show", "hftstream.md.Nope"])
    assert result.exit_code == 2
    assert "error: unknown schema 'hftstream.md.Nope'" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["schemas", "show", "hftstream.md.Trade", "--version", "9"])
    assert result.exit_code == 2 and "no released version v9" in result.stderr


def test_check_passes_on_the_repository_schemas() -> None:
    result = runner.invoke(app, ["schemas", "check"])
    assert result.exit_code == 0, result.output
    n = len(REPO.names())
    assert result.stdout.strip() == f"ok: {n} schemas: {n} unchanged, 0 compatible change(s), 0 new, 0 breaking"


def test_check_fails_listing_every_break(schemas: Path) -> None:
    edit(schemas, "hftstream/md/Trade.avsc", lambda s: field(s, "price").update(type="string"))
    edit(schemas, "hftstream/fills/Fill.avsc", lambda s: s["fields"].append({"name": "fee", "type": "long"}))
    edit(schemas, "hftstream/common/Liquidity.avsc", lambda s: s.update(symbols=["MAKER"]))  # shared: breaks Fill too
    result = runner.invoke(app, ["schemas", "check", "--schemas-dir", str(schemas)])
    assert result.exit_code == 1, result.output
    breaks = [line for line in result.stdout.splitlines() if line.startswith("BREAKING")]
    assert breaks == [
        "BREAKING hftstream.fills.Fill (released v1): (vs v1) hftstream.fills.Fill.liquidity: "
        "enum Liquidity lost symbol(s) TAKER and has no default symbol",
        "BREAKING hftstream.fills.Fill (released v1): (vs v1) hftstream.fills.Fill.fee: added without a default (old records have no value for it)",
        "BREAKING hftstream.md.Trade (released v1): (vs v1) hftstream.md.Trade.price: type changed from long to string (not an Avro promotion)",
    ]
    assert "error: 2 schema(s) break backward compatibility (3 problem(s))" in result.stderr
    assert "hint:" in result.stderr


def test_check_reads_HFTSTREAM_SCHEMAS_DIR(schemas: Path) -> None:
    edit(schemas, "hftstream/md/Quote.avsc", lambda s: s["fields"].remove(field(s, "bid_size")) or field(s, "ask_size").update(type="int"))
    result = runner.invoke(app, ["schemas", "check"], env={"HFTSTREAM_SCHEMAS_DIR": str(schemas)})
    assert result.exit_code == 1, result.output
    assert "hftstream.md.Quote.ask_size: type changed from long to int" in result.stdout
    assert "bid_size" not in result.stdout  # removing a field is compatible


def test_release_refuses_a_breaking_change_and_writes_nothing(schemas: Path) -> None:
    edit(schemas, "hftstream/md/Trade.avsc", lambda s: field(s, "size").update(type="int"))
    edit(schemas, "hftstream/md/Quote.avsc", lambda s: s["fields"].append({"name": "n", "type": "long", "default": 0}))
    result = runner.invoke(app, ["schemas", "release", "--schemas-dir", str(schemas)])
    assert result.exit_code == 2, result.output
    assert "refusing to release" in result.stderr and "hftstream.md.Trade.size" in result.stderr
    assert sorted(p.name for p in (schemas / "releases" / "hftstream.md.Quote").iterdir()) == ["v1.avsc"]


def test_release_freezes_a_compatible_change_as_the_next_version(schemas: Path) -> None:
    edit(schemas, "hftstream/md/Quote.avsc", lambda s: s["fields"].append(
        {"name": "quote_condition", "type": ["null", "string"], "default": None, "doc": "Venue quote condition."}))
    check = runner.invoke(app, ["schemas", "check", "--schemas-dir", str(schemas)])
    assert check.exit_code == 0 and "1 compatible change(s)" in check.stdout
    listed = runner.invoke(app, ["schemas", "list", "--schemas-dir", str(schemas)]).stdout
    assert "hftstream.md.Quote" in listed and " v2* " in listed

    result = runner.invoke(app, ["schemas", "release", "hftstream.md.Quote", "--schemas-dir", str(schemas)])
    assert result.exit_code == 0, result.output
    v2 = schemas / "releases" / "hftstream.md.Quote" / "v2.avsc"
    assert result.stdout.strip() == f"released hftstream.md.Quote v2 -> {v2}"
    repo = SchemaRepo.load(schemas)
    assert json.loads(v2.read_text()) == repo.schema("hftstream.md.Quote")
    assert repo.current("hftstream.md.Quote").version == 2
    again = runner.invoke(app, ["schemas", "release", "--schemas-dir", str(schemas)])
    assert again.exit_code == 0 and again.stdout == "" and "0 released" in again.stderr


def test_release_of_a_new_schema_and_of_an_unknown_name(schemas: Path) -> None:
    (schemas / "hftstream" / "md" / "Imbalance.avsc").write_text(json.dumps({
        "type": "record", "name": "Imbalance", "namespace": "hftstream.md", "doc": "Auction imbalance.",
        "fields": [{"name": "symbol", "type": "string"}, {"name": "side", "type": "hftstream.common.Side"}]}))
    check = runner.invoke(app, ["schemas", "check", "--schemas-dir", str(schemas)])
    assert check.exit_code == 0 and "1 new" in check.stdout
    result = runner.invoke(app, ["schemas", "release", "hftstream.md.Imbalance", "--schemas-dir", str(schemas)])
    assert result.exit_code == 0, result.output
    assert (schemas / "releases" / "hftstream.md.Imbalance" / "v1.avsc").is_file()
    bad = runner.invoke(app, ["schemas", "release", "hftstream.md.Nope", "--schemas-dir", str(schemas)])
    assert bad.exit_code == 2 and "unknown schema 'hftstream.md.Nope'" in bad.stderr


# -- schemas that infra/topics.yaml declares (issue 5, item 7) ------------------------------------

TOPICS = data_dir("infra") / "topics.yaml"


@pytest.fixture
def topics_file(tmp_path: Path) -> Path:
    """A private copy of infra/topics.yaml to change."""
    path = tmp_path / "topics.yaml"
    shutil.copy(TOPICS, path)
    return path


def check(schemas: Path, topics_file: Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["schemas", "check", "--schemas-dir", str(schemas), "--topics-file", str(topics_file)])


def test_check_passes_with_the_repository_topics_file(schemas: Path, topics_file: Path) -> None:
    result = check(schemas, topics_file)
    assert result.exit_code == 0, result.output


def test_check_fails_when_a_released_schema_a_topic_declares_is_removed(schemas: Path, topics_file: Path) -> None:
    (schemas / "hftstream" / "refdata" / "Instrument.avsc").unlink()
    result = check(schemas, topics_file)
    assert result.exit_code == 1, result.output
    assert (
        "MISSING hftstream.refdata.Instrument (released v1) is gone from the schemas folder (removed or renamed), "
        f"but topic refdata.instruments declares it ({topics_file})"
    ) in result.stdout.splitlines()
    assert "error: 1 schema(s) declared by topics are missing" in result.stderr and "hint: restore" in result.stderr


def test_check_fails_when_a_declared_schema_is_renamed_or_unknown(schemas: Path, topics_file: Path) -> None:
    old = schemas / "hftstream" / "md" / "Heartbeat.avsc"
    doc = json.loads(old.read_text())
    doc["name"] = "Keepalive"
    (schemas / "hftstream" / "md" / "Keepalive.avsc").write_text(json.dumps(doc))
    old.unlink()
    topics_file.write_text(topics_file.read_text().replace("value_schema: hftstream.dlq.DeadLetter", "value_schema: hftstream.dlq.DeadLettr"))
    result = check(schemas, topics_file)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    # md.normalized declares Heartbeat among five; the dlq.{processor} template (and each dlq.* it expands to) the typo
    assert any(line.startswith("MISSING hftstream.md.Heartbeat (released v1)") and "topic md.normalized declares it" in line for line in lines)
    assert any(line.startswith("MISSING hftstream.dlq.DeadLettr is not a schema") and "topic dlq.{processor}" in line for line in lines)
    assert any("topic dlq.normalize declares it" in line for line in lines)


def test_check_fails_on_a_namespace_change_even_when_the_topics_follow(schemas: Path, topics_file: Path) -> None:
    edit(schemas, "hftstream/refdata/Instrument.avsc", lambda s: s.update(namespace="hftstream.reference"))
    topics_file.write_text(topics_file.read_text().replace("hftstream.refdata.Instrument", "hftstream.reference.Instrument"))
    result = check(schemas, topics_file)
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        "BREAKING hftstream.refdata.Instrument (released v1): namespace changed to hftstream.reference.Instrument; "
        "records written as hftstream.refdata.Instrument cannot be read as hftstream.reference.Instrument"
    ]
    assert "1 released schema(s) changed namespace" in result.stderr

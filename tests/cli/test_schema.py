"""`netspec schema`, and docs/netspec.schema.json, the file specs' modelines name, kept current."""

import json

from netspec.cli.schema import text
from netspec.export.schema import schema
from tests.cli.helpers import ROOT, call

COMMITTED = ROOT / "docs" / "netspec.schema.json"


def test_prints_the_schema(capsys):
    code, out, _ = call(capsys, "schema")
    assert code == 0 and json.loads(out) == schema() and out.isascii()


def test_writes_a_file(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert call(capsys, "schema", "-o", out) == (0, f"wrote {out}\n", "")
    assert out.read_text() == text()


def test_the_committed_schema_is_current():
    assert COMMITTED.read_text() == text(), "run `make docs` (netspec schema -o docs/netspec.schema.json)"


def test_modelines_in_specs_name_the_committed_schema():
    """Where a shipped spec has a modeline, it names docs/netspec.schema.json from specs/."""
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        if first.startswith("# yaml-language-server:"):
            assert first == "# yaml-language-server: $schema=../docs/netspec.schema.json", path.name

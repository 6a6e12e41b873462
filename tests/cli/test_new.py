"""`netspec new`: a spec from the template or from another spec, with the schema modeline."""

import json

import jsonschema
import pytest
import yaml

import netspec
from tests.cli.helpers import ROOT, call, write

SCHEMA = json.loads((ROOT / "docs" / "netspec.schema.json").read_text())


def _modeline_target(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    return (path.parent / first.partition("$schema=")[2]).resolve()


def test_the_template_is_valid_and_names_the_schema(tmp_path, capsys):
    out = tmp_path / "mynet.yaml"
    code, text, _ = call(capsys, "new", "mynet", "-o", out)
    assert code == 0 and text == f"wrote {out}; check it with `netspec validate {out}`\n"
    assert _modeline_target(out) == (ROOT / "docs" / "netspec.schema.json").resolve()
    spec = netspec.load(out)
    assert spec.name == "mynet" and netspec.analyze(spec).total_params > 0
    assert call(capsys, "validate", out)[0] == 0  # the train: section too
    jsonschema.Draft202012Validator(SCHEMA).validate(yaml.safe_load(out.read_text()))


def test_default_file_is_name_yaml_and_an_existing_file_is_kept(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert call(capsys, "new", "net")[0] == 0 and (tmp_path / "net.yaml").exists()
    (tmp_path / "net.yaml").write_text("mine")
    code, _, err = call(capsys, "new", "net")
    assert code == 2 and "`net.yaml` exists" in err and (tmp_path / "net.yaml").read_text() == "mine"


def test_to_stdout_the_modeline_is_relative_to_the_current_folder(capsys, monkeypatch):
    monkeypatch.chdir(ROOT / "specs")
    code, out, _ = call(capsys, "new", "net", "-o", "-")
    assert code == 0 and out.startswith("# yaml-language-server: $schema=../docs/netspec.schema.json\n")


@pytest.mark.parametrize("source", ["resnet18", "specs/cnn_digits.yaml"])
def test_from_a_shipped_spec_keeps_it_all_but_its_name(tmp_path, capsys, source):
    out = tmp_path / "copy.yaml"
    assert call(capsys, "new", "copy", "--from", source, "-o", out)[0] == 0
    original = netspec.load(ROOT / "specs" / f"{source.removeprefix('specs/').removesuffix('.yaml')}.yaml")
    copy = netspec.load(out)
    assert copy.name == "copy" and netspec.analyze(copy).total_params == netspec.analyze(original).total_params
    assert out.read_text().count("# yaml-language-server:") == 1


def test_from_a_spec_that_extends_another_keeps_its_base(tmp_path, capsys):
    out = tmp_path / "deeper" / "r34.yaml"
    out.parent.mkdir()
    assert call(capsys, "new", "r34", "--from", "resnet34", "-o", out)[0] == 0
    assert netspec.analyze(netspec.load(out)).total_params == 21_797_672


def test_from_an_unknown_name(capsys):
    code, _, err = call(capsys, "new", "x", "--from", "resnet19", "-o", "-")
    assert code == 2 and "no shipped spec of that name" in err and "resnet18" in err


def test_name_must_be_a_name(capsys):
    code, _, err = call(capsys, "new", "my-net", "-o", "-")
    assert code == 2 and "NAME `my-net` is not a name" in err


def test_from_a_file_whose_name_cannot_be_replaced(tmp_path, capsys):
    flow = write(tmp_path, "flow.yaml", "{name: f, input: [4], layers: [relu]}\n")
    code, _, err = call(capsys, "new", "g", "--from", flow, "-o", tmp_path / "g.yaml")
    assert code == 2 and "cannot rename" in err and not (tmp_path / "g.yaml").exists()

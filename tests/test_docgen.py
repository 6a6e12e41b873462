import os
import re
from pathlib import Path

import pytest

import netspec
from netspec.docgen import MARKER, REFERENCES, SECTIONS, choice_keys, doc_args, dotted_keys, main, update
from netspec.layers import REGISTRY
from netspec.train.config import TrainArgs, check_train, parse_train

DOCS = Path("docs")


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_each_reference_is_generated_and_up_to_date(name):
    text = (DOCS / name).read_text(encoding="utf-8")
    assert update(text, REFERENCES[name]) == text, "run `make docs`"


def test_the_references_hold_every_entry():
    layers, training = ((DOCS / name).read_text(encoding="utf-8") for name in ("layers.md", "training.md"))
    assert all(f"### {op}" in layers for op in REGISTRY)
    assert all(f"### {name}\n" in training for _, _, registry in SECTIONS for name in registry)
    assert all(f"| `{key}` |" in training for key, _ in dotted_keys(TrainArgs))


def test_every_train_key_has_a_description():
    assert [key for key, info in dotted_keys(TrainArgs) if not info.description] == []


def test_every_layer_documents_itself():
    for op, entry in REGISTRY.items():
        doc = type(entry).__doc__ or ""
        assert doc.strip(), f"{op} has no docstring"
        assert "Example" in doc or "- " + op in doc, f"{op}'s docstring shows no YAML example"


@pytest.mark.parametrize("title, key, registry", SECTIONS, ids=[s[0] for s in SECTIONS])
def test_every_training_component_documents_itself(title, key, registry):
    for name in registry:
        doc = type(registry[name]).__doc__ or ""
        assert doc.strip(), f"{registry.kind} `{name}` has no docstring"
        assert "Example" in doc, f"{registry.kind} `{name}`'s docstring shows no YAML example"


def test_every_untyped_train_key_names_its_registry():
    """A key typed `Any` is checked by a registry; the reference links it to that registry's section."""
    untyped = {key for key, info in dotted_keys(TrainArgs) if "Any" in str(info.rebuild_annotation())}
    assert untyped == set(choice_keys())


def test_a_file_without_the_marker_is_refused(tmp_path, capsys):
    out = tmp_path / "training.md"
    out.write_text("# Training\n")
    assert main([str(out)]) == 1 and out.read_text() == "# Training\n"
    assert MARKER in capsys.readouterr().err
    assert main([str(tmp_path / "other.md")]) == 2


def test_a_reference_is_replaced_atomically(tmp_path, monkeypatch):
    out = tmp_path / "layers.md"
    old = f"# Layers\n\n{MARKER}\nstale\n"
    out.write_text(old)

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    assert main([str(out)]) == 1
    assert out.read_text() == old and os.listdir(tmp_path) == ["layers.md"]
    monkeypatch.undo()
    assert main([str(out)]) == 0
    assert out.read_text(encoding="utf-8") == update(old, REFERENCES["layers.md"]).replace("stale\n", "")


def _examples() -> list:
    """The YAML blocks of docs/training.md's guide that hold a `train:` section, each named by its first line."""
    guide = (DOCS / "training.md").read_text(encoding="utf-8").partition(MARKER)[0]
    return [pytest.param(m[1], id=f"line{guide.count(chr(10), 0, m.start()) + 2}")
            for m in re.finditer(r"```yaml\n(.*?)```", guide, re.S) if re.search(r"^train:", m[1], re.M)]


@pytest.mark.parametrize("block", _examples())
def test_every_train_example_in_the_guide_is_valid(block):
    """A block is a whole spec, or a `train:` section for the spec its first line names
    (`# specs/NAME.yaml`; specs/cnn_digits.yaml by default), checked as `netspec validate` checks it."""
    name = re.match(r"# (specs/\w+\.yaml)", block)
    path = Path(name.group(1) if name else "specs/cnn_digits.yaml")
    text = block if re.search(r"^layers:", block, re.M) else \
        path.read_text(encoding="utf-8").partition("\ntrain:")[0] + "\n" + block
    spec = netspec.loads(text, str(path))
    check_train(parse_train(spec), netspec.analyze(spec), spec)


def test_doc_args_reads_the_args_section():
    doc = """One line.

    Args:
        embedding_dim (alias `out`, as linear's; not `dim`, which names an axis
            elsewhere): the length of each vector.
        mu, logvar: the names.

    Shapes: none.
    """
    assert doc_args(doc) == {"embedding_dim": "the length of each vector.", "mu": "the names.",
                             "logvar": "the names."}
    assert doc_args("One line.\n\nArgs: none.\n") == {}


def test_docstring_lists_become_markdown_lists_with_stars_escaped():
    """Python-Markdown (the docs site) starts no list right under a paragraph line: `Args:` is followed by a
    blank line (embedding's and layernorm's arguments were one run-on paragraph), and `*` outside code spans
    is escaped (`(*, in_features)` is a shape, not emphasis)."""
    from netspec.docgen import _markdown

    doc = "What.\n\nArgs:\n    a: first, `x*y` kept.\n        more of a.\n    b: second.\n\nShapes: (*) -> (*, n)."
    assert _markdown(doc).splitlines() == ["What.", "", "Args:", "", "- a: first, `x*y` kept.", "  more of a.",
                                           "- b: second.", "", "Shapes: (\\*) -> (\\*, n)."]

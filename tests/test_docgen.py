from pathlib import Path

from netspec.docgen import render
from netspec.layers import REGISTRY


def test_layer_reference_is_generated_and_up_to_date():
    text = render()
    assert all(f"### {op}" in text for op in REGISTRY)
    assert Path("docs/layers.md").read_text(encoding="utf-8") == text, "run `make docs`"


def test_every_entry_documents_itself():
    for op, entry in REGISTRY.items():
        doc = type(entry).__doc__ or ""
        assert doc.strip(), f"{op} has no docstring"
        assert "Example" in doc or "- " + op in doc, f"{op}'s docstring shows no YAML example"


def test_the_reference_is_replaced_atomically(tmp_path, monkeypatch):
    import os

    import pytest

    from netspec.docgen import main

    out = tmp_path / "layers.md"
    out.write_text("old")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        main([str(out)])
    assert out.read_text() == "old" and os.listdir(tmp_path) == ["layers.md"]
    monkeypatch.undo()
    assert main([str(out)]) == 0 and out.read_text(encoding="utf-8") == render()

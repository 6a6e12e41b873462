"""The docs site: its generated pages are current, every page is in the navigation, and `mkdocs build --strict`
passes (mkdocs and its material theme are in the `test` extra, so CI builds the site)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import netspec
from netspec import docsite

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@pytest.mark.parametrize("name", sorted(docsite.pages()))
def test_generated_pages_are_current(name):
    """The gallery and the cookbook pages are what `python -m netspec.docsite docs --pages` writes now."""
    assert (DOCS / name).read_text(encoding="utf-8") == docsite.pages()[name], (
        f"docs/{name} is stale: run `make docs` (or python -m netspec.docsite docs --pages)")


def test_every_lecture_network_has_a_cookbook_page_with_its_spec_table_and_diagram():
    for stem in ("mlp_digits", "cnn_digits", "lenet5", "resnet18", "lstm_classifier", "conv_autoencoder", "vae",
                 "unet", "vit_tiny"):
        page = docsite.pages()[f"cookbook/{stem}.md"]
        spec_text = (ROOT / "specs" / f"{stem}.yaml").read_text(encoding="utf-8")
        assert spec_text.rstrip("\n") in page  # the spec itself, not a copy of it
        params = netspec.analyze(netspec.load(ROOT / "specs" / f"{stem}.yaml")).total_params
        assert f"params        {params:,}" in page  # the summary's totals
        assert f"]({stem}.svg)" in page


def nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    return [page for value in nav.values() for page in nav_pages(value)]


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav_pages(config["nav"])) == pages


def test_the_guide_states_the_quoting_rule_for_expressions():
    guide = (DOCS / "language.md").read_text(encoding="utf-8")
    assert "**Quoting.**" in guide and "`${...}`" in guide
    start = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    assert "must be **quoted**" in start


def test_the_getting_started_spec_is_valid_and_trains_on_bundled_data():
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    text = re.search(r"```yaml\n(.*?)```", page, re.DOTALL)[1]
    spec = netspec.loads(text)
    assert netspec.analyze(spec).total_params == 6090  # as the page's Python example says (and cnn_digits)
    assert spec.model.train["data"]["dataset"] == "digits"  # scikit-learn's, nothing downloaded


@pytest.mark.skipif(shutil.which("dot") is None, reason="the `dot` program is not installed")
def test_the_site_builds_strictly(tmp_path):
    """The whole site, with the gallery and the cookbook's diagrams drawn, from a copy of docs/: no broken
    link, missing image or page left out of the navigation (mkdocs --strict turns each warning into a
    failure)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("*.svg"))
    drawn = docsite.write_diagrams(docs)
    assert len(drawn) == len(docsite.diagrams())
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: {docs}\nsite_dir: {tmp_path / 'site'}\n")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)],
                            capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("getting-started", "language", "layers", "training", "cli", "gallery", "cookbook/unet",
                 "architecture", "performance", "security"):
        assert (site / page / "index.html").exists(), page
    assert (site / "cookbook" / "unet.svg").read_text().lstrip().startswith("<?xml")
    assert 'src="unet.svg"' in (site / "gallery" / "index.html").read_text()  # site/gallery/unet.svg
    assert (site / "gallery" / "unet.svg").exists()
    layers = (site / "layers" / "index.html").read_text()
    for name in ("embedding", "layernorm"):  # each argument an item of a list, not one run-on paragraph
        section = layers[re.search(f'<h3 id="[^"]*">{name}<a', layers).start():]  # the family may hold the id
        assert re.match(r"\s*<ul>\s*<li>", section[section.index("<p>Args:</p>") + len("<p>Args:</p>"):]), name

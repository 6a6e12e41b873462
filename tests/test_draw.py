"""Diagrams: rendered with the real `dot` program, checked as SVG/PNG/PDF files."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import netspec
from netspec.cli import main
from netspec.draw import ERROR, FAMILY_COLORS, MAX_NODES, SKIP, GraphvizMissing, draw, to_dot

SPECS = Path(__file__).resolve().parent.parent / "specs"
SVG = "{http://www.w3.org/2000/svg}"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="the `dot` program is not installed")

RESIDUAL = """
name: tiny_res
input: [8, 16, 16]
blocks:
  res:
    layers:
      - conv2d: {out_channels: 8, kernel_size: 3, padding: 1}
        name: conv
      - relu:
        name: act
      - add: [act, input]
        name: sum
layers:
  - res: {}
    repeat: 3
    name: stage
  - flatten
  - linear: 10
    name: fc
"""

SHAPE_ERROR = """
name: broken
input: [1, 28, 28]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3}
    name: conv1
  - flatten
  - conv2d: {out_channels: 16, kernel_size: 3}
    name: conv2
  - linear: 10
    name: fc
"""

BAD_REFERENCE = """
name: dangling
input: [16]
layers:
  - linear: 16
    name: fc1
  - add: [fc1, nowhere]
    name: merge
  - linear: 4
    name: fc2
"""


def render_svg(spec_or_graph, tmp_path: Path, **kwargs) -> ET.Element:
    path = draw(spec_or_graph, tmp_path / "out.svg", **kwargs)
    return ET.parse(path).getroot()


def titles(svg: ET.Element, cls: str) -> list[str]:
    return [g.find(f"{SVG}title").text for g in svg.iter(f"{SVG}g") if g.get("class") == cls]


def texts(svg: ET.Element) -> list[str]:
    return [t.text for t in svg.iter(f"{SVG}text") if t.text]


def element(svg: ET.Element, cls: str, title: str) -> ET.Element:
    return next(g for g in svg.iter(f"{SVG}g") if g.get("class") == cls and g.find(f"{SVG}title").text == title)


def strokes(g: ET.Element) -> set[str]:
    return {e.get("stroke") for e in g.iter() if e.get("stroke")}


def expanded_count(graph) -> int:
    """Exactly one node per layer, plus one per input and one per output marker."""
    return len(graph.nodes) + len(graph.inputs) + len(graph.outputs)


# ---- valid graphs --------------------------------------------------------------------------------------------


@needs_dot
def test_svg_holds_every_layer_and_the_shapes_on_the_edges(tmp_path):
    graph = netspec.build_graph(netspec.loads(RESIDUAL))
    svg = render_svg(graph, tmp_path, depth=9)
    assert sorted(titles(svg, "node")) == sorted(["input", *graph.nodes, "output@output"])
    words = texts(svg)
    assert {"8×16×16", "2048", "10"} <= set(words)  # edge labels
    assert "linear 10" in words and "conv2d 3×3 · 8" in words  # op labels from the entries
    assert {"stage", "stage.0", " · res ×3", " · res"} <= set(words)  # cluster labels: name and block
    assert "input->stage.0.conv" in titles(svg, "edge")


@needs_dot
def test_expanded_graph_has_one_node_per_layer_and_collapsing_shrinks_it(tmp_path):
    graph = netspec.build_graph(netspec.loads(RESIDUAL))
    assert len(titles(render_svg(graph, tmp_path, depth=2), "node")) == expanded_count(graph) == 13
    assert sorted(titles(render_svg(graph, tmp_path, depth=1), "node")) == sorted(
        ["input", "stage.0", "stage.1", "stage.2", "1", "fc", "output@output"])
    svg = render_svg(graph, tmp_path, depth=0)
    assert sorted(titles(svg, "node")) == sorted(["input", "stage", "1", "fc", "output@output"])
    words = texts(svg)
    assert {"stage", "res ×3", "8×16×16 → 8×16×16", "1.75 k params"} <= set(words)


def test_default_depth_expands_small_graphs_and_fits_the_node_budget():
    graph = netspec.build_graph(netspec.loads(RESIDUAL))
    assert to_dot(graph).source.count("[label=<") == expanded_count(graph)
    deep = RESIDUAL.replace("repeat: 3", "repeat: 30")
    source = to_dot(netspec.loads(deep)).source
    assert '"stage.29" [label=<' in source and "stage.29.conv" not in source  # blocks collapsed


def test_collapsing_many_scopes_scans_the_edges_once(monkeypatch):
    """A 1000-copy repeat drawn one node per copy: each copy's flow is right, and the edges are read
    once for all the collapsed nodes (not once per node: that was quadratic)."""
    from netspec.draw import _View

    calls = []
    edges = _View.edges
    monkeypatch.setattr(_View, "edges", lambda self: calls.append(1) or edges(self))
    graph = netspec.build_graph(netspec.loads(RESIDUAL.replace("repeat: 3", "repeat: 1000")))
    source = to_dot(graph, depth=1).source
    nodes = [line for line in source.splitlines() if "[label=<" in line]
    assert len(nodes) == 1000 + 4  # input, the copies, flatten, fc, output
    copies = [line for line in nodes if line.lstrip().startswith('"stage.')]
    assert len(copies) == 1000 and all("8×16×16 → 8×16×16" in line and "584 params" in line for line in copies)
    assert len(calls) <= 2  # the crossing shapes of every scope in one pass, then the drawn edges
    assert '"stage.0" -> "stage.1"' in source and '"stage.999" -> 1' in source


@needs_dot
def test_skip_connections_are_dashed_and_coloured(tmp_path):
    svg = render_svg(netspec.loads(RESIDUAL), tmp_path, depth=9)
    skip = element(svg, "edge", "input->stage.0.sum")
    main_path = element(svg, "edge", "stage.0.act->stage.0.sum")
    assert any(e.get("stroke-dasharray") for e in skip.iter()) and SKIP in strokes(skip)
    assert not any(e.get("stroke-dasharray") for e in main_path.iter())


@needs_dot
def test_families_have_colours_and_a_legend(tmp_path):
    svg = render_svg(netspec.loads(RESIDUAL), tmp_path, depth=0)
    assert {"conv", "activation", "merge", "reshape", "linear"} - set(texts(svg)) == {"conv", "activation",
                                                                                         "merge"}
    svg = render_svg(netspec.loads(RESIDUAL), tmp_path, depth=9)
    assert {"conv", "activation", "merge", "reshape", "linear"} <= set(texts(svg))
    fills = {e.get("fill") for n in svg.iter(f"{SVG}g") if n.get("class") == "node" for e in n.iter()}
    assert {FAMILY_COLORS[f] for f in ("conv", "activation", "merge", "reshape", "linear")} <= fills


@needs_dot
def test_show_macs_and_receptive_field(tmp_path):
    words = texts(render_svg(netspec.loads(RESIDUAL), tmp_path, depth=9, show=("params", "macs", "rf")))
    assert "147.46 k MACs" in words  # 3·3·8·8 · 16·16 per conv
    assert "RF 3" in words and "RF 7" in words  # 3, 5, 7 through the three convs


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF")])
def test_png_and_pdf_are_valid(tmp_path, suffix, magic):
    path = draw(netspec.loads(RESIDUAL), tmp_path / f"net{suffix}")
    assert path.read_bytes().startswith(magic)


def test_dot_source_quotes_dotted_names_and_needs_no_program(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    source = draw(netspec.loads(RESIDUAL), tmp_path / "net.dot").read_text()
    assert '"stage.0.conv" -> "stage.0.act"' in source
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz"):
        draw(netspec.loads(RESIDUAL), tmp_path / "other.svg")
    assert (tmp_path / "other.dot").read_text().startswith("digraph tiny_res")
    assert not (tmp_path / "other.svg").exists()


def disk_full(src, dst):
    raise OSError("disk full")


@pytest.mark.parametrize("suffix", [".dot", ".svg", ".pdf"])
def test_a_failed_write_leaves_the_old_drawing_and_no_stray_files(tmp_path, monkeypatch, suffix):
    import os

    if suffix != ".dot" and shutil.which("dot") is None:
        pytest.skip("the `dot` program is not installed")
    path = tmp_path / f"net{suffix}"
    path.write_text("old")
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="disk full"):
        draw(netspec.loads(RESIDUAL), path)
    assert path.read_text() == "old" and os.listdir(tmp_path) == [path.name]
    monkeypatch.undo()
    assert draw(netspec.loads(RESIDUAL), path) == path and path.read_bytes() != b"old"
    assert os.listdir(tmp_path) == [path.name]


def test_the_dot_fallback_is_written_atomically(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no `dot` here
    (tmp_path / "net.dot").write_text("old")
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="disk full"):
        draw(netspec.loads(RESIDUAL), tmp_path / "net.svg")
    assert (tmp_path / "net.dot").read_text() == "old" and os.listdir(tmp_path) == ["net.dot"]


def test_bad_arguments_are_refused(tmp_path):
    spec = netspec.loads(RESIDUAL)
    with pytest.raises(ValueError, match="ending must be one of"):
        draw(spec, tmp_path / "net.jpg")
    with pytest.raises(ValueError, match="choose from params, macs, rf"):
        to_dot(spec, show=("flops",))
    with pytest.raises(ValueError, match="TB or LR"):
        to_dot(spec, rankdir="BT")


def test_left_to_right():
    assert "rankdir=LR" in to_dot(netspec.loads(RESIDUAL), rankdir="LR").source


# ---- invalid graphs: drawn up to the error ----------------------------------------------------------------


@needs_dot
def test_shape_error_marks_the_failing_node_and_its_input_edge_red(tmp_path):
    graph = netspec.build_graph(netspec.loads(SHAPE_ERROR), strict=False)
    assert graph.errors
    svg = render_svg(graph, tmp_path)
    assert ERROR in strokes(element(svg, "node", "conv2"))
    assert ERROR in strokes(element(svg, "edge", "1->conv2"))
    assert ERROR not in strokes(element(svg, "node", "conv1"))
    assert any("needs a [C, H, W] input" in t for t in texts(svg))
    downstream = element(svg, "node", "fc")  # not checked: dashed, not red
    assert ERROR not in strokes(downstream) and any(e.get("stroke-dasharray") for e in downstream.iter())


@needs_dot
def test_an_item_that_failed_outright_is_drawn_red_where_it_stood(tmp_path):
    graph = netspec.build_graph(netspec.loads(BAD_REFERENCE), strict=False)
    svg = render_svg(graph, tmp_path)
    assert ERROR in strokes(element(svg, "node", "merge"))
    assert any("nowhere" in t for t in texts(svg))
    assert "merge->fc2" in titles(svg, "edge")
    assert ERROR in strokes(element(svg, "edge", "fc1->merge"))  # the input it did resolve


def test_a_failing_block_stays_open_when_its_neighbours_collapse():
    shrinking = RESIDUAL.replace("kernel_size: 3, padding: 1}", "kernel_size: 3, stride: 2}").replace(
        "- add: [act, input]", "- add: [act, act]").replace("repeat: 3", "repeat: 30")
    graph = netspec.build_graph(netspec.loads(shrinking), strict=False)  # 16 -> 7 -> 3 -> 1 -> too small
    lines = {line.split(" [label=<")[0].strip(): line for line in to_dot(graph).source.splitlines()}
    assert ERROR in lines['"stage.3.conv"']
    assert '"stage.2"' in lines and '"stage.4"' in lines and '"stage.4.conv"' not in lines  # neighbours collapsed


BAD_BLOCK_OUTPUT = """
name: no_output
input: [8]
blocks:
  b:
    output: nope
    layers:
      - linear: 8
        name: fc
layers:
  - b: {}
    name: blk
  - linear: 4
    name: head
"""


@pytest.mark.parametrize("depth", [None, 0, 1, 5])
def test_a_block_whose_output_names_nothing_is_drawn_once(depth):
    """`blk` is both a scope (its layers expanded) and an invalid item (no output): one cluster holding
    its layers and the failed item, or, collapsed, one node, never two of either."""
    graph = netspec.build_graph(netspec.loads(BAD_BLOCK_OUTPUT), strict=False)
    assert "blk" in graph.invalid and "blk" in graph.scopes
    lines = [line.strip() for line in to_dot(graph, depth=depth).source.splitlines()]
    assert sum(line.startswith("blk [label=<") for line in lines) == 1
    clusters = sum(line.startswith("subgraph cluster_blk") for line in lines)
    assert clusters == (0 if depth == 0 else 1)
    assert sum(line.startswith('"blk.fc" [label=<') for line in lines) == clusters
    if clusters:  # the failed item sits inside its block's cluster
        inside = lines[lines.index("subgraph cluster_blk {"):]
        inside = inside[:inside.index("}")]
        assert any(line.startswith("blk [label=<") for line in inside)


@needs_dot
def test_an_unknown_op_is_drawn_red_with_its_message(tmp_path):
    spec = netspec.loads(BAD_REFERENCE.replace("- add: [fc1, nowhere]", "- relux:"))
    svg = render_svg(spec, tmp_path)
    assert ERROR in strokes(element(svg, "node", "merge"))
    assert any("unknown layer type" in t for t in texts(svg))


@needs_dot
def test_cli_validate_draws_an_invalid_spec(tmp_path, capsys):
    spec = tmp_path / "broken.yaml"
    spec.write_text(SHAPE_ERROR)
    out = tmp_path / "broken.svg"
    assert main(["validate", str(spec), "--draw", str(out)]) == 1
    assert "error: conv2d needs" in capsys.readouterr().err
    assert ERROR in strokes(element(ET.parse(out).getroot(), "node", "conv2"))


@needs_dot
def test_cli_validate_draws_errors_no_node_explains_in_the_caption(tmp_path):
    spec = tmp_path / "expect.yaml"
    spec.write_text(RESIDUAL + "expect: {params: 1}\n")
    out = tmp_path / "expect.svg"
    assert main(["validate", str(spec), "--draw", str(out)]) == 1
    assert any("expected params 1" in t for t in texts(ET.parse(out).getroot()))


@needs_dot
def test_cli_draw(tmp_path, capsys):
    spec = tmp_path / "net.yaml"
    spec.write_text(RESIDUAL)
    out = tmp_path / "net.svg"
    assert main(["draw", str(spec), "-o", str(out), "--depth", "0", "--rankdir", "LR",
                 "--show", "params,macs,rf"]) == 0
    assert sorted(titles(ET.parse(out).getroot(), "node")) == sorted(["input", "stage", "1", "fc", "output@output"])
    assert main(["draw", str(spec), "-o", str(tmp_path / "net.gif")]) == 2
    assert main(["draw", str(spec), "-o", str(out), "--show", "flops"]) == 2
    assert "choose from params, macs, rf" in capsys.readouterr().err


def test_cli_without_dot_writes_the_source_and_says_how_to_install(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "net.yaml"
    spec.write_text(RESIDUAL)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["draw", str(spec), "-o", str(tmp_path / "net.svg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install graphviz" in err
    assert (tmp_path / "net.dot").exists()
    assert main(["draw", str(spec), "-o", str(tmp_path / "net.dot")]) == 0


# ---- the specs in specs/ ------------------------------------------------------------------------------------


def spec_files() -> list[Path]:
    return sorted(SPECS.glob("*.yaml"))


@needs_dot
@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.stem)
def test_every_spec_draws_expanded_with_one_node_per_layer(path, tmp_path):
    graph = netspec.build_graph(netspec.load(path))
    svg = render_svg(graph, tmp_path, depth=99)
    assert len(titles(svg, "node")) == expanded_count(graph)


@pytest.mark.skipif(not (SPECS / "resnet152.yaml").exists(), reason="specs/resnet152.yaml not written yet")
def test_resnet152_default_is_collapsed_to_one_page():
    graph = netspec.build_graph(netspec.load(SPECS / "resnet152.yaml"))
    source = to_dot(graph).source
    assert source.count("[label=<") <= MAX_NODES
    assert "bottleneck ×36" in source  # layer3, one node

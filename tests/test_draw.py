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
    source = to_dot(netspec.loads(deep)).source  # 30 alike copies: the repeat is one node, with its count
    assert "stage [label=<" in source and "res ×30" in source and "stage.29" not in source


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
    assert len(calls) <= 3  # the crossing shapes of every scope in one pass, the U's skips, the drawn edges
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


# ---- the default expansion, colours and layouts -------------------------------------------------------------

MOBILE = """
name: mobile_like
input: [3, 64, 64]
blocks:
  bneck:
    args: {out: int, stride: int}
    layers:
      - conv2d: {out_channels: 32, kernel_size: 1, bias: false}
        name: expand
      - batchnorm2d:
      - relu6
      - conv2d: {out_channels: 32, kernel_size: 3, stride: $stride, padding: 1, groups: 32, bias: false}
        name: depthwise
      - batchnorm2d:
      - relu6
      - conv2d: {out_channels: $out, kernel_size: 1, bias: false}
        name: project
      - batchnorm2d:
  res:
    args: {out: int}
    layers:
      - bneck: {out: $out, stride: 1}
        name: body
      - add: [body, input]
layers:
  - conv2d: {out_channels: 16, kernel_size: 3, stride: 2, padding: 1}
    name: stem
  - bneck: {out: 16, stride: 1}
    name: b1
  - bneck: {out: 24, stride: 2}
    name: b2
  - res: 24
    repeat: 2
    name: b3
  - bneck: {out: 40, stride: 2}
    name: b4
  - res: 40
    repeat: 3
    name: b5
  - bneck: {out: 80, stride: 2}
    name: b6
  - res: 80
    repeat: 3
    name: b7
  - adaptive_avgpool2d: 1
  - flatten
  - linear: 10
    name: fc
"""


def drawn_as(source: str, scope: str) -> str:
    """How a scope is drawn in DOT source: `open` (a cluster), `node` (collapsed) or `hidden` (inside a
    collapsed scope)."""
    quoted = f'"{scope}"' if not scope.isidentifier() else scope
    if f"subgraph cluster_{scope} {{" in source or f'subgraph "cluster_{scope}" {{' in source:
        return "open"
    return "node" if f"\t{quoted} [label=<" in source else "hidden"


def spec_texts() -> list[tuple[str, Path | str]]:
    """Every shipped spec (as its file: some `extend` others) and the MobileNet-style one (as text)."""
    return [(p.stem, p) for p in spec_files()] + [("mobile_like", MOBILE)]


def load_any(source: Path | str):
    return netspec.load(source) if isinstance(source, Path) else netspec.loads(source)


@pytest.mark.parametrize("name, text", spec_texts(), ids=[n for n, _ in spec_texts()])
def test_the_default_draws_every_copy_of_a_block_the_same_way(name, text):
    """No block type has one instance drawn open and another collapsed to a node (the MobileNet-style spec
    has its first block of a stage on its own and the next ones in a repeat: all collapse together)."""
    graph = netspec.build_graph(load_any(text))
    source = to_dot(graph).source
    looks: dict[str, set[str]] = {}
    for scope in graph.scopes.values():
        if scope.kind == "block":
            looks.setdefault(scope.op, set()).add(drawn_as(source, scope.name))
    assert all(not {"open", "node"} <= drawn for drawn in looks.values()), looks
    if name == "mobile_like":
        assert looks["bneck"] <= {"node", "hidden"} and drawn_as(source, "b1") == "node"
        assert drawn_as(source, "b5.0.body") == "node"  # a copy in a repeat, like b1 on its own


def test_explicit_depth_collapses_every_instance_of_a_block_type_alike():
    source = to_dot(netspec.loads(MOBILE), depth=2).source  # b5.0.body is at level 2, b1 at level 0
    assert drawn_as(source, "b1") == drawn_as(source, "b5.0.body") == "node"
    assert drawn_as(source, "b5") == "open" and drawn_as(source, "b5.0") == "open"


def test_alike_copies_of_a_repeat_are_one_node_by_default():
    vit = netspec.load(SPECS / "vit_tiny.yaml")  # six identical encoder blocks
    source = to_dot(vit).source
    assert drawn_as(source, "layers") == "node" and "encoder_block ×6" in source
    assert drawn_as(to_dot(vit, depth=1).source, "layers.0") == "node"  # an explicit depth draws each copy


def test_every_family_has_its_own_colour_and_look():
    from netspec.draw import FAMILY_BORDERS, FAMILY_STYLES
    from netspec.layers import REGISTRY

    families = {entry.family for entry in REGISTRY.values()}
    assert families <= set(FAMILY_COLORS)  # none falls back to a spare colour
    looks = {f: (FAMILY_COLORS[f], FAMILY_BORDERS.get(f), FAMILY_STYLES.get(f)) for f in FAMILY_COLORS}
    assert len(set(looks.values())) == len(looks)
    for a, b in [("attention", "norm"), ("regularization", "reshape"), ("conv", "linear"), ("merge", "pool")]:
        assert FAMILY_COLORS[a] != FAMILY_COLORS[b]


def rgb(colour: str) -> tuple[int, ...]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def luminance(colour: str) -> float:
    """Relative luminance, WCAG 2.x's formula."""
    linear = [(c / 255) / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4
              for c in rgb(colour)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_family_fills_are_light_enough_for_dark_text_and_apart_from_one_another():
    """Every fill keeps dark text readable (relative luminance over 0.3, WCAG 2.x's formula), and two
    filled families differ by at least 40 in some RGB channel (Tol's light scheme: the closest pair,
    light blue and light cyan, differs by 51 in red)."""
    fills = {c for c in FAMILY_COLORS.values() if c != "#ffffff"}
    assert all(luminance(c) > 0.3 for c in fills)
    for a in fills:
        for b in fills - {a}:
            assert max(abs(x - y) for x, y in zip(rgb(a), rgb(b))) >= 40, (a, b)


def test_a_layers_small_figures_stand_out_from_every_fill():
    """The 8-point parameter counts on a layer: contrast ratio (WCAG 2.x) at least 3.5 on every family's
    fill (the grey they had was 2.2 on attention's olive and conv's blue)."""
    from netspec.draw import FIGURES

    source = to_dot(netspec.load(SPECS / "vit_tiny.yaml")).source
    assert f"<font point-size='8' color='{FIGURES}'>192 params</font>" in source  # class_token, olive
    for fill in set(FAMILY_COLORS.values()):
        assert (luminance(fill) + 0.05) / (luminance(FIGURES) + 0.05) >= 3.5, fill


def plain_layout(dot) -> tuple[tuple[float, float], dict[str, tuple[float, float]]]:
    """The drawing's size and every node's centre, in inches, y upwards (graphviz's `plain` output)."""
    size, centres = (0.0, 0.0), {}
    for line in dot.pipe(format="plain").decode().splitlines():
        if line.startswith("graph "):
            size = tuple(map(float, line.split()[2:4]))
        elif line.startswith("node "):
            name, x, y = shlex_split(line)[1:4]
            centres[name] = (float(x), float(y))
    return size, centres


def shlex_split(line: str) -> list[str]:
    import shlex

    return shlex.split(line)


@needs_dot
def test_unet_draws_as_a_u():
    """Encoder down the left, decoder up the right, each skip connection joining two nodes of one rank."""
    dot = to_dot(netspec.load(SPECS / "unet.yaml"))
    _, at = plain_layout(dot)
    x = {name: xy[0] for name, xy in at.items()}
    y = {name: xy[1] for name, xy in at.items()}
    encoder, decoder = ["input", "enc1", "1", "enc2", "3", "bottom"], ["up2", "6", "dec2", "up1", "9", "dec1", "head"]
    assert all(y[a] > y[b] for a, b in zip(encoder, encoder[1:]))  # going down
    assert all(y[a] < y[b] for a, b in zip(decoder, decoder[1:]))  # going up
    assert max(x[n] for n in encoder[:-1]) < min(x[n] for n in decoder)  # left, right
    assert y["enc2"] == y["6"] and y["enc1"] == y["9"]  # the skips run across
    assert y["bottom"] == min(y.values())


@needs_dot
def test_u_layout_at_every_depth_and_only_when_skips_nest():
    spec = netspec.load(SPECS / "unet.yaml")
    _, at = plain_layout(to_dot(spec, depth=9))
    assert at["enc1.5"][1] == at["9"][1] and at["enc2.5"][1] == at["6"][1]  # the blocks' last relu
    assert at["dec1.conv1"][1] < at["dec1.5"][1]  # inside a decoder block, up too
    _, column = plain_layout(to_dot(spec, layout="column"))
    assert column["9"][1] < column["enc1"][1]  # asked for a column: the merge comes after, below
    res = to_dot(netspec.loads(RESIDUAL), layout="auto").source
    assert "dir=back" not in res  # skips inside blocks only: no U


@needs_dot
@pytest.mark.parametrize("name, text", spec_texts(), ids=[n for n, _ in spec_texts()])
def test_default_drawings_fit_a_page(name, text):
    """Neither a tall column nor a long strip: height and width within 2.6:1 either way (U-Net and
    the MobileNet-style spec were single columns 7.9 and over 10 times taller than wide), and at most
    13 inches wide at graphviz's 10-point text (ResNet-101, its 23-block stage open, was 19.4 inches: its
    text 3 points tall on a page; the widest now, the MobileNet-style spec, is 12.7)."""
    (width, height), _ = plain_layout(to_dot(load_any(text)))
    assert 1 / 2.6 <= height / width <= 2.6, (width, height)
    assert width <= 13, width


@needs_dot
@pytest.mark.parametrize("name, text", spec_texts(), ids=[n for n, _ in spec_texts()])
def test_wrapped_columns_stand_left_to_right_in_order(name, text):
    """The first nodes of a wrapped scope's columns are joined left to right (`rank=same`, invisible
    edges): laid out, each stands left of the next (dot's second crossing pass over clusters once put
    VGG-11's three columns of `features` right to left), and the last column's foot is right of the
    others' (one invisible edge from every foot to what follows put it between them)."""
    dot = to_dot(load_any(text))
    _, at = plain_layout(dot)
    lines = dot.source.splitlines()
    order = [shlex_split(line.split(" [")[0]) for i, line in enumerate(lines)
             if "-> " in line and "style=invis" in line and "rank=same" in lines[i - 1] + lines[i - 2]]
    for tail, _, head in order:
        assert at[tail][0] < at[head][0], (tail, head)


@needs_dot
def test_branches_side_by_side_count_as_tall_as_one_and_as_wide_as_all():
    """GoogLeNet with its Inception blocks open: four branches stand side by side, so a block is as tall as
    its longest path and as wide as its branches. Counted stacked and one column wide, the nine blocks were
    cut into five columns: a strip 3.7 times wider than tall."""
    (width, height), _ = plain_layout(to_dot(netspec.load(SPECS / "googlenet.yaml"), depth=1))
    assert 1 / 2.6 <= height / width <= 2.6, (width, height)


def test_a_short_chain_stays_one_column():
    """Seven layers fit a page in one column; wrapped, they zigzag (VGG-16-BN collapsed to six nodes
    was drawn in two columns)."""
    assert "@column" not in to_dot(netspec.load(SPECS / "vgg16_bn.yaml")).source
    assert "@column" in to_dot(netspec.load(SPECS / "lenet5.yaml")).source  # fourteen do not


def test_the_default_depth_keeps_the_drawing_a_few_columns_wide():
    source = to_dot(netspec.load(SPECS / "resnet101.yaml")).source  # opened, layer3 alone took 4 columns
    assert drawn_as(source, "layer3") == "node" and "bottleneck ×23" in source


def test_the_legend_draws_each_swatch_as_its_nodes_look():
    """A collapsed block's swatch has a double border, dropout's a dotted one, an embedding's a bold
    coloured one (all four were white boxes with a thin grey border)."""
    from netspec.draw import BLOCK_BORDER, FAMILY_BORDERS, _swatch

    assert "<table" in _swatch("block (collapsed)", "#ffffff") and BLOCK_BORDER in _swatch("block (collapsed)", "")
    assert "style='dotted'" in _swatch("regularization", FAMILY_COLORS["regularization"])
    bold = _swatch("embedding", FAMILY_COLORS["embedding"])
    assert "border='2'" in bold and FAMILY_BORDERS["embedding"] in bold
    assert "border='1'" in _swatch("conv", FAMILY_COLORS["conv"]) and "style=" not in _swatch("conv", "")
    caption = to_dot(netspec.load(SPECS / "mlp_digits.yaml")).graph_attr["label"]
    assert _swatch("regularization", FAMILY_COLORS["regularization"]) in caption  # dropout


def test_wrapped_columns_are_ordered_and_the_wrap_edge_points_down_the_chain():
    source = to_dot(netspec.loads(MOBILE)).source
    assert "@column0" in source and "@column1" in source  # the top level is wrapped
    assert "rank=same" in source and '"@column0" -> "@column1"' in source
    wraps = [line for line in source.splitlines() if "dir=none" in line]
    assert wraps and all(" [label=" in line for line in wraps)  # up the gutter, labelled beside it
    assert all("weight=0" in line and "@column" in line for line in wraps)  # pulling no end out of its column


def test_an_edge_from_a_column_foot_runs_up_the_gutter_and_into_the_next_column_from_above():
    """ResNet-18 expanded: each stage's output feeds the next stage's first conv and its `downsample`. Both
    edges share one line up the gutter to a junction atop the next column, then enter from above; drawn
    straight into the `downsample` in the column's middle, that edge crossed the whole drawing."""
    source = to_dot(netspec.load(SPECS / "resnet18.yaml"), depth=9).source
    assert "constraint=false" not in source
    junction = '"layer1.1.relu2@column1"'
    assert f'{junction} -> "layer1.1.relu2" [label="64×56×56" dir=none' in source
    assert f'{junction} -> "layer2.0.conv1"' in source and f'{junction} -> "layer2.0.downsample.0"' in source
    drawn = [line for line in source.splitlines() if f"{junction} -> " in line and "style=invis" not in line]
    assert len(drawn) == 3 and source.count(f"\t\t{junction} [") == 1
    assert f'"@column0" -> {junction} [style=invis]' in source  # in the gutter, between columns 0 and 1
    assert f'{junction} -> "@column1" [style=invis]' in source


@needs_dot
def test_the_parts_of_a_chunk_are_a_cluster_named_after_it(tmp_path):
    graph = netspec.build_graph(netspec.loads("""
name: t
input: [4, 6, 6]
layers:
  - chunk: 2
    name: halves
  - conv2d: {out_channels: 2, kernel_size: 1}
    from: halves.1
    name: conv
  - concat: [halves.0, conv]
"""))
    svg = render_svg(graph, tmp_path, depth=9)
    assert sorted(titles(svg, "node")) == sorted(["input", "halves.0", "halves.1", "conv", "2", "output@output"])
    assert {"halves", " · chunk"} <= set(texts(svg)) and sum("chunk 2 [" in t for t in texts(svg)) == 2
    edges = {frozenset(t.split("->")) for t in titles(svg, "edge")}  # a skip may be drawn against its direction
    assert {frozenset(e) for e in (("input", "halves.0"), ("input", "halves.1"), ("halves.1", "conv"),
                                   ("halves.0", "2"))} <= edges
    collapsed = render_svg(graph, tmp_path, depth=0)
    assert "halves" in titles(collapsed, "node") and "halves.0" not in titles(collapsed, "node")

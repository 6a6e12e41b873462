"""`netspec.diff`: two architectures side by side, by top-level item, with what was added, removed, changed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from netspec.diff import Change, Part, diff

ROOT = Path(__file__).resolve().parent.parent


def load(name: str):
    return netspec.load(ROOT / "specs" / f"{name}.yaml")


@pytest.fixture(scope="module")
def resnets():
    return diff(load("resnet18"), load("resnet34"))


def test_resnet18_vs_resnet34_totals(resnets):
    out = resnets.to_json()
    assert out["a"] == "resnet18" and out["b"] == "resnet34" and not out["identical"]
    assert out["totals"]["params"] == [11_689_512, 21_797_672]
    assert out["totals"]["macs"] == [1_814_073_344, 3_663_761_408]
    assert out["totals"]["outputs"] == {"output": [[1000], [1000]]}
    assert json.loads(json.dumps(out)) == out


def test_resnet18_vs_resnet34_rows(resnets):
    """One row per top-level item, with the analysis' own numbers; the stages grow, nothing else changes."""
    rows = {r.name: r for r in resnets.rows}
    assert list(rows) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool",
                          "flatten", "fc"]
    assert [r.name for r in resnets.rows if r.mark == "~"] == ["layer1", "layer2", "layer3", "layer4"]
    layer3 = rows["layer3"]
    assert (layer3.a.op, layer3.b.op) == ("basic ×2", "basic ×6")
    assert (layer3.a.params, layer3.b.params) == (2_099_712, 6_822_400)
    assert layer3.a.output_shape == layer3.b.output_shape == (256, 14, 14)
    for result, side, last in ((resnets.a, "a", "layer4.1.relu2"), (resnets.b, "b", "layer4.2.relu2")):
        by_name = result.by_name
        assert sum(getattr(r, side).params for r in resnets.rows) == result.total_params
        assert getattr(rows["fc"], side).macs == by_name["fc"].macs == 512_000
        assert getattr(rows["layer4"], side).output_shape == by_name[last].output_shape


def test_resnet18_vs_resnet34_added_blocks(resnets):
    """resnet34 adds 8 `basic` blocks (56 layers), shown whole; the rewiring around them is no change."""
    assert [p.name for p in resnets.added] == ["layer1.2", "layer2.2", "layer2.3", "layer3.2", "layer3.3",
                                               "layer3.4", "layer3.5", "layer4.2"]
    assert resnets.added[0] == Part("layer1.2", "basic", 7, 73_984)
    assert sum(p.params for p in resnets.added) == 21_797_672 - 11_689_512
    assert resnets.removed == [] and resnets.changed == []


def test_resnet18_vs_resnet34_table(resnets):
    table = resnets.table()
    assert table.splitlines()[:2] == [f"a: resnet18 ({ROOT / 'specs' / 'resnet18.yaml'})",
                                      f"b: resnet34 ({ROOT / 'specs' / 'resnet34.yaml'})"]
    assert "~ layer3   basic ×2 → basic ×6" in table
    total = next(line for line in table.splitlines() if line.strip().startswith("total"))
    assert total.split()[1:4] == ["11,689,512", "21,797,672", "+10,108,160"]
    assert "added in b: 56 layers, 10,108,160 params" in table
    assert "  layer1.2  basic: 7 layers, 73,984 params" in table
    assert "removed from a: none" in table and "changed: 0 layers (none)" in table


def test_a_spec_against_itself_has_no_changes():
    d = diff(load("vit_tiny"), load("vit_tiny"))
    assert d.identical
    assert (d.added, d.removed, d.changed) == ([], [], [])
    assert all(r.mark == " " and r.a == r.b for r in d.rows)
    assert "a and b are the same network" in d.table()
    assert d.to_json()["identical"] is True


MLP = """name: mlp
input: [64]
layers:
  - linear: {width}
    name: fc1
  - relu
  - dropout: 0.2
  - linear: 10
    name: fc2
"""


def test_a_changed_argument():
    """fc1 narrows: it is changed (its argument), fc2 only shrinks (its input did) and is no change."""
    d = diff(netspec.loads(MLP.format(width=128)), netspec.loads(MLP.format(width=64)))
    assert d.changed == [Change("fc1", None, {"out_features": (128, 64)}, None)]
    assert str(d.changed[0]) == "out_features 128 → 64"
    rows = {r.name: r for r in d.rows}
    assert (rows["fc1"].a.params, rows["fc1"].b.params) == (8_320, 4_160)
    assert (rows["fc2"].a.params, rows["fc2"].b.params) == (1_290, 650) and rows["fc2"].mark == "~"
    assert rows["1"].a.output_shape == (128,) and rows["1"].b.output_shape == (64,)
    assert d.to_json()["changed"] == [{"name": "fc1", "op": None, "args": {"out_features": [128, 64]},
                                       "inputs": None}]
    assert "  fc1: out_features 128 → 64" in d.table()


def test_an_op_change_a_rewiring_and_items_on_one_side():
    a = netspec.loads("name: a\ninput: [8]\noutputs: [y, '1']\nlayers:\n  - linear: 8\n    name: x\n  - relu\n"
                      "  - linear: 4\n    name: y\n    from: input\n")
    b = netspec.loads("name: b\ninput: [8]\noutputs: [s, '1']\nlayers:\n  - linear: 8\n    name: x\n  - tanh\n"
                      "  - linear: 4\n    name: y\n    from: x\n  - sigmoid:\n    name: s\n")
    d = diff(a, b)
    assert d.changed == [Change("1", ("relu", "tanh"), {}, None), Change("y", None, {}, (["input"], ["x"]))]
    assert str(d.changed[1]) == "from input → x"
    assert d.added == [Part("s", "sigmoid", 1, 0)] and d.removed == []
    assert [(r.name, r.mark) for r in d.rows] == [("x", " "), ("1", "~"), ("y", " "), ("s", "+")]


def test_a_changed_op_lists_only_the_arguments_both_ops_take():
    """An unnamed layer whose position holds another op: `maxpool2d → flatten`, without the pool's kernel
    against the flatten's missing one; pooling by avg instead of max compares the arguments both pools take."""
    head = "name: n\ninput: [1, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3, padding: 1}\n"
    pool = netspec.loads(head + "  - maxpool2d: 2\n  - flatten\n  - linear: 10\n")
    flat = netspec.loads(head + "  - flatten\n  - linear: 10\n")
    avg = netspec.loads(head + "  - avgpool2d: {kernel_size: 4, ceil_mode: true}\n  - flatten\n  - linear: 10\n")
    assert diff(pool, flat).changed[0] == Change("1", ("maxpool2d", "flatten"), {}, None)
    assert str(diff(pool, flat).changed[0]) == "maxpool2d → flatten"
    (change,) = [c for c in diff(pool, avg).changed if c.name == "1"]
    assert change.op == ("maxpool2d", "avgpool2d")
    assert change.args == {"kernel_size": (2, 4), "ceil_mode": (False, True)}  # not `dilation`, not `divisor_override`


def test_symbolic_costs_are_unknown():
    d = diff(load("lstm_classifier"), load("lstm_classifier"))
    assert d.to_json()["totals"]["macs"] == [None, None]
    assert "?" in d.table()


def test_a_stale_expect_does_not_stop_a_diff():
    stale = netspec.loads(MLP.format(width=128) + "expect: {params: 1}\n")
    assert diff(stale, stale).identical


def test_diff_never_imports_torch():
    code = ("import sys\nimport netspec\nfrom netspec.diff import diff\n"
            "d = diff(netspec.load('specs/resnet18.yaml'), netspec.load('specs/resnet34.yaml'))\n"
            "d.table(); d.to_json()\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

"""netspec.codegen and `netspec compile`: a standalone, lint-clean file that imports only torch, laid out as
torchvision lays out its models (a class per block, nn.Sequential for layers in sequence), whose module has
build's state_dict keys, the same weights from the same seed, and the same outputs."""

from __future__ import annotations

import ast
import builtins
import importlib.util
import py_compile
import re
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import netspec
from netspec.codegen import generate
from netspec.compiler import build, class_name
from tests.samples import BIG, ROOT, SPECS, inputs, load_valid, symbolic_dims
from tests.strategies import specs
from tests.test_language import PARTS, SIAMESE

RUFF = [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml")]


def load_module(path: Path, spec: netspec.Spec):
    """The generated file imported under its own name, and its class."""
    loader = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return getattr(module, class_name(spec.name))


def write(spec: netspec.Spec, folder: Path) -> Path:
    path = folder / f"{spec.name}_model.py"
    path.write_text(generate(spec), encoding="utf-8")
    return path


def same(a, b) -> bool:
    if isinstance(a, dict):
        return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    return torch.equal(a, b)


def check_equivalent(spec: netspec.Spec, cls, device="cpu") -> None:
    """Same seed, same weights; the built module's state_dict loads strictly; identical outputs (the file's
    forward takes the inputs in spec order)."""
    torch.manual_seed(0)
    built = build(spec, device=device)
    torch.manual_seed(0)
    with torch.device(device):
        generated = cls()
    assert list(generated.state_dict()) == list(built.state_dict())
    assert [p.requires_grad for p in generated.parameters()] == [p.requires_grad for p in built.parameters()]
    if device == "meta":
        assert [p.shape for p in generated.parameters()] == [p.shape for p in built.parameters()]
        return
    assert all(torch.equal(a, b) for a, b in zip(generated.state_dict().values(), built.state_dict().values()))
    generated.load_state_dict(built.state_dict(), strict=True)
    x = inputs(spec, netspec.analyze(spec, symbolic_dims(spec)))
    for train in (False, True):
        built.train(train)
        generated.train(train)
        torch.manual_seed(1)
        expected = built(**x)
        torch.manual_seed(1)
        assert same(generated(*x.values()), expected)


def check_source(spec: netspec.Spec, source: str) -> None:
    """The source run as a module: its network class is equivalent to build's."""
    namespace: dict = {}
    exec(compile(source, f"{spec.name}.py", "exec"), namespace)
    check_equivalent(spec, namespace[class_name(spec.name)])


def check_readable(spec: netspec.Spec, source: str) -> None:
    """What makes the file read like hand-written PyTorch, whatever the spec: a class per block definition used
    whole, modules reached by attribute or index (never `setattr`/`getattr` with a number), variables that are
    valid, unique per function, never fx's `getitem` nor a builtin such as `input`."""
    tree = ast.parse(source)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert classes[-1] == class_name(spec.name)
    blocks = [class_name(b) for b in spec.blocks]
    assert all(any(c.startswith(b) for b in blocks) for c in classes[:-1])
    assert not re.search(r"""(setattr|getattr)\([^,]+, ["']\d""", source)
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        bound = [a.arg for a in function.args.args] + \
            [n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
        assert not [n for n in bound if n.startswith("getitem") or n in dir(builtins)], (function.name, bound)
        assert len(set(function.args.args and [a.arg for a in function.args.args])) == len(function.args.args)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_compiles_to_an_equivalent_lint_clean_file(path, tmp_path):
    spec, result = load_valid(path)
    file = write(spec, tmp_path)
    py_compile.compile(str(file), doraise=True)
    lint = subprocess.run([*RUFF, str(file)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    check_readable(spec, file.read_text())
    heavy = result.total_params > BIG or (result.macs or 0) > 3e9
    check_equivalent(spec, load_module(file, spec), device="meta" if heavy else "cpu")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_random_specs_compile_to_equivalent_files(text):
    try:
        spec = netspec.loads(text)
        netspec.analyze(spec)
        netspec.analyze(spec, symbolic_dims(spec))
    except (netspec.SpecError, netspec.SpecErrors):
        return
    source = generate(spec)
    lint = subprocess.run([*RUFF, "--stdin-filename", "model.py", "-"], input=source, capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stdout + source
    check_readable(spec, source)
    check_source(spec, source)


def test_imports_only_torch():
    tree = ast.parse(generate(netspec.load(ROOT / "specs" / "vit_tiny.yaml")))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"torch"}


def test_resnet18_reads_like_torchvision():
    """One class for the block, parameterized by what differs between its uses, its `when:`-skipped projection
    decided by a flag; the stages are nn.Sequentials of blocks called in one line; the stem is one annotated
    line per layer, the value flowing through `x`."""
    source = generate(netspec.load(ROOT / "specs" / "resnet18.yaml"))
    assert re.findall(r"^class (\w+)\(nn.Module\):", source, re.M) == ["Basic", "Resnet18"]
    assert "    def __init__(self, in_channels: int, width: int, stride: int = 1, downsample: bool = False) -> None:" \
        in source
    assert "        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=stride, padding=1, bias=False)" \
        in source
    assert "        self.downsample = nn.Sequential(\n" \
        "            nn.Conv2d(in_channels, width, kernel_size=1, stride=stride, bias=False),\n" \
        "            nn.BatchNorm2d(width),\n        ) if downsample else None" in source
    assert "        bn2 = self.bn2(out)\n" \
        "        downsample = x if self.downsample is None else self.downsample(x)\n" \
        "        x = bn2 + downsample\n" in source
    assert "        self.layer2 = nn.Sequential(\n" \
        "            Basic(64, 128, stride=2, downsample=True),  # 128×28×28 · 230,144 params\n" \
        "            Basic(128, 128),  # 128×28×28 · 295,424 params\n        )" in source
    assert "def forward(self, x: torch.Tensor) -> torch.Tensor:\n" \
        "        x = self.conv1(x)  # 64×112×112 · 9,408 params\n" in source
    assert "        x = self.layer1(x)  # 64×56×56 · 147,968 params\n" in source
    assert "nn.Module()" not in source and "nn.ModuleList" not in source


def test_a_block_of_unnamed_layers_in_sequence_is_an_nn_sequential():
    """As torchvision's Conv2dNormActivation: the class subclasses nn.Sequential and has no forward of its own;
    a size computed from an argument is written as the expression (`kernel // 2`)."""
    spec = netspec.loads("""
name: stem
input: [3, 16, 16]
blocks:
  conv_bn:
    args: {out: int, kernel: 3}
    layers:
      - conv2d: {out_channels: $out, kernel_size: $kernel, padding: '${kernel // 2}', bias: false}
      - batchnorm2d
      - relu
layers:
  - conv_bn: {out: 8}
    name: first
  - conv_bn: {out: 16, kernel: 5}
    name: second
""")
    source = generate(spec)
    assert "class ConvBn(nn.Sequential):" in source and "def forward" not in source.split("class Stem")[0]
    assert "    def __init__(self, in_channels: int, out: int, kernel: int = 3) -> None:\n" \
        "        super().__init__(\n" \
        "            nn.Conv2d(in_channels, out, kernel_size=kernel, padding=kernel // 2, bias=False),\n" \
        "            nn.BatchNorm2d(out),\n            nn.ReLU(),\n        )\n" in source
    assert "self.first = ConvBn(3, 8)" in source and "self.second = ConvBn(8, 16, kernel=5)" in source
    assert "x = self.second(x)  # 16×16×16 · 3,232 params" in source
    check_source(spec, source)


def test_uses_differing_otherwise_than_by_a_skipped_item_get_classes_of_their_own():
    """Uses of a block whose activation differs (`- $activation`) are different modules: one class each."""
    spec = netspec.loads("""
name: acts
input: [4]
blocks:
  unit:
    args: {width: int, activation: relu}
    layers:
      - linear: $width
        name: fc
      - $activation
layers:
  - unit: {width: 8}
  - unit: {width: 6, activation: tanh}
  - unit: {width: 5, activation: tanh}
""")
    source = generate(spec)
    assert re.findall(r"^class (\w+)\(nn.Module\):", source, re.M) == ["Unit", "UnitTanh", "Acts"]
    assert "self.add_module(\"0\", Unit())" in source and "UnitTanh(8, 6)" in source
    check_source(spec, source)


def test_identical_uses_share_a_class_and_runs_of_copies_are_a_loop():
    source = generate(netspec.load(ROOT / "specs" / "vit_tiny.yaml"))
    assert "    def __init__(self) -> None:" in source.split("class EncoderBlock(nn.Module):")[1]
    assert "*[EncoderBlock() for _ in range(6)],  # each 65×192 · 444,864 params" in source
    assert "x = self.layers(x)  # 65×192 · 2,669,184 params" in source
    resnet152 = generate(netspec.load(ROOT / "specs" / "resnet152.yaml"))
    assert "*[Bottleneck(1024, 256) for _ in range(35)]" in resnet152


def test_a_group_of_layers_in_sequence_is_a_sequential():
    source = generate(netspec.load(ROOT / "specs" / "vgg16.yaml"))
    assert "        self.features = nn.Sequential(\n" \
        "            nn.Conv2d(3, 64, kernel_size=3, padding=1),  # 64×224×224 · 1,792 params\n" \
        "            nn.ReLU(),  # 64×224×224\n" in source
    assert "x = self.features(x)  # 512×7×7 · 14,714,688 params" in source
    assert "x = self.classifier(x)  # 1000 · 123,642,856 params" in source


def test_block_arguments_that_differ_become_constructor_parameters():
    source = generate(netspec.load(ROOT / "specs" / "unet.yaml"))
    assert "    def __init__(self, in_channels: int, width: int) -> None:" in source
    assert "self.conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False)" in source
    assert "self.dec2 = DoubleConv(64, 32)" in source
    assert "enc2 = self.enc2(x)  # 32×32×32 · 13,952 params" in source
    assert "x = torch.cat([x, enc2], dim=1)  # 64×32×32" in source
    resnet50 = generate(netspec.load(ROOT / "specs" / "resnet50.yaml"))
    assert "self.conv3 = nn.Conv2d(width, width * 4, kernel_size=1, bias=False)" in resnet50


def test_layers_named_by_position_are_reached_by_name_when_stateless():
    """An unnamed parameter-free layer among named ones takes its op's name (no state_dict key changes); one
    holding state keeps its number, the key build gives it."""
    source = generate(netspec.load(ROOT / "specs" / "cnn_digits.yaml"))
    assert "self.relu = nn.ReLU()" in source and "self.relu_1 = nn.ReLU()" in source
    assert "x = self.relu(x)  # 16×8×8" in source and "x = self.maxpool2d_1(x)  # 32×2×2" in source
    spec = netspec.loads("""
name: numbered
input: [4]
layers:
  - linear: 8
    name: fc
  - linear: 3
""")
    source = generate(spec)
    assert 'self.add_module("1", nn.Linear(8, 3))' in source and 'x = self.get_submodule("1")(x)' in source
    check_source(spec, source)


def test_several_outputs_return_a_dict_and_fan_out_is_named():
    source = generate(netspec.load(ROOT / "specs" / "vae.yaml"))
    assert "def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:" in source
    assert "hidden = self.hidden(x)  # 400" in source
    assert "x = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # 20" in source
    assert 'return {"recon": recon, "mu": mu, "logvar": logvar}' in source


PAIR = textwrap.dedent(SIAMESE).replace("outputs: [ea, eb]", "outputs: [ea, eb, pair]") + """\
  - pair: {width: 4}
    from: [ea, eb]
    name: pair
blocks:
  pair:
    inputs: [left, right]
    args: {width: int}
    layers:
      - concat: [left, right]
      - linear: $width
        name: fc
"""


def test_shared_weights_and_blocks_of_several_inputs():
    spec = netspec.loads(PAIR)
    source = generate(spec)
    assert "ea = self.ea(a)  # 8 · 40 params" in source and "eb = self.ea(b)  # 8" in source
    assert "def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:" in source
    assert "pair = self.pair(ea, eb)  # 4 · 68 params" in source
    check_source(spec, source)


def test_init_and_freezing_are_written_out():
    spec = netspec.loads("""
name: tuned
input: [4]
init: {normal: {std: 0.02}}
layers:
  - name: features
    frozen: true
    layers:
      - linear: 8
      - relu
      - linear: 8
  - linear: 2
    name: head
    init: zeros
""")
    source = generate(spec)
    assert "nn.init.normal_(self.features[0].weight, std=0.02)" in source
    assert "nn.init.zeros_(self.features[0].bias)" in source
    assert "nn.init.zeros_(self.head.weight)" in source
    assert "self.features.requires_grad_(False)" in source
    check_source(spec, source)


def test_tracebacks_point_at_the_generated_file(tmp_path):
    spec = netspec.load(ROOT / "specs" / "cnn_digits.yaml")
    file = write(spec, tmp_path)
    model = load_module(file, spec)()
    with pytest.raises(RuntimeError) as info:
        model(torch.randn(2, 3, 8, 8))  # 3 channels where conv1 takes 1
    frames = [f for f in traceback.extract_tb(info.tb) if f.filename == str(file)]
    assert frames and frames[-1].line.startswith("x = self.conv1(x)")


def test_cli_compile_writes_the_file_and_reports_errors(tmp_path):
    out = tmp_path / "lenet.py"
    run = subprocess.run([sys.executable, "-m", "netspec", "compile", str(ROOT / "specs" / "lenet5.yaml"),
                          "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "class Lenet5(nn.Module):" in out.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninput: [4]\nlayers:\n  - linear: 2\n    init: kaiming\n")
    run = subprocess.run([sys.executable, "-m", "netspec", "compile", str(bad), "-o", str(tmp_path / "x.py")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1
    assert f"{bad}:5:11: error:" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "x.py").exists()


def test_the_chain_variable_never_overwrites_a_value_still_needed():
    spec = netspec.loads("""
name: two
inputs:
  x: [4]
  h: [4]
layers:
  - linear: 4
    from: x
    name: a
  - add: [a, h]
  - linear: 4
""")
    source = generate(spec)
    assert "def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:" in source
    assert "x = self.a(x)  # 4 · 20 params\n        x = x + h  # 4" in source
    check_source(spec, source)


def test_generated_code_refers_only_to_globals_no_name_can_take():
    """`forward`'s free names (torch, getattr, float, ...) are TAKEN_NAMES: no input, layer or variable
    shadows them."""
    from netspec.spec import TAKEN_NAMES

    free = set()
    for path in SPECS:
        tree = ast.parse(generate(load_valid(path)[0]))
        for forward in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "forward"):
            body = [n for stmt in forward.body for n in ast.walk(stmt) if isinstance(n, ast.Name)]
            bound = {a.arg for a in forward.args.args} | {n.id for n in body if isinstance(n.ctx, ast.Store)}
            free |= {n.id for n in body if n.id not in bound}
    assert "torch" in free
    assert free <= TAKEN_NAMES


def test_the_init_rule_is_the_same_in_the_generated_file():
    """A 2-d norm scale keeps torch's ones and a class token named `bias_*` is no bias, as in build."""
    spec = netspec.loads("""
name: tokens
input: [4, 4]
init: xavier_normal
layers:
  - layernorm: [4, 4]
    name: norm
  - class_token:
    name: bias_tok
  - linear: 4
    name: fc
""")
    source = generate(spec)
    assert "self.norm.weight" not in source and "nn.init.zeros_(self.norm.bias)" not in source
    assert "nn.init.xavier_normal_(self.bias_tok)" in source and "nn.init.zeros_(self.fc.bias)" in source
    check_source(spec, source)


def test_a_container_layer_is_written_member_by_member():
    """Swin's attention holds modules, a parameter, an index buffer and a plain attribute: the file builds
    them in build's order (same weights from one seed, the buffer in the state_dict) and computes the same,
    padding, shifted windows and dropout included."""
    spec = netspec.loads("""
name: tiny_swin
input: [3, 26, 22]
layers:
  - conv2d: {out_channels: 8, kernel_size: 2, stride: 2}
  - permute: [1, 2, 0]
  - shifted_window_attention: {heads: 2, window: [4, 3], shift: [2, 1], attention_dropout: 0.1, dropout: 0.1}
    name: attn
  - patch_merging:
    name: merge
  - shifted_window_attention: {heads: 4, window: 5, shift: 2}
  - layer_scale
""")
    source = generate(spec)
    assert 'self.attn.register_buffer("relative_position_index",' in source
    assert "self.attn.relative_position_bias_table = nn.Parameter(torch.zeros(35, 2))" in source
    assert "self.attn.input_shape = (13, 11, 8)" in source
    assert source.index("self.merge.reduction = nn.Linear(32, 16, bias=False)") < source.index("self.merge.norm")
    lint = subprocess.run([*RUFF, "--stdin-filename", "model.py", "-"], input=source, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    check_source(spec, source)
    assert "attn.relative_position_index" in build(spec).state_dict()


def test_the_parts_of_a_chunk_and_a_split_are_written_as_torch_indexes_them():
    spec = netspec.loads(textwrap.dedent(PARTS))
    source = generate(spec)
    assert ".chunk(2, dim=1)[1]" in source and ".split([1, 3], dim=2)[0]" in source
    check_source(spec, source)

"""netspec.codegen and `netspec compile`: a standalone, lint-clean file that imports only torch, whose
module has build's state_dict keys, the same weights from the same seed, and the same outputs."""

from __future__ import annotations

import ast
import importlib.util
import py_compile
import subprocess
import sys
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
    """Same seed, same weights; the built module's state_dict loads strictly; identical outputs."""
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
        assert same(generated(**x), expected)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_spec_compiles_to_an_equivalent_lint_clean_file(path, tmp_path):
    spec, result = load_valid(path)
    file = write(spec, tmp_path)
    py_compile.compile(str(file), doraise=True)
    lint = subprocess.run([*RUFF, str(file)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
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
    namespace: dict = {}
    exec(compile(source, "model.py", "exec"), namespace)
    check_equivalent(spec, namespace[class_name(spec.name)])


def test_imports_only_torch():
    tree = ast.parse(generate(netspec.load(ROOT / "specs" / "vit_tiny.yaml")))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"torch"}


def test_forward_is_one_annotated_line_per_layer():
    spec = netspec.load(ROOT / "specs" / "resnet18.yaml")
    source = generate(spec)
    forward = source.split("def forward(self, input: torch.Tensor) -> torch.Tensor:\n")[1].splitlines()
    body = [line.strip() for line in forward if line.strip() and not line.strip().startswith("return")]
    assert len(body) == len(netspec.build_graph(spec).nodes)
    assert "x = self.layer1[0].conv1(maxpool)  # 64×56×56 · 36,864 params" in body
    assert "x = self.layer2[0].downsample[0](layer1_1_relu2)  # 128×28×28 · 8,192 params" in body
    assert "self.layer1 = nn.ModuleList()" in source
    assert "x = self.layer1[0].relu1(x)  # 64×56×56" in body


def test_layers_named_by_position_are_reached_by_their_number():
    source = generate(netspec.load(ROOT / "specs" / "cnn_digits.yaml"))
    assert 'setattr(self, "1", nn.ReLU())' in source
    assert 'x = getattr(self, "1")(x)  # 16×8×8' in source


def test_several_outputs_return_a_dict_and_fan_out_is_named():
    source = generate(netspec.load(ROOT / "specs" / "vae.yaml"))
    assert "def forward(self, input: torch.Tensor) -> dict[str, torch.Tensor]:" in source
    assert "hidden = self.hidden(x)  # 400" in source
    assert "x = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # 20" in source
    assert 'return {"recon": recon, "mu": mu, "logvar": logvar}' in source


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
    namespace: dict = {}
    exec(compile(source, "tuned.py", "exec"), namespace)
    check_equivalent(spec, namespace["Tuned"])


def test_tracebacks_point_at_the_generated_file(tmp_path):
    spec = netspec.load(ROOT / "specs" / "cnn_digits.yaml")
    file = write(spec, tmp_path)
    model = load_module(file, spec)()
    with pytest.raises(RuntimeError) as info:
        model(torch.randn(2, 3, 8, 8))  # 3 channels where conv1 takes 1
    frames = [f for f in traceback.extract_tb(info.tb) if f.filename == str(file)]
    assert frames and frames[-1].line.startswith("x = self.conv1(input)")


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


def test_the_chain_variable_never_overwrites_an_input():
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
    forward = source.split("def forward(")[1]
    assert "\n        x = " not in forward and "\n        h = " not in forward
    namespace: dict = {}
    exec(compile(source, "two.py", "exec"), namespace)
    check_equivalent(spec, namespace["Two"])


def test_generated_code_refers_only_to_globals_no_name_can_take():
    """`forward`'s free names (torch, getattr, float, ...) are TAKEN_NAMES: no input, layer or variable
    shadows them."""
    from netspec.spec import TAKEN_NAMES

    free = set()
    for path in SPECS:
        tree = ast.parse(generate(load_valid(path)[0]))
        forward = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "forward")
        body = [n for stmt in forward.body for n in ast.walk(stmt) if isinstance(n, ast.Name)]
        bound = {a.arg for a in forward.args.args} | {n.id for n in body if isinstance(n.ctx, ast.Store)}
        free |= {n.id for n in body if n.id not in bound}
    assert {"torch", "getattr"} <= free
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
    namespace: dict = {}
    exec(compile(source, "tokens.py", "exec"), namespace)
    check_equivalent(spec, namespace["Tokens"])

"""Gradient monitoring (netspec/train/grads.py): grad_norms.csv and .png, and the vanishing/exploding warnings."""

import math

import pytest
import torch

import netspec
from netspec.train.grads import EXPLODE, VANISH, GradMonitor, layer_of
from netspec.train.loop import Trainer
from tests.train.harness import PNG, rows, setup, spec_of, write_spec

TRAIN = {"epochs": 3, "batch_size": 10}  # 40 train samples: 4 steps per epoch


def test_each_epoch_logs_every_layers_gradient_norm(tmp_path):
    run = netspec.train(write_spec(tmp_path, TRAIN), out=tmp_path / "run", progress=False)
    grads = rows(run.path / "grad_norms.csv")
    assert [(g["epoch"], g["step"]) for g in grads] == [("1", "4"), ("2", "8"), ("3", "12")]
    assert list(grads[0]) == ["epoch", "step", "fc1", "fc2"]
    assert all(0 < float(g[layer]) < EXPLODE for g in grads for layer in ("fc1", "fc2"))
    assert (run.path / "grad_norms.png").read_bytes().startswith(PNG)
    assert "warning" not in (run.path / "log.txt").read_text()


def test_the_logged_norm_is_the_raw_gradient_before_clipping(tmp_path):
    s = setup(spec_of(tmp_path, {**TRAIN, "epochs": 1, "clip_grad_norm": 1e-3}), tmp_path / "run")
    raw, clipped = [], []
    record, step = s.grads.record, s.optimizer.step

    def recording():
        raw.append(math.hypot(float(s.model.fc1.weight.grad.norm()), float(s.model.fc1.bias.grad.norm())))
        return record()

    def stepping(*args, **kw):
        clipped.append(math.sqrt(sum(float(p.grad.norm()) ** 2 for p in s.model.parameters())))
        return step(*args, **kw)

    s.grads.record, s.optimizer.step = recording, stepping
    Trainer(s).fit()
    assert len(raw) == 1 and raw[0] > 0.01 and clipped[-1] == pytest.approx(1e-3, rel=1e-3)
    assert s.run.grads[0]["fc1"] == raw[0]


def test_every_n_steps(tmp_path):
    run = netspec.train(write_spec(tmp_path, {**TRAIN, "grad_norms_every": 3}), out=tmp_path / "run",
                        progress=False)
    assert [g["step"] for g in rows(run.path / "grad_norms.csv")] == ["3", "6", "9", "12"]


def test_a_vanishing_gradient_is_named_once(tmp_path):
    layers = [{"linear": 16, "name": "fc1"}, "relu", {"linear": 4, "name": "fc2", "init": "zeros"}]
    run = netspec.train(write_spec(tmp_path, {**TRAIN, "grad_norms_every": 1}, layers=layers),
                        out=tmp_path / "run", progress=False)
    log = (run.path / "log.txt").read_text()
    # fc2's zero weights pass no gradient back at the first step; fc2 then learns and fc1's gradient returns
    assert log.count("warning") == 1
    assert "step 1: warning: the gradient of `fc1` is vanishing: gradient norm 0 against weights of norm" in log
    assert float(rows(run.path / "grad_norms.csv")[0]["fc1"]) == 0


def test_an_exploding_gradient_is_named_once():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    monitor = GradMonitor(model, ["0", "1"])
    for p in model.parameters():
        p.grad = torch.full_like(p, 1.0)
    model[1].weight.grad.fill_(1e4)
    norms, warnings = monitor.record()
    assert norms["0"] == pytest.approx(math.sqrt(12)) and norms["1"] == pytest.approx(math.sqrt(3 * 1e8 + 1))
    assert warnings == [f"warning: the gradient of `1` is exploding: gradient norm 1.73e+04 (above {EXPLODE:g}); "
                        "lower the lr, or set clip_grad_norm"]
    assert monitor.record()[1] == []  # once per layer and kind
    model[0].weight.requires_grad_(False)
    model[0].bias.requires_grad_(False)
    assert math.isnan(monitor.record()[0]["0"])  # frozen now


def test_a_gradient_small_against_its_weights_vanishes():
    model = torch.nn.Linear(2, 2, bias=False)
    monitor = GradMonitor(model, [""])
    with torch.no_grad():
        model.weight.fill_(100.0)  # norm 200
    model.weight.grad = torch.full_like(model.weight, VANISH * 90)  # norm 180 · VANISH: 0.9 × the weights'
    assert monitor.record()[1] and monitor.warned == {("weight", "vanishing")}


def test_parameters_belong_to_their_layers():
    layers = {"layer1.0.conv1", "attn", "cls"}
    assert layer_of("layer1.0.conv1.weight", layers) == "layer1.0.conv1"
    assert layer_of("attn.out_proj.weight", layers) == "attn"
    assert layer_of("cls", layers) == "cls"


def test_a_resumed_run_keeps_its_rows(tmp_path):
    spec = write_spec(tmp_path, TRAIN)
    netspec.train(spec, epochs=2, out=tmp_path / "run", progress=False)
    run = netspec.train(spec, resume=tmp_path / "run", progress=False)
    assert [g["step"] for g in rows(run.path / "grad_norms.csv")] == ["4", "8", "12"]

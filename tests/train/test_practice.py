"""The sanity checks of netspec/train/practice.py: the LR range test (and `lr: auto`), overfitting one batch,
and the layer-by-layer gradient check."""

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import netspec
from netspec.errors import SpecError, SpecErrors
from netspec.layers import REGISTRY
from netspec.layers.base import Layer, register
from netspec.train import checkpoint
from netspec.train.practice import (
    GRAD_MAX_MACS,
    GRAD_MAX_PARAMS,
    _verdict,
    gradcheck,
    lr_find,
    lr_range_test,
    overfit_batch,
)
from tests.train.harness import MLP, only_error, same, setup, spec_of, weights, write_spec

SPECS = sorted(Path("specs").glob("*.yaml"))
TRAINABLE = [p for p in SPECS if "train" in yaml.safe_load(p.read_text(encoding="utf-8"))]
SMALL_MNIST1D = {"data.dataset": {"mnist1d": {"num_samples": 500}}}  # one batch is all a check uses


def copy_spec(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copy(Path("specs") / f"{name}.yaml", tmp_path / f"{name}.yaml"))


# --- LR range test -------------------------------------------------------------------------------------------


def test_lr_find_suggests_an_lr_that_trains_mlp_digits_to_96_percent(tmp_path):
    spec = copy_spec(tmp_path, "mlp_digits")
    result = lr_find(spec, out=tmp_path / "lr")
    assert result.passed and result.exit_code == 0, result.line()
    assert {p.name for p in (tmp_path / "lr").iterdir()} == {"lr_find.csv", "lr_find.json", "lr_find.png"}
    assert result.files == [tmp_path / "lr" / name for name in ("lr_find.csv", "lr_find.json", "lr_find.png")]
    rows = list(csv.DictReader(open(tmp_path / "lr" / "lr_find.csv")))
    assert list(rows[0]) == ["step", "lr", "loss", "smoothed_loss"] and float(rows[0]["lr"]) == pytest.approx(1e-7)
    lrs = [float(r["lr"]) for r in rows]
    assert all(b > a for a, b in zip(lrs, lrs[1:]))  # rising exponentially
    assert result.suggested_lr < result.lowest_lr < result.diverged_lr  # it diverged before 10
    assert 3e-4 <= result.suggested_lr <= 3e-2, result.line()
    assert json.loads((tmp_path / "lr" / "lr_find.json").read_text())["suggested_lr"] == result.suggested_lr
    run = netspec.train(spec, lr=result.suggested_lr, out=tmp_path / "run", progress=False)
    assert run.summary["test_accuracy"] >= 0.96


def test_the_range_test_restores_weights_optimizer_and_random_state(tmp_path):
    s = setup(spec_of(tmp_path, {"optimizer": {"sgd": {"lr": 0.1, "momentum": 0.9}}, "batch_size": 10}),
              tmp_path / "run")
    before, optimizer, rng = weights(s.model), s.optimizer.state_dict(), torch.get_rng_state()
    result = lr_range_test(s, steps=30)
    assert len(result.lrs) > 3
    assert same(weights(s.model), before) and s.step == 0
    assert s.optimizer.state_dict() == optimizer  # no momentum buffers, lr 0.1 again
    assert torch.equal(torch.get_rng_state(), rng)


def test_lr_auto_trains_exactly_like_the_lr_it_chose_and_resumes_with_it(tmp_path):
    auto = write_spec(tmp_path, {"optimizer": {"adam": "auto"}, "epochs": 2, "batch_size": 10}, name="auto")
    run = netspec.train(auto, out=tmp_path / "auto", progress=False)
    lr = run.summary["lr_find"]["suggested_lr"]
    assert {"lr_find.csv", "lr_find.json", "lr_find.png"} <= {p.name for p in run.path.iterdir()}
    assert f"lr: auto -> {lr:.3g}" in (run.path / "log.txt").read_text()
    assert [float(r["lr"]) for r in csv.DictReader(open(run.path / "steps.csv"))] == [pytest.approx(lr, 1e-5)] * 8
    fixed = write_spec(tmp_path, {"optimizer": {"adam": lr}, "epochs": 2, "batch_size": 10}, name="fixed")
    plain = netspec.train(fixed, out=tmp_path / "fixed", progress=False)
    assert same(weights(run.path / "last.pt"), weights(plain.path / "last.pt"))  # the test left no trace
    resumed = netspec.train(auto, epochs=3, resume=run.path, progress=False)
    assert resumed.summary["lr_find"]["suggested_lr"] == lr
    assert checkpoint.load(run.path / "last.pt")["optimizer"]["param_groups"][0]["lr"] == lr


@pytest.mark.parametrize("optimizer", ["{sgd: auto}", "{adamw: {lr: auto, weight_decay: 0.1}}", "{rmsprop: auto}"])
def test_every_optimizer_takes_lr_auto(tmp_path, optimizer):
    spec = spec_of(tmp_path, {"optimizer": yaml.safe_load(optimizer)})
    netspec.train.config.validate_train(spec, netspec.analyze(spec))


def test_a_misspelt_auto_is_a_located_error(tmp_path):
    spec = spec_of(tmp_path, {"optimizer": {"adam": {"lr": "atuo"}}})
    with pytest.raises((SpecError, SpecErrors)) as exc:
        netspec.train.config.parse_train(spec)
    err = only_error(exc.value)
    assert err.path == ("train", "optimizer", "adam", "lr") and "a valid number or 'auto'" in err.message


def test_the_range_test_fails_when_the_loss_never_falls():
    lrs = list(np.geomspace(1e-7, 10, 50))
    result = _verdict("flat", lrs, [2.3] * 50, [2.3 - 1e-3 * i / 50 for i in range(50)], None, {})
    assert result.status == "fail" and result.exit_code == 1
    assert "never fell 10% below its start" in result.reason and "nothing learns" in result.reason


def test_the_range_test_fails_on_too_few_steps_whether_or_not_it_diverged():
    result = _verdict("short", [1e-3, 1e-2], [2.3, 2.2], [2.3, 2.25], None, {})  # steps=2, no divergence
    assert result.status == "fail" and result.reason == "2 steps are too few: the test needs 3 at least"
    result = _verdict("short", [1.0], [2.3], [2.3], 3.0, {})
    assert result.reason == "the loss diverged after 1 steps, at lr 3: start lower"


# --- overfitting one batch -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", TRAINABLE, ids=[p.stem for p in TRAINABLE])
def test_every_trainable_spec_overfits_one_batch(path):
    result = overfit_batch(path, overrides=SMALL_MNIST1D if "mnist1d" in path.stem else None)
    assert result.passed, result.line()
    assert result.losses[-1] <= result.threshold < result.losses[0] and result.samples == 32
    assert result.line().startswith(f"{path.stem}: overfit-batch passed: ")


def test_a_vae_is_judged_on_its_reconstruction_against_its_floor():
    result = overfit_batch("specs/vae.yaml", n=8)
    assert result.passed, result.line()
    # the bce of grey levels against themselves: their entropy, which no output goes below
    assert 200 < result.floor < result.threshold == pytest.approx(result.floor + 0.05 * (result.losses[0]
                                                                                         - result.floor))
    assert "`bce` fell from" in result.reason and "95% of the way to its floor" in result.reason


@pytest.mark.parametrize("how", ["frozen", "freeze"])
def test_a_network_whose_gradients_are_cut_fails(tmp_path, how):
    if how == "frozen":
        spec = spec_of(tmp_path, {}, layers=[{**layer, "frozen": True} if isinstance(layer, dict) else layer
                                             for layer in MLP])
        expected = "nothing to train: every layer with parameters is frozen (`frozen: true`)"
    else:
        spec = spec_of(tmp_path, {"freeze": ["*"]})
        expected = "nothing to train: `freeze` freezes every trainable layer (fc1, fc2)"
    result = overfit_batch(spec)
    assert result.status == "fail" and result.exit_code == 1 and result.reason.startswith(expected)


def test_a_loss_that_does_not_fall_far_enough_fails(tmp_path):
    result = overfit_batch(spec_of(tmp_path, {}), n=8, steps=3)
    assert result.status == "fail" and result.steps == 3 and len(result.losses) == 4
    assert "in 3 steps on 8 samples, not (≤ 0.05)" in result.reason
    assert overfit_batch(spec_of(tmp_path, {}), n=8, lr=1e-9).status == "fail"  # an lr far too low


def test_label_smoothing_raises_the_class_bar_by_its_floor(tmp_path):
    """With label smoothing ε the cross-entropy cannot fall below the smoothed targets' entropy (0.2824 for
    ε = 0.05 over 10 classes, above the plain bar of 0.05): the check passes 0.05 above that floor."""
    eps, classes = 0.1, 4
    q = [1 - eps + eps / classes] + [eps / classes] * (classes - 1)
    entropy = -sum(p * math.log(p) for p in q)  # the floor, from its definition
    result = overfit_batch(spec_of(tmp_path, {"loss": {"cross_entropy": {"label_smoothing": eps}}}), n=8)
    assert result.passed, result.line()
    assert result.floor == pytest.approx(entropy, rel=1e-5) and result.threshold == pytest.approx(entropy + 0.05)
    assert result.losses[-1] <= result.threshold and min(result.losses) >= entropy - 1e-5
    assert "0.05 above its floor 0.3488, with label smoothing" in result.reason


def test_a_regression_loss_must_fall_to_five_percent(tmp_path):
    spec = spec_of(tmp_path, {"loss": [{"mse": {}, "target": "x"}]},  # an autoencoder of the raw inputs
                   layers=[{"linear": 16, "name": "fc1"}, "relu", {"linear": 8, "name": "fc2"}])
    result = overfit_batch(spec, n=8)
    assert result.passed, result.line()
    assert result.floor == 0 and result.threshold == pytest.approx(0.05 * result.losses[0])
    assert result.losses[-1] <= result.threshold


def test_a_huge_network_is_skipped_with_its_size():
    result = overfit_batch("specs/resnet18.yaml")
    assert result.status == "skip" and result.exit_code == 0
    assert "MACs, over the cap of 1e+10" in result.reason


# --- gradient check ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_small_spec_passes_the_gradient_check(path):
    analysis = netspec.analyze(netspec.load(path))
    result = gradcheck(path)
    if analysis.total_params > GRAD_MAX_PARAMS or (analysis.macs or 0) > GRAD_MAX_MACS:
        assert result.status == "skip" and "over the cap" in result.reason
    else:
        assert result.passed, result.line()
        assert result.layers and not result.failures


class _WrongSquare(torch.autograd.Function):
    """y = x², with a backward that forgets the factor 2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x


def wrong_square(x):
    return _WrongSquare.apply(x)


@pytest.fixture
def wrong_square_layer():
    """A test-only layer type in the catalog, registered through its registration API and removed after."""

    class WrongSquare(Layer):
        """y = x², through a custom autograd Function whose backward is wrong. Example: `- wrong_square`"""

        op = "wrong_square"
        family = "activation"

        def forward(self, m, a, xs):
            x = xs[0]
            if isinstance(x, torch.fx.Proxy):  # building: record the call in the fx graph
                return x.tracer.create_proxy("call_function", wrong_square, (x,), {})
            return wrong_square(x)

    register(WrongSquare)
    yield
    del REGISTRY["wrong_square"]


def test_a_wrong_backward_fails_and_is_named(tmp_path, wrong_square_layer):
    spec = spec_of(tmp_path, {}, layers=[{"linear": 6, "name": "fc1"}, {"wrong_square": None, "name": "square"},
                                         {"linear": 4, "name": "fc2"}])
    result = gradcheck(spec)
    assert result.status == "fail" and result.exit_code == 1
    assert [c.name for c in result.failures] == ["square"] and len(result.layers) == 3
    assert result.reason == ("1 of 3 layers' gradients disagree: `square` (wrong_square): numerical and analytical "
                             "gradients differ with respect to its input")
    assert netspec.build(spec)(torch.ones(2, 8)).shape == (2, 4)  # the layer itself works


def test_symbolic_dims_are_bound_small(tmp_path):
    result = gradcheck("specs/lstm_classifier.yaml", dims={"T": 3})
    assert result.passed and "input [2, 3, 32]" in result.reason


@pytest.mark.parametrize("schedule", [{"cosine": {}, "warmup_epochs": 1}, {"one_cycle": {"max_lr": 0.5}}])
def test_the_practice_bench_trains_at_the_sections_lr_whatever_the_schedule(monkeypatch, schedule):
    """A warm-up (or one_cycle) moves the lr when its schedule is made: the checks' bench makes none, so
    overfit-batch steps at the lr it was given (it stepped at a tenth of it under a warm-up)."""
    import netspec.train.session as session

    made = []
    real = session.Setup.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(session.Setup, "__init__", spy)
    overfit_batch("specs/mlp_digits.yaml", 8, steps=1, lr=0.01, overrides={"schedule": schedule})
    (bench,) = made
    assert bench.schedule is None
    assert [g["lr"] for g in bench.optimizer.param_groups] == [0.01]

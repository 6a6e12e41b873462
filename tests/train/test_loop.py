"""The training loop (netspec/train/loop.py): augmentation, clipping, accumulation, early stopping, metrics,
divergence, precision, memory format and seeding, each through a small run."""

import pytest
import torch

import netspec
from netspec.cli import main
from netspec.errors import SpecError, SpecErrors
from netspec.train.loop import Diverged, EarlyStopping, Metrics, Trainer
from tests.train.harness import DIGITS_MLP, MLP, fit, only_error, rows, same, setup, spec_of, weights, write_spec

DIGITS = {"dataset": "digits"}
CNN = [{"conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1}, "name": "conv1"}, "relu",
       {"conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1}, "name": "conv2"}, "relu",
       "flatten", {"linear": 10, "name": "fc"}]


def inputs_seen(s) -> list[tuple[bool, torch.Tensor]]:
    """Hooks the model: (training?, input batch) of every forward call, in order."""
    seen = []
    s.model.register_forward_pre_hook(lambda module, args: seen.append((module.training, args[0].clone())))
    return seen


# --- augmentation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("augment", ["flip", "noise"])
def test_augmentation_changes_train_batches_only(tmp_path, augment):
    if augment == "flip":  # every image mirrored: train inputs are exactly the flipped images
        spec = spec_of(tmp_path, {"data": {**DIGITS, "augment": [{"random_horizontal_flip": 1.0}]}, "epochs": 1,
                                  "batch_size": 256}, layers=CNN, input=[1, 8, 8])
    else:
        spec = spec_of(tmp_path, {"data": {"dataset": {"synthetic": {"num_samples": 50, "classes": 4}},
                                           "augment": [{"gaussian_noise": 0.5}]}, "epochs": 1, "batch_size": 10})
    s = setup(spec, tmp_path / "run")
    seen = inputs_seen(s)
    Trainer(s).fit()
    train = [x for training, x in seen if training]
    evals = [x for training, x in seen if not training]
    plain = [s.splits.inputs(b)["input"] for b in s.batches(s.splits.train, shuffle=True, epoch=0)]
    assert len(train) == len(plain)
    for got, want in zip(train, plain):
        if augment == "flip":
            assert torch.equal(got, want.flip(-1)) and not torch.equal(got, want)
        else:
            noise = (got - want) * s.splits.stats["x"]["std"]  # back on the data's own scale
            assert not torch.equal(got, want) and float(noise.std()) == pytest.approx(0.5, rel=0.2)
    # evaluation after the epoch, then the final train/val/test evaluation: never augmented
    expected = [s.splits.inputs(b)["input"] for split in ("val", "train", "val", "test")
                for b in s.batches(getattr(s.splits, split), shuffle=False, epoch=0)]
    assert len(evals) == len(expected) and all(torch.equal(a, b) for a, b in zip(evals, expected))


# --- gradient clipping --------------------------------------------------------------------------------------


def grads_at_step(s) -> list[list[torch.Tensor]]:
    """Wraps the optimizer: the gradients it steps with, per step."""
    seen, step = [], s.optimizer.step

    def record(*args, **kw):
        seen.append([p.grad.clone() for g in s.optimizer.param_groups for p in g["params"]])
        return step(*args, **kw)

    s.optimizer.step = record
    return seen


@pytest.mark.parametrize("clip", ["clip_grad_norm", "clip_grad_value"])
def test_clipping_bounds_the_gradients(tmp_path, clip):
    bound = 0.05 if clip == "clip_grad_norm" else 1.0e-3
    s = setup(spec_of(tmp_path, {clip: bound, "optimizer": {"sgd": 0.1}, "epochs": 2, "batch_size": 10}),
              tmp_path / "run")
    seen = grads_at_step(s)
    Trainer(s).fit()
    assert len(seen) == 8
    for grads in seen:
        if clip == "clip_grad_norm":  # every raw norm is far above 0.05, so each is scaled down to it
            assert torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])) == pytest.approx(bound, rel=1e-5)
        else:
            biggest = max(g.abs().max() for g in grads)
            assert biggest == pytest.approx(bound)


# --- gradient accumulation ----------------------------------------------------------------------------------


def test_accumulated_micro_batches_step_like_one_big_batch(tmp_path):
    """150 train samples: 64 a batch is 64, 64, 22; 2 × 32 and 4 × 16 end in a short group of 1 and of 2
    micro-batches holding the same 22 samples."""
    data = {"dataset": {"synthetic": {"num_samples": 200, "classes": 4}}, "split": [0.75, 0.125, 0.125]}
    spec = spec_of(tmp_path, {"data": data, "optimizer": {"sgd": {"lr": 0.05, "momentum": 0.9}}, "epochs": 2,
                              "schedule": {"step": {"step_size": 1, "gamma": 0.5}}})
    runs = {(b, k): fit(spec, tmp_path / f"{b}x{k}", overrides={"batch_size": b, "accumulate_grad_batches": k})
            for b, k in ((64, 1), (32, 2), (16, 4))}
    one = runs[64, 1]
    for s in runs.values():
        assert s.step == 6 and s.schedule.main.last_epoch == 6
        for name, w in s.model.state_dict().items():
            torch.testing.assert_close(w, one.model.state_dict()[name], rtol=0, atol=2e-6)
        # the step's logged loss is its samples' mean, as one batch of 64 computes it
        assert [float(r["loss"]) for r in s.run.steps][-1] == pytest.approx(float(one.run.steps[-1]["loss"]),
                                                                          rel=1e-5)
    assert not same(weights(runs[32, 2].model), weights(fit(spec, tmp_path / "32", overrides={
        "batch_size": 32}).model))  # without accumulation: another result


# --- early stopping -----------------------------------------------------------------------------------------


def test_early_stopping_stops_after_patience_and_restores_the_best(tmp_path):
    # min_delta 100: only the first epoch counts as an improvement
    spec = spec_of(tmp_path, {"early_stopping": {"patience": 2, "min_delta": 100}, "epochs": 10, "batch_size": 10})
    s = fit(spec, tmp_path / "run")
    assert s.epoch == 3 and len(rows(s.run.path / "metrics.csv")) == 3
    assert s.stopper.should_stop and s.stopper.best_epoch == 0
    best, last = weights(s.run.path / "best.pt"), weights(s.run.path / "last.pt")
    assert torch.load(s.run.path / "best.pt", weights_only=True)["epoch"] == 1
    assert same(weights(s.model), best) and not same(best, last)
    assert "early stopping: val_loss has not improved for 2 epochs" in (s.run.path / "log.txt").read_text()


@pytest.mark.parametrize("restore", [True, False])
def test_best_weights_restored_at_the_end_of_a_full_run(tmp_path, restore):
    # mode max on a falling val_loss: the first epoch is the best and it never fires
    spec = spec_of(tmp_path, {"data": DIGITS, "optimizer": {"adam": 0.01}, "epochs": 3, "batch_size": 128,
                              "early_stopping": {"mode": "max", "patience": 100, "restore_best_weights": restore}},
                   layers=DIGITS_MLP, input=[64])
    s = fit(spec, tmp_path / "run")
    val = [float(r["val_loss"]) for r in rows(s.run.path / "metrics.csv")]
    assert s.epoch == 3 and not s.stopper.should_stop and val.index(max(val)) == 0
    best, last = weights(s.run.path / "best.pt"), weights(s.run.path / "last.pt")
    assert not same(best, last)
    assert same(weights(s.model), best if restore else last)
    assert s.final["val_loss"] == pytest.approx(val[0] if restore else val[-1], rel=1e-5)


def test_early_stopping_maximizes_accuracy_monitors(tmp_path):
    stopper = EarlyStopping("val_top3", patience=1)
    model = torch.nn.Linear(1, 1)
    assert stopper.mode == "max" and EarlyStopping("val_accuracy").mode == "max"
    assert [stopper.update(v, i, model) for i, v in enumerate([0.5, 0.6, 0.55])] == [True, True, False]
    assert stopper.should_stop and stopper.best == 0.6

    spec = spec_of(tmp_path, {"data": DIGITS, "optimizer": {"sgd": 0.5}, "epochs": 5, "batch_size": 256,
                              "early_stopping": {"monitor": "val_accuracy", "patience": 10}},
                   layers=DIGITS_MLP, input=[64])
    s = fit(spec, tmp_path / "run")
    accuracy = [float(r["val_accuracy"]) for r in rows(s.run.path / "metrics.csv")]
    best = accuracy.index(max(accuracy))
    assert best != accuracy.index(min(accuracy))
    assert torch.load(s.run.path / "best.pt", weights_only=True)["epoch"] == best + 1 == s.stopper.best_epoch + 1


# --- metrics ------------------------------------------------------------------------------------------------


def test_accuracy_and_topk_on_a_hand_checked_batch():
    scores = torch.tensor([[0.1, 0.5, 0.4, 0.0],   # label 2: 2nd best
                           [0.9, 0.05, 0.03, 0.02],  # label 0: best
                           [0.2, 0.3, 0.5, 0.0],   # label 0: 3rd best
                           [0.1, 0.2, 0.3, 0.4]])  # label 0: 4th best
    labels = torch.tensor([2, 0, 0, 0])
    metrics = Metrics([1, 2, 3])
    metrics.add(4, torch.tensor(2.0), {"ce": torch.tensor(2.0)}, scores, labels)
    metrics.add(2, torch.tensor(5.0), {"ce": torch.tensor(5.0)}, scores[1:3], labels[1:3])  # 1 of 2, both in top 3
    assert metrics.means("val") == pytest.approx({
        "val_loss": 3.0, "val_ce": 3.0, "val_accuracy": 2 / 6, "val_top2": 3 / 6, "val_top3": 5 / 6})


def test_accuracy_and_topk_columns_of_a_run(tmp_path):
    spec = spec_of(tmp_path, {"metrics": ["accuracy", "top3"], "epochs": 2, "batch_size": 10})
    s = fit(spec, tmp_path / "run")
    header = list(rows(s.run.path / "metrics.csv")[0])
    assert {"train_accuracy", "train_top3", "val_accuracy", "val_top3"} <= set(header)
    with torch.no_grad():  # the final evaluation, by hand
        s.model.eval()
        scores = s.model(s.splits.inputs(s.splits.test)["input"])
    y = s.splits.test["y"]
    assert s.final["test_accuracy"] == pytest.approx(float((scores.argmax(1) == y).float().mean()))
    assert s.final["test_top3"] == pytest.approx(float((scores.topk(3).indices == y[:, None]).any(1).float().mean()))


# --- divergence ---------------------------------------------------------------------------------------------

# sgd at 0.01 for an epoch, then at 1e8: the loss overflows early in epoch 2
EXPLODES = {"optimizer": {"sgd": 0.01}, "schedule": {"step": {"step_size": 1, "gamma": 1.0e+10}}, "epochs": 3,
            "batch_size": 10}


def test_a_non_finite_loss_stops_with_diverged(tmp_path):
    with pytest.raises(Diverged) as info:
        netspec.train(spec_of(tmp_path, EXPLODES), out=tmp_path / "run")
    exc = info.value
    assert exc.epoch == 1 and 4 < exc.step <= 8 and exc.checkpoint == str(tmp_path / "run" / "last.pt")
    assert torch.load(exc.checkpoint, weights_only=True)["epoch"] == 1
    assert "stopped: the loss is not finite at epoch 2" in (tmp_path / "run" / "log.txt").read_text()


def test_netspec_train_exits_1_with_a_hint_on_divergence(tmp_path, capsys):
    assert main(["train", str(write_spec(tmp_path, EXPLODES)), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "error: the loss is not finite at epoch 2, step" in err
    assert f"the last good checkpoint is {tmp_path / 'run' / 'last.pt'}" in err
    assert "hint: lower the learning rate (--lr)" in err and "Traceback" not in err


# --- precision and memory format ----------------------------------------------------------------------------


def output_dtypes(s, layer: str) -> list[torch.dtype]:
    seen = []
    s.model.get_submodule(layer).register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_mixed_precision_autocasts_and_scales(tmp_path, precision, dtype):
    s = setup(spec_of(tmp_path, {"precision": precision, "epochs": 1, "batch_size": 20}), tmp_path / "run")
    dtypes = output_dtypes(s, "fc1")
    final = Trainer(s).fit()
    assert set(dtypes) == {dtype}
    assert all(p.dtype == torch.float32 for p in s.model.parameters())
    assert s.scaler.is_enabled() == (precision == "fp16") and torch.isfinite(torch.tensor(final["test_loss"]))
    saved = torch.load(s.run.path / "last.pt", weights_only=True)["scaler"]
    assert ("scale" in saved) == (precision == "fp16")


def test_channels_last_runs_in_that_memory_format(tmp_path):
    spec = spec_of(tmp_path, {"data": DIGITS, "channels_last": True, "epochs": 1, "batch_size": 512},
                   layers=CNN, input=[1, 8, 8])
    s = setup(spec, tmp_path / "run")
    seen = []
    s.model.get_submodule("conv2").register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    Trainer(s).fit()
    assert seen and all(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() for x in seen)
    assert s.model.get_submodule("conv2").weight.is_contiguous(memory_format=torch.channels_last)


# --- seeding ------------------------------------------------------------------------------------------------


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    layers = [MLP[0], "relu", {"dropout": 0.3}, MLP[2]]  # dropout and noise draw from the seeded generators
    data = {"dataset": {"synthetic": {"num_samples": 50, "classes": 4}}, "augment": [{"gaussian_noise": 0.1}]}
    spec = spec_of(tmp_path, {"data": data, "deterministic": True, "epochs": 2, "batch_size": 10}, layers=layers)
    a, b, c = (weights(fit(spec, tmp_path / f"run{i}", overrides={"seed": seed}).model)
               for i, seed in enumerate((5, 5, 6)))
    assert same(a, b) and not same(a, c)
    assert torch.are_deterministic_algorithms_enabled()
    setup(spec, tmp_path / "free", overrides={"deterministic": False})  # a later run of the process need not be
    assert not torch.are_deterministic_algorithms_enabled()


def test_more_classes_than_scores_is_a_located_error_before_training(tmp_path):
    # synthetic data declares its class count only when loaded
    spec = spec_of(tmp_path, {"data": {"dataset": {"synthetic": {"num_samples": 50, "classes": 6}}}})
    with pytest.raises((SpecError, SpecErrors), match="the data has 6 classes but output `output` has 4") as info:
        setup(spec, tmp_path / "run")
    assert only_error(info.value).mark.line > 1 and not (tmp_path / "run").exists()

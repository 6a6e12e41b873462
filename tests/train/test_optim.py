"""Optimizers, parameter groups and lr schedules (netspec/train/optim.py), through real runs.

The runs train an MLP on 40 synthetic samples in batches of 10: 4 optimizer steps per epoch.
`steps.csv` logs the lr each step used, `metrics.csv` the lr of each epoch's last step.
"""

import math

import pytest
import torch

from netspec.errors import SpecError, SpecErrors
from netspec.train.loop import Trainer
from tests.train.harness import fit, only_error, rows, setup, spec_of

LR, SPE, EPOCHS = 0.1, 4, 5
STEPS = SPE * EPOCHS


def run(tmp_path, schedule, epochs=EPOCHS, **train):
    spec = spec_of(tmp_path, {"optimizer": {"sgd": {"lr": LR}}, "schedule": schedule, "epochs": epochs,
                              "batch_size": 10, **train})
    return fit(spec, tmp_path / "run")


def step_lrs(s) -> list[float]:
    logged = rows(s.run.path / "steps.csv")
    assert [int(r["step"]) for r in logged] == list(range(1, len(logged) + 1))
    return [float(r["lr"]) for r in logged]


def epoch_lrs(s) -> list[float]:
    return [float(r["lr"]) for r in rows(s.run.path / "metrics.csv")]


def epoch_of(step: int) -> int:
    """The 0-based epoch of 1-based optimizer step `step`."""
    return (step - 1) // SPE


def cosine(t: int, total: int, lr: float = LR, eta_min: float = 0.0) -> float:
    return eta_min + 0.5 * (lr - eta_min) * (1 + math.cos(math.pi * t / total))


def warm(step: int, warm_steps: int, start: float) -> float:
    """Linear warm-up: start·lr at the first step, rising by (1 − start)·lr / warm_steps a step."""
    return LR * (start + (1 - start) * (step - 1) / warm_steps)


def close(got, want):
    assert got == pytest.approx(want, rel=1e-4, abs=1e-9)


SCHEDULES = {  # schedule -> the lr of 1-based step s (5 epochs of 4 steps)
    "constant": ("constant", lambda s: LR),
    "step": ({"step": {"step_size": 2, "gamma": 0.5}}, lambda s: LR * 0.5 ** (epoch_of(s) // 2)),
    "multistep": ({"multistep": {"milestones": [1, 3], "gamma": 0.1}},
                  lambda s: LR * 0.1 ** sum(epoch_of(s) >= m for m in (1, 3))),
    "exponential": ({"exponential": 0.5}, lambda s: LR * 0.5 ** epoch_of(s)),
    "cosine": ({"cosine": {}}, lambda s: cosine(s - 1, STEPS)),
    "cosine_T_max": ({"cosine": {"T_max": 2, "eta_min": 0.01}}, lambda s: cosine(s - 1, 2 * SPE, eta_min=0.01)),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_sets_each_steps_lr(tmp_path, name):
    schedule, lr_at = SCHEDULES[name]
    s = run(tmp_path, schedule)
    close(step_lrs(s), [lr_at(step) for step in range(1, STEPS + 1)])
    close(epoch_lrs(s), [lr_at((e + 1) * SPE) for e in range(EPOCHS)])


def test_step_schedule_changes_lr_at_epoch_boundaries_only(tmp_path):
    lrs = step_lrs(run(tmp_path, {"step": 1}))  # gamma 0.1 after every epoch
    for epoch in range(EPOCHS):
        close(lrs[epoch * SPE:(epoch + 1) * SPE], [LR * 0.1 ** epoch] * SPE)


@pytest.mark.parametrize("name", [n for n in SCHEDULES if n != "cosine_T_max"])
def test_warmup_rises_linearly_then_hands_over(tmp_path, name):
    schedule, lr_at = SCHEDULES[name]
    schedule = {schedule: {}} if isinstance(schedule, str) else schedule
    s = run(tmp_path, {**schedule, "warmup_epochs": 1, "warmup_start_factor": 0.2})
    lrs = step_lrs(s)
    close(lrs[:SPE], [warm(step, SPE, 0.2) for step in range(1, SPE + 1)])
    after = [cosine(t, STEPS - SPE) for t in range(STEPS - SPE)] if name == "cosine" else \
        [lr_at(step) for step in range(1, STEPS - SPE + 1)]  # the schedule starts after the warm-up
    close(lrs[SPE:], after)


def test_warmup_steps_alone_is_constant_after(tmp_path):
    lrs = step_lrs(run(tmp_path, {"warmup_steps": 6}))
    close(lrs, [warm(step, 6, 0.1) if step <= 6 else LR for step in range(1, STEPS + 1)])


def one_cycle_reference(total: int, **kw) -> list[float]:
    """torch's OneCycleLR stepped `total` times: the lr each step used."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, total_steps=total, cycle_momentum=False, **kw)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_one_cycle_follows_torch_and_survives_its_last_step(tmp_path):
    s = run(tmp_path, {"one_cycle": {"max_lr": 0.5, "pct_start": 0.25}})
    close(step_lrs(s), one_cycle_reference(STEPS, max_lr=0.5, pct_start=0.25))
    assert s.step == STEPS and s.schedule.main.last_epoch == STEPS


def test_one_cycle_with_accumulation_counts_optimizer_steps(tmp_path):
    # 4 batches, 3 per step: 2 optimizer steps an epoch (the second a short group)
    s = run(tmp_path, {"one_cycle": {}}, epochs=3, accumulate_grad_batches=3)
    assert s.step == 6
    close(step_lrs(s), one_cycle_reference(6, max_lr=LR))


def test_one_cycle_refuses_a_warmup(tmp_path):
    with pytest.raises((SpecError, SpecErrors), match="own warm-up"):
        run(tmp_path, {"one_cycle": {}, "warmup_epochs": 1})


def test_reduce_on_plateau_cuts_lr_after_bad_epochs(tmp_path):
    # a threshold of 90 % makes every epoch after the first a bad one
    s = run(tmp_path, {"reduce_on_plateau": {"patience": 1, "factor": 0.5, "threshold": 0.9}}, epochs=6)
    # bad epochs 2, 3 (cut after 3), 4, 5 (cut after 5): torch's ReduceLROnPlateau, patience 1
    assert epoch_lrs(s) == pytest.approx([LR, LR, LR, LR / 2, LR / 2, LR / 4])
    lrs = step_lrs(s)
    assert lrs[3 * SPE:4 * SPE] == pytest.approx([LR / 2] * SPE)


def test_reduce_on_plateau_follows_an_accuracy_monitor_upwards(tmp_path):
    s = setup(spec_of(tmp_path, {"schedule": {"reduce_on_plateau": {"monitor": "val_accuracy"}}}), tmp_path / "r")
    assert s.schedule.main.mode == "max"


def test_reduce_on_plateau_with_warmup_waits_for_it(tmp_path):
    s = run(tmp_path, {"reduce_on_plateau": {"patience": 0, "factor": 0.5, "threshold": 0.9},
                       "warmup_epochs": 2}, epochs=5)
    lrs = epoch_lrs(s)
    close(lrs[:2], [warm(SPE, 2 * SPE, 0.1), warm(2 * SPE, 2 * SPE, 0.1)])
    # after the warm-up: epoch 3 at the full lr (the first value seen is the best), then halved after each
    close(lrs[2:], [LR, LR / 2, LR / 4])


# --- optimizers and parameter groups ------------------------------------------------------------------------


def test_param_groups_get_their_own_lr_and_weight_decay(tmp_path):
    spec = spec_of(tmp_path, {"optimizer": {"adam": {"lr": 1.0e-3, "weight_decay": 1.0e-4}},
                              "param_groups": [{"params": ["fc1"], "lr": 0.01, "weight_decay": 0.5},
                                               {"params": ["fc2.b*"], "weight_decay": 0.0}]})
    s = setup(spec, tmp_path / "r")
    model = dict(s.model.named_parameters())
    groups = s.optimizer.param_groups
    assert [[id(p) for p in g["params"]] for g in groups] == [
        [id(model["fc1.weight"]), id(model["fc1.bias"])], [id(model["fc2.bias"])], [id(model["fc2.weight"])]]
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [(0.01, 0.5), (1.0e-3, 0.0), (1.0e-3, 1.0e-4)]


def test_param_groups_keep_their_ratio_under_a_schedule(tmp_path):
    spec = spec_of(tmp_path, {"optimizer": {"sgd": {"lr": 0.1}}, "param_groups": [{"params": ["fc1.*"], "lr": 0.01}],
                              "schedule": {"step": {"step_size": 1, "gamma": 0.5}}, "epochs": 2, "batch_size": 10})
    s = fit(spec, tmp_path / "r")
    assert [g["lr"] for g in s.optimizer.param_groups] == pytest.approx([0.0025, 0.025])


OPTIMIZERS = {  # optimizer -> (torch class, hyperparameters in its param group, state it keeps per parameter)
    "sgd": ({"sgd": {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1.0e-3}}, torch.optim.SGD,
            {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1.0e-3}, "momentum_buffer"),
    "adam": ({"adam": {"lr": 0.01, "betas": [0.8, 0.99], "amsgrad": True}}, torch.optim.Adam,
             {"lr": 0.01, "betas": (0.8, 0.99), "amsgrad": True}, "max_exp_avg_sq"),
    "adamw": ({"adamw": {"lr": 3.0e-3, "weight_decay": 0.05}}, torch.optim.AdamW,
              {"lr": 3.0e-3, "weight_decay": 0.05}, "exp_avg"),
    "rmsprop": ({"rmsprop": {"lr": 1.0e-3, "alpha": 0.9, "momentum": 0.5, "centered": True}}, torch.optim.RMSprop,
                {"lr": 1.0e-3, "alpha": 0.9, "momentum": 0.5, "centered": True}, "grad_avg"),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_builds_with_its_arguments_and_steps(tmp_path, name):
    choice, cls, hyper, state_key = OPTIMIZERS[name]
    s = setup(spec_of(tmp_path, {"optimizer": choice, "epochs": 1, "batch_size": 10}), tmp_path / "r")
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    assert type(s.optimizer) is cls
    group = s.optimizer.param_groups[0]
    assert {k: group[k] for k in hyper} == hyper
    Trainer(s).fit()
    assert s.step == SPE
    assert all(not torch.equal(before[k], v) for k, v in s.model.state_dict().items())
    assert all(state_key in s.optimizer.state[p] for p in group["params"])


def test_nesterov_without_momentum_is_a_located_error(tmp_path):
    with pytest.raises((SpecError, SpecErrors), match="nesterov") as info:
        setup(spec_of(tmp_path, {"optimizer": {"sgd": {"lr": 0.1, "nesterov": True}}}), tmp_path / "r")
    error = only_error(info.value)
    assert error.mark is not None and error.path[:3] == ("train", "optimizer", "sgd")

"""`netspec sweep`: trials in parallel processes, one run folder each, ranked by the monitored metric
(netspec/train/sweep.py)."""

import csv
import json
import multiprocessing
import os
import signal
import time

import pytest
import yaml

import netspec
from netspec.train import sweep as sweep_module
from netspec.train.config import parse_train
from tests.cli.helpers import SPECS, call
from tests.train.harness import write_spec

LRS = [1e-4, 1e-3, 1e-2]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_grid_over_three_learning_rates_on_mlp_digits(tmp_path, capsys):
    out = tmp_path / "sweep"
    code, printed, err = call(capsys, "sweep", SPECS / "mlp_digits.yaml", "--grid",
                              "optimizer.adam.lr=" + ",".join(map(str, LRS)), "--jobs", "2", "--epochs", "2",
                              "--out", out)
    assert code == 0, err
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["trial-000", "trial-001", "trial-002"]
    # each trial is a run of its own, with its lr and the sweep's epochs, judged from its own summary.json
    summaries = {f: json.loads((out / f / "summary.json").read_text()) for f in folders}
    lrs = {f: yaml.safe_load((out / f / "spec.yaml").read_text())["train"]["optimizer"]["adam"]["lr"] for f in folders}
    assert sorted(lrs.values()) == LRS and all(s["epochs_run"] == 2 for s in summaries.values())
    assert all(s["monitor"] == "val_loss" for s in summaries.values())
    ranked = sorted(folders, key=lambda f: summaries[f]["best_value"])
    table = rows(out / "results.csv")
    assert [r["trial"] for r in table] == ranked and [r["rank"] for r in table] == ["1", "2", "3"]
    assert [float(r["optimizer.adam.lr"]) for r in table] == [lrs[f] for f in ranked]
    assert [float(r["val_loss"]) for r in table] == pytest.approx([summaries[f]["best_value"] for f in ranked],
                                                                 rel=1e-5)
    assert all(r["status"] == "done" and r["reason"] == "" for r in table)
    # printed: a line per trial as it ends, the table best first, the best trial
    lines = printed.splitlines()
    assert sorted(lines[:3]) == [f"{f} optimizer.adam.lr={lrs[f]}: val_loss {summaries[f]['best_value']:.4g}"
                                 for f in folders]
    assert lines[3].split() == ["rank", "trial", "optimizer.adam.lr", "val_loss", "test_loss", "test_accuracy",
                                "status"]
    assert [line.split()[1] for line in lines[4:7]] == ranked
    assert lines[7].startswith(f"best: {ranked[0]} (val_loss ")
    record = json.loads((out / "results.json").read_text())
    assert record["best"] == {"trial": ranked[0], "params": {"optimizer.adam.lr": lrs[ranked[0]]},
                              "val_loss": summaries[ranked[0]]["best_value"]}
    assert record["sampler"] == "grid" and record["jobs"] == 2 and record["fixed"] == {"epochs": 2}
    # the best spec is the winner's resolved spec: it validates and holds the winning lr
    assert call(capsys, "validate", out / "best.yaml")[0] == 0
    assert parse_train(netspec.load(out / "best.yaml")).optimizer.args.lr == lrs[ranked[0]]


def test_a_trial_that_fails_is_listed_last_and_the_others_go_on(tmp_path, capsys):
    spec = write_spec(tmp_path, {"epochs": 1})
    out = tmp_path / "sweep"
    code, printed, _ = call(capsys, "sweep", spec, "--grid", "clip_grad_norm=1.0", "--grid", "clip_grad_value=null,0.5",
                            "--out", out, "--jobs", "2")
    assert code == 0
    table = rows(out / "results.csv")
    assert [(r["rank"], r["clip_grad_value"], r["status"]) for r in table] == [("1", "", "done"),
                                                                            ("", "0.5", "failed")]
    assert "clip gradients by norm or by value, not both" in table[1]["reason"]
    assert f"{table[1]['trial']}: " in printed.splitlines()[-2]  # under the table, why it failed


def test_tpe_runs_the_trials_asked_for_and_ranks_by_the_spec_s_monitor(tmp_path, capsys):
    spec = write_spec(tmp_path, {"epochs": 2, "batch_size": 10,
                                 "early_stopping": {"monitor": "val_accuracy", "patience": 5}})
    out = tmp_path / "sweep"
    code, _, err = call(capsys, "sweep", spec, "--grid", "optimizer.adam.lr=0.001,0.01,0.1", "--sampler", "tpe",
                        "--trials", "2", "--jobs", "2", "--seed", "3", "--out", out, "-q")
    assert code == 0, err
    table = rows(out / "results.csv")
    assert len(table) == 2 and all(float(r["optimizer.adam.lr"]) in (0.001, 0.01, 0.1) for r in table)
    accuracies = [float(r["val_accuracy"]) for r in table]
    assert accuracies == sorted(accuracies, reverse=True)  # an accuracy: higher is better
    assert all(json.loads((out / r["trial"] / "summary.json").read_text())["steps"] == 8 for r in table)  # 2 × 4
    assert yaml.safe_load((out / "best.yaml").read_text())["train"]["seed"] == 3


def test_grid_values_are_checked_before_any_trial_runs(tmp_path, capsys):
    out = tmp_path / "sweep"
    code, _, err = call(capsys, "sweep", SPECS / "mlp_digits.yaml", "--grid", "optimizer.adam.lrr=1e-3",
                        "--grid", "batch_size=32,0", "--out", out)
    assert code == 2 and not out.exists()
    assert "mlp_digits.yaml:22:21: error: unknown adam argument `lrr`" in err
    assert "note: with the swept value optimizer.adam.lrr=0.001" in err and "hint: did you mean `lr`?" in err
    assert "note: with the swept value batch_size=0" in err and "batch_size=32" not in err
    assert err.endswith("2 errors\n")


@pytest.mark.parametrize("args, message", [
    (["--grid", "epochs=1,2", "--epochs", "3"], "`epochs` is both swept and set: drop one"),
    (["--grid", "epochs=1,2", "--sampler", "random"], "a random search needs a number of trials (the grid has 2"),
    (["--grid", "epochs=1,2", "--trials", "3"], "the grid has 2 combinations, fewer than the 3 trials asked for"),
    (["--grid", "epochs=1,1"], "--grid epochs lists 1 twice"),
    (["--grid", "epochs=1", "--grid", "epochs=2"], "--grid epochs is given twice"),
    (["--grid", "epochs"], "--grid takes KEY=V1,V2,..."),
    (["--grid", "epochs=[1"], "--grid epochs: invalid YAML"),
    (["--grid", "early_stopping.monitor=val_loss,train_loss"], "ranks the trials, so it cannot vary"),
    ([], "the following arguments are required: --grid"),
])
def test_sweep_usage_errors(tmp_path, capsys, args, message):
    code, _, err = call(capsys, "sweep", SPECS / "mlp_digits.yaml", "--out", tmp_path / "sweep", *args)
    assert code == 2 and "usage: netspec sweep" in err and message in err
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_folder_that_holds_files_or_cannot_be_made_is_refused_as_by_train(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("x")
    below_a_file = tmp_path / "old.txt" / "sweep"
    for out, message in [(tmp_path, f"{tmp_path} already holds files; choose another --out"),
                         (below_a_file, f"cannot create the folder {below_a_file}: ")]:
        code, _, err = call(capsys, "sweep", SPECS / "mlp_digits.yaml", "--grid", "epochs=1", "--out", out)
        assert code == 1 and err.startswith(f"netspec: error: {message}"), err
    assert list(tmp_path.iterdir()) == [tmp_path / "old.txt"]


def test_an_error_that_every_value_of_a_key_makes_is_reported_once(tmp_path, capsys):
    code, _, err = call(capsys, "sweep", SPECS / "mlp_digits.yaml", "--grid", "optimizer.adam.lrr=1e-3,1e-2",
                        "--grid", "epochs=a,b", "--out", tmp_path / "sweep")
    assert code == 2 and err.count("unknown adam argument `lrr`") == 1
    assert "note: with the swept values optimizer.adam.lrr=0.001, optimizer.adam.lrr=0.01" in err
    assert "got 'a'" in err and "got 'b'" in err and err.endswith("3 errors\n")  # these differ by the value


def training(out, futures) -> None:
    """Wait until the first trial's worker trains (its run folder has its spec.yaml), or a trial ended."""
    while not (out / "trial-000" / "spec.yaml").exists() and not any(f.done() for f in futures):
        time.sleep(0.05)


def test_ctrl_c_ends_the_workers_and_writes_the_results_so_far(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    workers = []

    def interrupt_while_training(futures, return_when):  # Ctrl-C, once the trial's worker is training
        training(out, futures)
        workers.extend(multiprocessing.active_children())
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "wait", interrupt_while_training)
    code, printed, err = call(capsys, "sweep", SPECS / "mlp_digits.yaml", "--grid", "epochs=500", "--out", out)
    assert code == 130 and workers and not any(w.is_alive() for w in workers)
    assert not (out / "trial-000" / "summary.json").exists()  # stopped, not waited for to its 500th epoch
    assert [(r["trial"], r["epochs"], r["status"]) for r in rows(out / "results.csv")] == [
        ("trial-000", "500", "interrupted")]
    assert printed.splitlines()[-1].split() == ["trial-000", "500", "interrupted"]
    assert err == f"netspec: error: interrupted: 0 of 1 trials finished; wrote {out / 'results.csv'}, results.json\n"
    assert not (out / "best.yaml").exists()


def test_a_worker_that_dies_fails_its_trial_and_ends_the_sweep(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    wait = sweep_module.wait

    def kill_the_worker(futures, return_when):  # as the kernel's out-of-memory killer would
        training(out, futures)
        for worker in multiprocessing.active_children():
            os.kill(worker.pid, signal.SIGKILL)
        return wait(futures, return_when=return_when)

    monkeypatch.setattr(sweep_module, "wait", kill_the_worker)
    code, printed, err = call(capsys, "sweep", SPECS / "mlp_digits.yaml", "--grid", "epochs=500,501", "--out", out)
    assert code == 1 and err == f"netspec: error: no trial finished: see {out / 'results.csv'}\n"
    table = rows(out / "results.csv")  # the second trial never started: the pool cannot run it
    assert [(r["trial"], r["status"]) for r in table] == [("trial-000", "failed")]
    assert table[0]["reason"] == "its worker process died (killed, or out of memory?); the sweep stopped"
    assert not multiprocessing.active_children()

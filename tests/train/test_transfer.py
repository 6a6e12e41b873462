"""Transfer learning (netspec/train/transfer.py): `init_from` files, `freeze` and `unfreeze`."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

import netspec
from netspec.errors import SpecError, SpecErrors
from netspec.train.config import parse_train
from tests.train.harness import fit, only_error, rows, same, setup, spec_of, weights, write_spec

FEATURES = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias")


def copy_spec(tmp_path: Path, file: str, name: str, head: dict | None = None, **train) -> Path:
    """A copy of specs/`file` named `name` in tmp_path, its last layer replaced by `head`, `train` updating its
    `train:` section."""
    tree = yaml.safe_load(Path("specs", file).read_text(encoding="utf-8"))
    tree["name"] = name
    if head is not None:
        tree["layers"][-1] = head
        del tree["expect"]
    tree["train"].update(train)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def digits_spec(tmp_path: Path, name: str, classes: list[int], head: dict | None = None, **train) -> Path:
    """A copy of specs/cnn_digits.yaml training on some of the digits (its last layer replaced by `head`)."""
    return copy_spec(tmp_path, "cnn_digits.yaml", name, head,
                     **{"data": {"dataset": {"digits": {"classes": classes}}}, "epochs": 8, **train})


def test_features_learnt_on_0_to_4_transfer_to_5_to_9(tmp_path):
    """The lecture's small-data recipe: keep the pretrained features, replace and train only the head.

    Whether the features learnt on 0–4 beat random ones is not asserted here: on the 8×8 digits they do not,
    clearly. Random ReLU conv features of an 8×8 image keep nearly all of it, and a logistic regression on the 64
    pixels of 45 images of 5–9 already gets 0.92. Measured on 5 % of 5–9 (45 images), the head trained to
    convergence (a standardizing `batchnorm1d: {affine: false}` before it, Adam 1e-2, 100 epochs), mean test
    accuracy over split/init seeds 0–9 with the source trained 30 epochs from seed 0, 1, 2: learnt 0.923, 0.899,
    0.898 against random 0.899. Shorter head trainings favour one side or the other by the lr alone (the learnt
    features are ~7× larger than the random ones). The comparison is made on MNIST-1D below, a dataset built so
    that random features are not enough."""
    source = netspec.train(digits_spec(tmp_path, "digits04", [0, 1, 2, 3, 4], epochs=10), out=tmp_path / "a",
                           progress=False)
    assert source.summary["test_accuracy"] > 0.95
    learnt = weights(source.path / "best.pt")
    spec = digits_spec(tmp_path, "digits59", [5, 6, 7, 8, 9], head={"linear": 5, "name": "head"},
                       init_from={"path": "a/best.pt", "strict": False}, freeze=["conv1", "conv2"],
                       optimizer={"adam": 1.0e-2})
    s = setup(netspec.load(spec), tmp_path / "b")
    start = weights(s.model)
    final = netspec.train.loop.Trainer(s).fit()
    after = weights(s.model)
    assert same({k: after[k] for k in FEATURES}, {k: learnt[k] for k in FEATURES})  # frozen: bit-identical
    assert not torch.equal(after["head.weight"], start["head.weight"])  # the new head learnt
    assert s.loaded.line() == ("init_from a/best.pt: loaded 4 of the network's 6 tensors; 2 missing from the file "
                               "(head.weight, head.bias); 2 not in the network (fc.weight, fc.bias) (the others keep "
                               "their init)")
    assert final["test_accuracy"] > 0.9  # five classes: chance is 0.2


def test_features_learnt_beat_random_ones_on_little_data(tmp_path):
    """The lecture's claim behind "small data: train only the head": on 125 labelled signals of MNIST-1D's
    digits 5–9, a linear head on the conv features mnist1d_cnn learnt from digits 0–4 beats, on every one of 5
    split/init seeds, the same head trained the same way on the same network's frozen random features.

    MNIST-1D (Greydanus & Kobak, ICML 2024) is built so that random and linear features fall short of learnt
    convolutions (the paper: logistic regression 32 %, a CNN 94 %); its 5,000 signals are generated locally.
    Measured (test accuracy, split/init seeds 0–4): learnt 0.660, 0.648, 0.671, 0.635, 0.712 against random
    0.360, 0.352, 0.415, 0.385, 0.383; with the source trained from seeds 1 and 2 instead, learnt still wins by
    0.15–0.26 on each of seeds 0–2."""
    pytest.importorskip("mnist1d")
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())  # the package's defaults: 5,000 signals of 40 points, seed 42
    x = np.concatenate([data["x"], data["x_test"]])[:, None].astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]])
    for file, part in (("a.npz", y < 5), ("b.npz", y >= 5)):
        np.savez(tmp_path / file, x=x[part], y=(y[part] % 5).astype(np.int64))  # 2,500 signals each, classes 0–4
    source = netspec.train(copy_spec(tmp_path, "mnist1d_cnn.yaml", "first", {"linear": 5, "name": "linear"},
                                     data={"dataset": {"npz": "a.npz"}, "split": [0.8, 0.1, 0.1]}, epochs=20,
                                     schedule=None, optimizer={"adam": 1.0e-2}), out=tmp_path / "a", progress=False)
    assert source.summary["test_accuracy"] > 0.9
    features = ["conv1", "conv2", "conv3"]
    for seed in range(5):
        accuracy = {}
        for kind, train in (("learnt", {"init_from": {"path": "a/best.pt", "strict": False}}), ("random", {})):
            spec = copy_spec(tmp_path, "mnist1d_cnn.yaml", kind, {"linear": 5, "name": "head"}, **train,
                             data={"dataset": {"npz": "b.npz"}, "split": [0.05, 0.05, 0.9]}, epochs=50, seed=seed,
                             schedule=None, optimizer={"adam": 1.0e-2}, freeze=features)
            accuracy[kind] = fit(netspec.load(spec), tmp_path / f"{kind}{seed}").final["test_accuracy"]
        assert accuracy["learnt"] > accuracy["random"] + 0.1, (seed, accuracy)  # five classes: chance is 0.2


def test_a_state_dict_and_a_safetensors_file_load_by_name(tmp_path):
    donor = netspec.build(netspec.load(write_spec(tmp_path, {}, name="donor")))
    state = {k: torch.randn_like(v) for k, v in donor.state_dict().items()}
    torch.save(state, tmp_path / "plain.pt")
    save_file(state, tmp_path / "w.safetensors")
    for file in ("plain.pt", "w.safetensors"):
        s = setup(spec_of(tmp_path, {"init_from": file}), tmp_path / f"run-{file}")
        assert same(weights(s.model), state)


def test_a_mismatch_is_a_located_error_unless_not_strict(tmp_path):
    donor = netspec.build(netspec.load(write_spec(tmp_path, {}, name="donor")))
    torch.save(donor.state_dict(), tmp_path / "w.pt")
    other = [{"linear": 16, "name": "fc1"}, "relu", {"linear": 3, "name": "fc2"}, {"linear": 4, "name": "head"}]
    with pytest.raises(SpecError) as exc:
        setup(spec_of(tmp_path, {"init_from": "w.pt"}, layers=other), tmp_path / "run")
    err = exc.value
    assert err.path == ("train", "init_from") and err.mark.line == 18
    assert err.message == ("init_from: w.pt does not fit the network: 2 missing from the file (head.weight, "
                           "head.bias); 2 of another shape (fc2.weight [4, 16] in the file, [3, 16] here, fc2.bias "
                           "[4] in the file, [3] here)")
    assert "strict: false" in err.hint
    s = setup(spec_of(tmp_path, {"init_from": {"path": "w.pt", "strict": False}}, layers=other), tmp_path / "run2")
    assert torch.equal(s.model.fc1.weight, donor.fc1.weight) and not torch.equal(s.model.fc1.bias, 0 * donor.fc1.bias)
    assert s.loaded.line() == ("init_from w.pt: loaded 2 of the network's 6 tensors; 2 missing from the file "
                               "(head.weight, head.bias); 2 of another shape (fc2.weight [4, 16] in the file, [3, 16] "
                               "here, fc2.bias [4] in the file, [3] here) (the others keep their init)")


@pytest.mark.parametrize("file, message", [
    ("none.pt", "init_from: no file"),
    ("w.ckpt", "`.ckpt` is not a weights format netspec reads: .pt, .pth, .safetensors"),
    ("code.pt", "is damaged or not a torch file (UnpicklingError"),  # weights_only refuses arbitrary objects
    ("list.pt", "holds neither a netspec checkpoint nor a state_dict"),
    ("bad.safetensors", "is not a readable safetensors file"),
])
def test_an_unusable_file_is_a_located_error(tmp_path, file, message):
    (tmp_path / "w.ckpt").write_bytes(b"x")
    torch.save({"model": Path("x")}, tmp_path / "code.pt")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(SpecError) as exc:
        setup(spec_of(tmp_path, {"init_from": file}), tmp_path / "run")
    assert exc.value.path == ("train", "init_from") and message in exc.value.message


def test_unfreeze_thaws_its_layers_at_its_epoch(tmp_path):
    train = {"freeze": ["fc1"], "unfreeze": {"at_epoch": 3, "layers": ["fc1"]}, "batch_size": 10,
             "optimizer": {"sgd": 0.1}}
    initial = weights(setup(spec_of(tmp_path, {**train, "epochs": 2}), tmp_path / "init").model)
    two = netspec.train(write_spec(tmp_path, {**train, "epochs": 2}), out=tmp_path / "two", progress=False)
    assert torch.equal(weights(two.path / "last.pt")["fc1.weight"], initial["fc1.weight"])
    four = netspec.train(write_spec(tmp_path, {**train, "epochs": 4}), out=tmp_path / "four", progress=False)
    assert not torch.equal(weights(four.path / "last.pt")["fc1.weight"], initial["fc1.weight"])
    assert "epoch 3: unfreezing fc1 (144 params)" in (four.path / "log.txt").read_text()
    grads = rows(four.path / "grad_norms.csv")
    assert [g["fc1"] for g in grads][:2] == ["nan", "nan"] and float(grads[2]["fc1"]) > 0


def test_a_frozen_batch_norm_keeps_its_statistics(tmp_path):
    layers = [{"linear": 16, "name": "fc1"}, {"batchnorm1d": {}, "name": "bn"}, "relu", {"linear": 4, "name": "fc2"}]
    s = setup(spec_of(tmp_path, {"freeze": ["fc1", "bn"], "epochs": 2, "batch_size": 10}, layers=layers),
              tmp_path / "run")
    before = weights(s.model)
    netspec.train.loop.Trainer(s).fit()
    after = weights(s.model)
    assert same({k: v for k, v in after.items() if k.startswith(("fc1", "bn"))},
                {k: v for k, v in before.items() if k.startswith(("fc1", "bn"))})
    assert not torch.equal(after["fc2.weight"], before["fc2.weight"])


@pytest.mark.parametrize("train, path, message", [
    ({"freeze": ["fc3"]}, ("train", "freeze", 0), "`fc3` matches no layer of the network"),
    ({"unfreeze": {"at_epoch": 2, "layers": ["fc1"]}}, ("train", "unfreeze"),
     "`unfreeze` has nothing to unfreeze: `freeze` is empty"),
    ({"freeze": ["fc1"], "unfreeze": {"at_epoch": 2, "layers": ["fc2"]}}, ("train", "unfreeze", "layers", 0),
     "`fc2` matches no layer that `freeze` freezes"),
    ({"freeze": ["fc*"], "unfreeze": {"at_epoch": 2, "layers": ["fc2"]}}, ("train", "freeze"),
     "nothing to train: `freeze` freezes every trainable layer (fc1, fc2) until epoch 2"),
    ({"init_from": {"path": "w.pt", "strickt": False}}, ("train", "init_from", "strickt"), "unknown init_from key"),
])
def test_freeze_mistakes_are_located(tmp_path, train, path, message):
    spec = spec_of(tmp_path, train)
    with pytest.raises((SpecError, SpecErrors)) as exc:
        netspec.train.config.check_train(parse_train(spec), netspec.analyze(spec), spec)
    err = only_error(exc.value)
    assert err.path == path and message in err.message, err.format()


def test_freeze_by_parameter_name_keeps_the_rest_training(tmp_path):
    s = setup(spec_of(tmp_path, {"freeze": ["*.weight"], "epochs": 1, "batch_size": 10}), tmp_path / "run")
    before = weights(s.model)
    netspec.train.loop.Trainer(s).fit()
    after = weights(s.model)
    assert torch.equal(after["fc1.weight"], before["fc1.weight"]) and not torch.equal(after["fc1.bias"],
                                                                                       before["fc1.bias"])


"""Data sources, transforms, splits, normalization, reshapes and batches (netspec/train/data.py)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from netspec.spec import loads
from netspec.train.config import parse_train
from netspec.train.data import SOURCES, TRANSFORMS, DataError, batches, prepare

DIGITS = 1797


def config(dataset="digits", seed=0, **data):
    """The TrainConfig of a one-layer spec whose `train.data` is `data`."""
    spec = {"name": "t", "input": [64], "layers": [{"linear": 10}],
            "train": {"seed": seed, "data": {"dataset": dataset, **data}}}
    return parse_train(loads(json.dumps(spec)))


def splits(dataset="digits", shapes=None, root=Path("."), **kw):
    return prepare(config(dataset, **kw), shapes or {"input": (64,)}, root)


def load(dataset, root=Path("."), shapes=None):
    choice = config(dataset).dataset
    return choice.entry.load(choice.args, root, shapes)


def counts(y, k):
    return torch.bincount(y, minlength=k).numpy()


# --- sources --------------------------------------------------------------------------------------------------


def test_digits_fields_shapes_and_ranges():
    arrays = load("digits")
    x, y = arrays.fields["x"], arrays.fields["y"]
    assert x.shape == (DIGITS, 1, 8, 8) and x.min() == 0 and x.max() == 1
    assert sorted(set(y)) == list(range(10)) and arrays.classes == {"y": 10}
    fields = SOURCES["digits"].fields(config().dataset.args)
    assert fields["x"].shape == x.shape[1:] and fields["x"].kind == "float"
    assert fields["y"] == ((), "class", 10)


def test_digits_keeps_the_classes_named_relabelled_in_order():
    everything = load("digits").fields
    some = load({"digits": {"classes": [9, 3]}})
    x, y = some.fields["x"], some.fields["y"]
    assert some.classes == {"y": 2} and sorted(set(y)) == [0, 1]
    assert np.array_equal(x[y == 0], everything["x"][everything["y"] == 9])
    assert np.array_equal(x[y == 1], everything["x"][everything["y"] == 3])


def test_mnist1d_shapes_and_its_own_test_split():
    pytest.importorskip("mnist1d")
    arrays = load("mnist1d")
    assert arrays.fields["x"].shape == (4000, 1, 40) and arrays.test["x"].shape == (1000, 1, 40)
    assert arrays.classes == {"y": 10}
    s = prepare(config("mnist1d"), {"input": (40,)}, Path("."))
    assert s.sizes() == {"train": 3556, "val": 444, "test": 1000}  # 4,000 split 8:1
    assert torch.equal(s.test["y"], torch.as_tensor(arrays.test["y"]))


def test_npz_every_array_is_a_field_integer_vectors_are_classes(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((6, 3)), y=np.array([0, 1, 2, 0, 1, 4]), w=np.zeros(6))
    arrays = load({"npz": "d.npz"}, tmp_path)
    assert set(arrays.fields) == {"x", "y", "w"} and arrays.classes == {"y": 5}
    assert arrays.fields["x"].shape == (6, 3)


def test_npy_one_file_per_field(tmp_path):
    np.save(tmp_path / "f.npy", np.arange(12.0).reshape(4, 3))
    np.save(tmp_path / "l.npy", np.array([1, 0, 1, 0]))
    arrays = load({"npy": {"x": "f.npy", "y": "l.npy"}}, tmp_path)
    assert arrays.fields["x"].shape == (4, 3) and arrays.classes == {"y": 2}


def test_csv_features_and_text_classes_in_sorted_order(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label,c\n1,2,dog,3\n4,5,cat,6\n\n7,8,dog,9\n")
    arrays = load({"csv": {"path": "d.csv", "target": "label"}}, tmp_path)
    assert arrays.fields["x"].tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert arrays.fields["y"].tolist() == [1, 0, 1] and arrays.classes == {"y": 2}
    some = load({"csv": {"path": "d.csv", "target": "label", "features": ["c"]}}, tmp_path)
    assert some.fields["x"].tolist() == [[3], [6], [9]]


def test_csv_numeric_targets_classes_or_values(tmp_path):
    (tmp_path / "d.csv").write_text("1,10\n2,9\n3,10\n")
    whole = load({"csv": {"path": "d.csv", "target": 1, "header": False}}, tmp_path)
    assert whole.fields["y"].tolist() == [1, 0, 1] and whole.classes == {"y": 2}
    values = load({"csv": {"path": "d.csv", "target": 1, "header": False, "classification": False}}, tmp_path)
    assert values.fields["y"].tolist() == [10, 9, 10] and values.classes == {}
    (tmp_path / "r.csv").write_text("x,t\n1,0.5\n2,1.5\n")
    assert load({"csv": {"path": "r.csv", "target": "t"}}, tmp_path).classes == {}


def write_png(path: Path, size, mode="L", value=128):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size[::-1], value if mode == "L" else (value, 0, 255)).save(path)


def test_image_folder_one_subfolder_per_class(tmp_path):
    for cls, n in (("cat", 2), ("ant", 3)):
        for i in range(n):
            write_png(tmp_path / "imgs" / cls / f"{i}.png", (5, 7), "RGB")
    arrays = load({"image_folder": {"root": "imgs"}}, tmp_path)
    x = arrays.fields["x"]
    assert x.shape == (5, 3, 5, 7) and arrays.fields["y"].tolist() == [0, 0, 0, 1, 1]  # ant < cat
    assert np.allclose(x[:, :, 0, 0], [128 / 255, 0, 1])
    gray = load({"image_folder": {"root": "imgs", "mode": "L", "size": [4, 4]}}, tmp_path)
    assert gray.fields["x"].shape == (5, 1, 4, 4) and 0 <= gray.fields["x"].min() <= gray.fields["x"].max() <= 1


def test_image_folder_images_of_other_sizes_need_size(tmp_path):
    write_png(tmp_path / "imgs" / "a" / "0.png", (5, 5))
    write_png(tmp_path / "imgs" / "b" / "1.png", (6, 5))
    with pytest.raises(DataError, match=r"1\.png: is 6×5 pixels but 0\.png is 5×5.*size: \[H, W\]"):
        load({"image_folder": "imgs"}, tmp_path)
    assert load({"image_folder": {"root": "imgs", "size": [3, 3]}}, tmp_path).fields["x"].shape == (2, 3, 3, 3)


def test_synthetic_makes_the_fields_the_network_reads():
    arrays = load({"synthetic": {"num_samples": 20, "classes": 3}}, shapes={"x": (3, 4, 4)})
    assert arrays.fields["x"].shape == (20, 3, 4, 4) and set(arrays.fields["y"]) <= {0, 1, 2}
    again = load({"synthetic": {"num_samples": 20, "classes": 3}}, shapes={"x": (3, 4, 4)})
    assert np.array_equal(arrays.fields["x"], again.fields["x"])
    stated = config({"synthetic": {"shape": [5], "classes": 3}}).dataset
    assert stated.entry.fields(stated.args)["x"].shape == (5,)
    with pytest.raises(DataError, match="symbolic dim: give it a `shape:`"):
        load("synthetic", shapes={"x": ("T", 8)})
    s = prepare(config("synthetic"), {"input": (3, 32, 32)}, Path("."))
    assert s.inputs(s.train)["input"].shape[1:] == (3, 32, 32) and s.classes == 10


# --- files that are missing or malformed ----------------------------------------------------------------------


def test_a_missing_file_names_its_path(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'nope.npz'}: no such file"):
        load({"npz": "nope.npz"}, tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        load({"image_folder": "nope"}, tmp_path)


def test_a_truncated_npz_names_its_path(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((50, 3)))
    data = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=f"{tmp_path / 'd.npz'}: cannot be read"):
        load({"npz": "d.npz"}, tmp_path)


def test_a_non_numeric_csv_feature_names_path_line_and_column(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n3,oops,1\n")
    with pytest.raises(DataError, match=f"{tmp_path / 'd.csv'}: line 3, column `b`: 'oops' is not a number"):
        load({"csv": {"path": "d.csv", "target": "y"}}, tmp_path)
    with pytest.raises(DataError, match="no column `z`; its columns: a, b, y"):
        load({"csv": {"path": "d.csv", "target": "z"}}, tmp_path)
    (tmp_path / "r.csv").write_text("a,b,y\n1,2,0\n3,1\n")
    with pytest.raises(DataError, match="r.csv: line 3 has 2 cells, not 3"):
        load({"csv": {"path": "r.csv", "target": "y"}}, tmp_path)


def test_arrays_of_different_lengths_or_text_are_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((4, 2)))
    np.save(tmp_path / "y.npy", np.zeros(3, dtype=int))
    np.save(tmp_path / "t.npy", np.array(["a", "b", "c", "d"]))
    with pytest.raises(DataError, match="different numbers of samples"):
        load({"npy": {"x": "x.npy", "y": "y.npy"}}, tmp_path)
    with pytest.raises(DataError, match="t.npy: `t` is not an array of numbers"):
        load({"npy": {"x": "x.npy", "t": "t.npy"}}, tmp_path)


# --- splits ---------------------------------------------------------------------------------------------------


def ids_npz(tmp_path, n=200):
    """An npz whose x is each sample's index, with 4 unbalanced classes."""
    y = np.repeat([0, 1, 2, 3], [100, 50, 30, 20])[:n]
    np.savez(tmp_path / "ids.npz", x=np.arange(n, dtype=np.float64)[:, None], y=y)
    return {"npz": "ids.npz"}


def test_split_8_1_1_stratified_by_class():
    s = splits()
    assert s.sizes() == {"train": 1438, "val": 179, "test": 180}
    total = counts(torch.cat([s.train["y"], s.val["y"], s.test["y"]]), 10)
    for name, fraction in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        assert np.all(np.abs(counts(getattr(s, name)["y"], 10) - fraction * total) <= 1), name


def test_split_covers_every_sample_once_and_holds_each_class_in_proportion(tmp_path):
    s = splits(ids_npz(tmp_path), {"input": (1,)}, tmp_path, split=[0.5, 0.3, 0.2], normalize=False)
    ids = torch.cat([s.train["x"], s.val["x"], s.test["x"]]).flatten()
    assert sorted(ids.tolist()) == list(range(200))
    assert counts(s.train["y"], 4).tolist() == [50, 25, 15, 10]
    assert counts(s.test["y"], 4).tolist() == [20, 10, 6, 4]


def test_split_is_deterministic_by_seed(tmp_path):
    data = ids_npz(tmp_path)
    one, same, other = (splits(data, {"input": (1,)}, tmp_path, seed=seed) for seed in (1, 1, 2))
    assert torch.equal(one.train["x"], same.train["x"]) and torch.equal(one.test["x"], same.test["x"])
    assert not torch.equal(one.train["x"], other.train["x"])


def test_normalization_uses_the_train_split_only():
    s = splits()
    x = s.inputs(s.train)["input"]
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std(correction=0)) - 1) < 1e-4
    assert s.stats["x"]["mean"].shape == (1, 1, 1)  # digits' x is [1, 8, 8]: one channel
    assert float(s.stats["x"]["mean"]) == pytest.approx(float(s.train["x"].double().mean()))
    assert float(s.stats["x"]["std"]) == pytest.approx(float(s.train["x"].double().std(correction=0)))
    assert float(s.inputs(s.test)["input"].mean()) != 0
    assert s.train["x"].min() == 0 and s.train["x"].max() == 1  # the field itself (a target) stays as loaded
    assert splits(normalize=False).stats == {}


def test_vectors_are_normalized_per_feature_and_images_per_channel(tmp_path):
    rng = np.random.default_rng(0)
    features = np.stack([rng.normal(5, 2, 200), rng.normal(-300, 50, 200), np.full(200, 7.0)], 1)
    np.savez(tmp_path / "v.npz", x=features.astype(np.float32), y=np.arange(200) % 2)
    s = splits({"npz": {"path": "v.npz"}}, {"input": (3,)}, tmp_path)
    x = s.inputs(s.train)["input"]
    assert x.mean(0).abs().max() < 1e-4  # every column centred, whatever its scale
    assert torch.allclose(x.std(0, correction=0), torch.tensor([1.0, 1.0, 0.0]), atol=1e-4)  # constant: std 1
    image = np.concatenate([rng.normal(0, 1, (200, 1, 4, 4)), rng.normal(10, 3, (200, 1, 4, 4))], 1)
    np.savez(tmp_path / "i.npz", x=image.astype(np.float32), y=np.arange(200) % 2)
    s = splits({"npz": {"path": "i.npz"}}, {"input": (2, 4, 4)}, tmp_path)
    assert s.stats["x"]["mean"].shape == (2, 1, 1)
    x = s.inputs(s.train)["input"]
    assert x.transpose(0, 1).reshape(2, -1).mean(1).abs().max() < 1e-4


# --- reshapes and transforms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, bound", [((64,), (64,)), ((1, 8, 8), (1, 8, 8)), ((8, 8), (8, 8)),
                                          (("T", 8), (8, 8)), ((2, "T"), (2, 32))])
def test_the_field_is_reshaped_to_the_input_symbolic_dims_bound(shape, bound):
    s = splits(shapes={"input": shape}, normalize=False)
    assert s.shapes == {"input": bound}
    x = s.inputs(s.val)["input"]
    assert x.shape == (179, *bound) and torch.equal(x.flatten(1), s.val["x"].flatten(1))


@pytest.mark.parametrize("shape", [(65,), ("T", 7), ("T", "U")])
def test_a_field_that_does_not_reshape_is_refused(shape):
    with pytest.raises(DataError, match="field `x` is 1×8×8 per sample, which does not reshape to input `input`"):
        splits(shapes={"input": shape})


@pytest.mark.parametrize("transform", [{"resize": [28, 28]}, {"resize": {"size": [4, 6], "antialias": False}},
                                       {"center_crop": [4, 6]}, "grayscale_to_rgb"])
def test_transforms_make_the_shape_they_state(transform):
    choice = config(transform=[transform]).transform[0]
    x = torch.rand(5, 1, 8, 8)
    assert choice.entry.apply(choice.args, x).shape[1:] == choice.entry.shape(choice.args, (1, 8, 8))


def test_center_crop_cuts_the_middle_and_resize_keeps_a_constant_image():
    crop = config(transform=[{"center_crop": [4, 2]}]).transform[0]
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    assert torch.equal(crop.entry.apply(crop.args, x), x[..., 2:6, 3:5])
    resize = config(transform=[{"resize": [3, 5]}]).transform[0]
    assert torch.allclose(resize.entry.apply(resize.args, torch.full((2, 1, 8, 8), 0.25)), torch.tensor(0.25))


@pytest.mark.parametrize("name, shape, message", [("resize", (64,), "takes \\[C, H, W\\] images, not 64"),
                                                  ("center_crop", (1, 3, 3), "cuts 4×4 windows out of 3×3"),
                                                  ("grayscale_to_rgb", (3, 8, 8), "takes 1 channel, not 3")])
def test_transforms_refuse_shapes_they_do_not_apply_to(name, shape, message):
    a = TRANSFORMS[name].Args.model_validate({"size": [4, 4]} if name != "grayscale_to_rgb" else {})
    with pytest.raises(ValueError, match=message):
        TRANSFORMS[name].shape(a, shape)


def test_digits_resized_for_a_784_input():
    s = splits(shapes={"input": (784,)}, transform=[{"resize": [28, 28]}])
    assert s.train["x"].shape[1:] == (1, 28, 28) and s.inputs(s.train)["input"].shape[1:] == (784,)


# --- batches --------------------------------------------------------------------------------------------------


def ids(n=10):
    return {"x": torch.arange(n, dtype=torch.float32)[:, None], "y": torch.arange(n)}


def order(seed, epoch, start=0, shuffle=True, device="cpu"):
    return [b["y"].tolist() for b in batches(ids(), 4, shuffle, seed, epoch, device, start)]


def test_batches_cover_every_sample_once_in_order_of_seed_and_epoch():
    first = order(0, 0)
    assert [len(b) for b in first] == [4, 4, 2] and sorted(sum(first, [])) == list(range(10))
    assert order(0, 0) == first and order(0, 1) != first and order(1, 0) != first
    assert order(0, 0, shuffle=False) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_batches_start_skips_the_first_batches():
    assert order(3, 2, start=1) == order(3, 2)[1:]
    assert order(3, 2, start=3) == []


def test_batches_pair_the_fields_and_land_on_the_device():
    device = "cuda" if torch.cuda.is_available() else "meta"
    for b in batches(ids(), 4, True, 0, 0, device):
        assert b["x"].device.type == b["y"].device.type == device
    for b in batches(ids(), 4, True, 0, 0, "cpu"):
        assert torch.equal(b["x"][:, 0].long(), b["y"])
    s = splits().to(device)
    assert s.train["x"].device.type == device and s.test["y"].device.type == device


def test_importing_data_does_not_import_torch():
    code = ("import sys, netspec.train.data; "
            "assert not {'torch', 'numpy', 'sklearn'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)

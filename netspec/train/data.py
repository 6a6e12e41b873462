"""Data: where samples come from, deterministic preprocessing, splits and batches.

    data:
      dataset: {csv: {path: iris.csv, target: species}}   # a registered source (`SOURCES`)
      transform: [{resize: [28, 28]}]                      # applied once to every float field (`TRANSFORMS`)
      split: [0.8, 0.1, 0.1]                               # train, val, test; stratified by the class field `y`
      normalize: true                                      # one mean and std per input field, from train

A source yields named per-sample *fields* (`x`, `y`, ...): float values or class
ids. `prepare` turns a source into `Splits` of torch tensors; a spec input reads a
field (`data.inputs`, else `x`) reshaped to the input's shape, and a loss target
reads a field as it is. `batches` walks a split in an order fixed by (seed, epoch),
so a resumed run needs no saved data state.

Nothing here imports torch, numpy or scikit-learn at import time: `netspec validate`
reads the registries through `config` and stays torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import pydantic
from pydantic import NonNegativeInt, PositiveInt, conlist

from .registry import Args, Entry, Registry

Size = conlist(PositiveInt, min_length=2, max_length=2)  # [H, W]
Digit = Annotated[int, pydantic.Field(ge=0, le=9)]


class Field(NamedTuple):
    """One per-sample field of a dataset: its shape, and whether it holds float values or class ids."""

    shape: tuple[int, ...]
    kind: Literal["float", "class"]
    classes: int | None = None  # the number of classes of a class field


class DataError(Exception):
    """Data that cannot be read, or does not fit the network; names the file at fault when there is one."""

    def __init__(self, message: str, path: Path | str | None = None):
        self.message, self.path = message, path
        super().__init__(message if path is None else f"{path}: {message}")


@dataclass
class Arrays:
    """What a source loads: numpy arrays, first dim = samples."""

    fields: dict[str, Any]  # field -> (N, *shape)
    test: dict[str, Any] | None = None  # a predefined test split, same fields
    classes: dict[str, int] = field(default_factory=dict)  # class field -> its number of classes


# --- sources -------------------------------------------------------------------------------------------------


class DataSource(Entry):
    """A dataset: `load` reads its samples; `fields` tells their shapes without loading, where it can."""

    def fields(self, a: Any) -> dict[str, Field] | None:
        """The per-sample fields, or None when only loading tells (files)."""
        return None

    def load(self, a: Any, root: Path, shapes: dict[str, tuple] | None = None) -> Arrays:
        """The samples. `root` is the spec's folder (relative paths start there); `shapes` maps the fields the
        network reads to the per-sample shapes it wants (only `synthetic` needs them). Raises DataError."""
        raise NotImplementedError


SOURCES: Registry[DataSource] = Registry("data source")


class DigitsArgs(Args):
    classes: list[Digit] | None = pydantic.Field(None, min_length=1)

    @pydantic.field_validator("classes")
    @classmethod
    def _distinct(cls, value):
        if value is not None and len(set(value)) < len(value):
            raise ValueError("each digit may be named once")
        return value


@SOURCES.register
class Digits(DataSource):
    """scikit-learn's bundled 8×8 handwritten digits: 1,797 images of 10 classes (nothing downloads).

    Fields: `x` float [1, 8, 8] in [0, 1] (the 0..16 intensities / 16), `y` class ids.
    A network with input [64], or [8, 8] (8 rows of 8 features for a recurrent
    network), reads `x` reshaped.

    Args:
        classes: keep only these digits, relabelled 0..k-1 in the order given
            (transfer learning: digits 0–4, then 5–9).

    Example: `dataset: digits` or `dataset: {digits: {classes: [5, 6, 7, 8, 9]}}`

    Source: the UCI optical recognition of handwritten digits test set (Alpaydin & Kaynak, 1998),
    `sklearn.datasets.load_digits`.
    """

    name = "digits"
    Args = DigitsArgs
    main_arg = "classes"

    def fields(self, a):
        return {"x": Field((1, 8, 8), "float"), "y": Field((), "class", len(a.classes or range(10)))}

    def load(self, a, root, shapes=None):
        import numpy as np
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = digits.images[:, None] / 16, digits.target
        if a.classes is not None:
            keep = np.isin(y, a.classes)
            relabel = np.zeros(10, dtype=np.int64)
            relabel[a.classes] = np.arange(len(a.classes))
            x, y = x[keep], relabel[y[keep]]
        return Arrays({"x": x, "y": y}, classes={"y": len(a.classes or range(10))})


class Mnist1dArgs(Args):
    num_samples: Annotated[int, pydantic.Field(ge=10)] = 5000  # mnist1d's defaults
    seed: NonNegativeInt = 42


@SOURCES.register
class Mnist1d(DataSource):
    """MNIST-1D: 1-d signals of 40 points drawn from 10 digit-like templates, generated locally.

    Fields: `x` float [1, 40], `y` class ids (10 classes). The package's own split
    (the first 80 % of `num_samples` train, the rest test: 4,000 / 1,000) is the
    test split; `split`'s first two fractions divide the rest into train and val.

    Args:
        num_samples: how many signals to generate (train and test together).
        seed: the generator's seed.

    Example: `dataset: {mnist1d: {num_samples: 5000}}`  (needs `pip install 'netspec[mnist1d]'`)

    Source: Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024;
    `mnist1d.data.make_dataset` (never its download).
    """

    name = "mnist1d"
    Args = Mnist1dArgs

    def fields(self, a):
        return {"x": Field((1, 40), "float"), "y": Field((), "class", 10)}

    def load(self, a, root, shapes=None):
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError:
            raise DataError("the mnist1d package is not installed: pip install 'netspec[mnist1d]'") from None
        args = get_dataset_args()
        args.num_samples, args.seed = a.num_samples, a.seed
        data = make_dataset(args)
        return Arrays({"x": data["x"][:, None], "y": data["y"]},
                      test={"x": data["x_test"][:, None], "y": data["y_test"]}, classes={"y": 10})


class NpzArgs(Args):
    path: str


@SOURCES.register
class Npz(DataSource):
    """Arrays from one `.npz` file (numpy.savez): every array is a field, first dim = samples.

    An integer 1-d array is a class field (classes = its max + 1); every other array holds
    float values. Pickled objects are refused.

    Example: `dataset: {npz: data.npz}` (a path relative to the spec's folder)
    """

    name = "npz"
    Args = NpzArgs
    main_arg = "path"

    def load(self, a, root, shapes=None):
        import numpy as np

        def read(path):
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}

        path = root / a.path
        arrays = _read(path, read)
        return _arrays(arrays, dict.fromkeys(arrays, path))


class NpyArgs(Args):
    """Field name -> `.npy` file."""

    model_config = pydantic.ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str]

    @pydantic.model_validator(mode="after")
    def _some(self):
        if not self.model_extra:
            raise ValueError("name at least one field: `{npy: {x: features.npy, y: labels.npy}}`")
        return self


@SOURCES.register
class Npy(DataSource):
    """Arrays from `.npy` files (numpy.save), one file per field, first dim = samples.

    An integer 1-d array is a class field (classes = its max + 1); every other array holds
    float values.

    Example: `dataset: {npy: {x: features.npy, y: labels.npy}}` (paths relative to the spec's folder)
    """

    name = "npy"
    Args = NpyArgs

    def load(self, a, root, shapes=None):
        import numpy as np

        paths = {name: root / file for name, file in a.model_extra.items()}
        return _arrays({name: _read(path, lambda p: np.load(p, allow_pickle=False)) for name, path in paths.items()},
                       paths)


class CsvArgs(Args):
    path: str
    target: str | int
    features: list[str | int] | None = pydantic.Field(None, min_length=1)
    header: bool = True
    classification: bool | Literal["auto"] = "auto"


@SOURCES.register
class Csv(DataSource):
    """A table from a `.csv` file: feature columns become `x` float [n_features], the target column `y`.

    Args:
        path: the file, relative to the spec's folder.
        target: the target column's name (its 0-based index when there is no header).
        features: the feature columns; all but the target by default.
        header: whether the first row names the columns.
        classification: whether `y` holds classes; `auto`: when its values are text or whole numbers.
            Classes are numbered 0..k-1 in sorted order (numeric order for numbers).

    Example: `dataset: {csv: {path: iris.csv, target: species}}`
    """

    name = "csv"
    Args = CsvArgs
    main_arg = "path"

    def load(self, a, root, shapes=None):
        import numpy as np

        path = root / a.path
        names, columns, lines = _table(path, a.header)
        target = _column(str(a.target), names, path)
        features = [_column(str(f), names, path) for f in a.features] if a.features is not None else \
            [i for i in range(len(names)) if i != target]
        if not features:
            raise DataError(f"has no feature columns besides the target `{names[target]}`", path)
        x = np.stack([_numbers(columns[i], names[i], lines, path) for i in features], axis=1)  # (N, features)
        try:
            values = np.array(columns[target], dtype=np.float64)
        except ValueError:
            values = None  # text labels
        if a.classification is False or (a.classification == "auto" and values is not None
                                          and not np.all(values == np.round(values))):
            return Arrays({"x": x, "y": _numbers(columns[target], names[target], lines, path)})
        classes, y = np.unique(np.array(columns[target]) if values is None else values, return_inverse=True)
        return Arrays({"x": x, "y": y.astype(np.int64)}, classes={"y": len(classes)})


class ImageFolderArgs(Args):
    root: str
    size: Size | None = None
    mode: Literal["RGB", "L"] = "RGB"


@SOURCES.register
class ImageFolder(DataSource):
    """Images in one subfolder per class (`root/cat/1.png`, `root/dog/7.jpg`), read with Pillow.

    Fields: `x` float [C, H, W] in [0, 1] (C = 3 for RGB, 1 for L), `y` class ids: the
    subfolders' sorted names are classes 0..k-1. Every image must have one size unless
    `size` resizes them all (bilinear, antialiased).

    Args:
        root: the folder, relative to the spec's folder.
        size: [H, W] to resize every image to.
        mode: `RGB` (3 channels) or `L` (grayscale, 1 channel).

    Example: `dataset: {image_folder: {root: imgs/, size: [32, 32]}}`

    Source: torchvision.datasets.ImageFolder's layout.
    """

    name = "image_folder"
    Args = ImageFolderArgs
    main_arg = "root"

    def load(self, a, root, shapes=None):
        import numpy as np

        folder = root / a.root
        if not folder.is_dir():
            raise DataError("no such folder", folder)
        classes = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise DataError("has no class subfolders (one folder of images per class)", folder)
        files = [(label, f) for label, sub in enumerate(classes)
                 for f in sorted(sub.iterdir()) if f.is_file() and not f.name.startswith(".")]
        if not files:
            raise DataError("holds no images", folder)
        xs = [_image(f, a) for _, f in files]  # each (C, H, W)
        for (_, f), x in zip(files, xs):
            if x.shape != xs[0].shape:
                raise DataError(f"is {_fmt(x.shape[1:])} pixels but {files[0][1].name} is {_fmt(xs[0].shape[1:])}: "
                                "give image_folder a `size: [H, W]` to resize every image", f)
        return Arrays({"x": np.stack(xs), "y": np.array([label for label, _ in files])}, classes={"y": len(classes)})


class SyntheticArgs(Args):
    num_samples: PositiveInt = 512
    classes: PositiveInt = 10
    shape: list[PositiveInt] | None = None
    seed: NonNegativeInt = 0


@SOURCES.register
class Synthetic(DataSource):
    """Random samples for smoke tests and benchmarks: standard-normal inputs, uniform class ids.

    Fields: each field the network's inputs read (`x` by default) float in the input's
    shape, or `x` float `shape` when given; `y` class ids of `classes` classes.
    Deterministic by `seed`.

    Args:
        num_samples: how many samples.
        classes: how many classes `y` draws from.
        shape: `x`'s per-sample shape; by default each input's own (which must then have no symbolic dims).
        seed: the generator's seed.

    Example: `dataset: {synthetic: {num_samples: 512, classes: 10}}`
    """

    name = "synthetic"
    Args = SyntheticArgs

    def fields(self, a):
        if a.shape is None:
            return None
        return {"x": Field(tuple(a.shape), "float"), "y": Field((), "class", a.classes)}

    def load(self, a, root, shapes=None):
        import numpy as np

        shapes = {"x": tuple(a.shape)} if a.shape is not None else shapes or {}
        for name, shape in shapes.items():
            if not all(isinstance(d, int) for d in shape):
                raise DataError(f"synthetic data cannot make field `{name}` of shape {_fmt(shape)}, which has a "
                                "symbolic dim: give it a `shape:`")
        rng = np.random.default_rng(a.seed)
        fields = {name: rng.standard_normal((a.num_samples, *shape), dtype=np.float32)
                  for name, shape in shapes.items()}
        fields["y"] = rng.integers(0, a.classes, a.num_samples)
        return Arrays(fields, classes={"y": a.classes})


def _read(path: Path, reader):
    """`reader(path)`, with a missing or unreadable file as a DataError naming it."""
    if not path.is_file():
        raise DataError("no such file", path)
    try:
        return reader(path)
    except Exception as exc:  # every reader's own error types: zip, pickle, unicode, csv, image, ...
        raise DataError(f"cannot be read: {exc}", path) from exc


def _arrays(arrays: dict[str, Any], paths: dict[str, Path]) -> Arrays:
    """Arrays read from `paths` (field -> its file): integer 1-d arrays are class fields (classes = max + 1);
    every array must hold numbers, with a sample dim, and all the same number of samples."""
    import numpy as np

    classes = {}
    for name, x in arrays.items():
        if not isinstance(x, np.ndarray) or x.ndim == 0 or not (np.issubdtype(x.dtype, np.number)
                                                                or x.dtype == bool):
            raise DataError(f"`{name}` is not an array of numbers with a sample dim", paths[name])
        if x.ndim == 1 and np.issubdtype(x.dtype, np.integer) and len(x):
            if x.min() < 0:
                raise DataError(f"`{name}` holds class ids, and {x.min()} is negative", paths[name])
            classes[name] = int(x.max()) + 1
    lengths = {name: len(x) for name, x in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"the arrays have different numbers of samples: {lengths}",
                        next(iter(paths.values())) if len(set(paths.values())) == 1 else None)
    return Arrays(arrays, classes=classes)


def _table(path: Path, header: bool) -> tuple[list[str], list[list[str]], list[int]]:
    """A csv file's (column names, columns of cells, the data rows' line numbers); blank lines skipped."""
    import csv

    def read(p):
        with p.open(newline="", encoding="utf-8") as f:
            return [(line, row) for line, row in enumerate(csv.reader(f), 1) if row]

    rows = _read(path, read)
    names, rows = (rows[0][1], rows[1:]) if header and rows else (None, rows)
    if not rows:
        raise DataError("has no data rows", path)
    names = names or [str(i) for i in range(len(rows[0][1]))]
    for line, row in rows:
        if len(row) != len(names):
            raise DataError(f"line {line} has {len(row)} cells, not {len(names)}", path)
    return names, [list(column) for column in zip(*(row for _, row in rows))], [line for line, _ in rows]


def _column(name: str, names: list[str], path: Path) -> int:
    if name not in names:
        raise DataError(f"has no column `{name}`; its columns: {', '.join(names)}", path)
    return names.index(name)


def _numbers(cells: list[str], column: str, lines: list[int], path: Path):
    """A column's cells as float64, or a DataError at the first one that is not a number."""
    import numpy as np

    values = []
    for cell, line in zip(cells, lines):
        try:
            values.append(float(cell))
        except ValueError:
            raise DataError(f"line {line}, column `{column}`: {cell!r} is not a number", path) from None
    return np.array(values)


def _image(file: Path, a: ImageFolderArgs):
    """One image as float32 (C, H, W) in [0, 1]."""
    import numpy as np
    from PIL import Image

    def read(path):
        with Image.open(path) as im:
            im = im.convert(a.mode)
            return im.resize((a.size[1], a.size[0]), Image.Resampling.BILINEAR) if a.size else im.copy()

    x = np.asarray(_read(file, read), dtype=np.float32) / 255
    return x[None] if x.ndim == 2 else x.transpose(2, 0, 1)


# --- transforms ----------------------------------------------------------------------------------------------


class Transform(Entry):
    """Deterministic preprocessing, applied once to every float field before splitting (not augmentation)."""

    def shape(self, a: Any, in_shape: tuple) -> tuple:
        """The per-sample shape it makes of `in_shape`; ValueError when it does not apply."""
        raise NotImplementedError

    def apply(self, a: Any, x):
        """The transform of a batch (N, *in_shape) -> (N, *shape(in_shape))."""
        raise NotImplementedError


TRANSFORMS: Registry[Transform] = Registry("transform")


def _image_shape(name: str, shape: tuple) -> tuple:
    """(C, H, W), or a ValueError saying what `name` needs."""
    if len(shape) != 3:
        raise ValueError(f"{name} takes [C, H, W] images, not {_fmt(shape)}")
    return tuple(shape)


class SizeArgs(Args):
    size: Size


class ResizeArgs(SizeArgs):
    antialias: bool = True


@TRANSFORMS.register
class Resize(Transform):
    """Resize images [C, H, W] to [C, *size], bilinear (torchvision.transforms.Resize).

    Args:
        size: [H, W].
        antialias: low-pass filter when shrinking, as torchvision does by default.

    Example: `transform: [{resize: [28, 28]}]` (8×8 digits for a 28×28 network)
    """

    name = "resize"
    Args = ResizeArgs
    main_arg = "size"

    def shape(self, a, in_shape):
        return (_image_shape(self.name, in_shape)[0], *a.size)

    def apply(self, a, x):
        from torch.nn.functional import interpolate

        return interpolate(x, size=tuple(a.size), mode="bilinear", align_corners=False, antialias=a.antialias)


@TRANSFORMS.register
class CenterCrop(Transform):
    """Cut the central [H, W] window out of images [C, H, W] (torchvision.transforms.CenterCrop).

    Args:
        size: [H, W], at most the image's.

    Example: `transform: [{center_crop: [24, 24]}]`
    """

    name = "center_crop"
    Args = SizeArgs
    main_arg = "size"

    def shape(self, a, in_shape):
        c, h, w = _image_shape(self.name, in_shape)
        if a.size[0] > h or a.size[1] > w:
            raise ValueError(f"center_crop cuts {_fmt(a.size)} windows out of {_fmt((h, w))} images")
        return (c, *a.size)

    def apply(self, a, x):
        (h, w), (ch, cw) = x.shape[-2:], a.size
        top, left = round((h - ch) / 2), round((w - cw) / 2)  # torchvision's rounding
        return x[..., top:top + ch, left:left + cw]


@TRANSFORMS.register
class GrayscaleToRgb(Transform):
    """Repeat a grayscale image's channel three times: [1, H, W] -> [3, H, W] (kornia.color.grayscale_to_rgb).

    Example: `transform: [grayscale_to_rgb]` (digits for a network made for colour images)
    """

    name = "grayscale_to_rgb"

    def shape(self, a, in_shape):
        c, h, w = _image_shape(self.name, in_shape)
        if c != 1:
            raise ValueError(f"grayscale_to_rgb takes 1 channel, not {c}")
        return (3, h, w)

    def apply(self, a, x):
        return x.expand(-1, 3, -1, -1).contiguous()


# --- splits and batches --------------------------------------------------------------------------------------


INPUT = "input"  # a split's key `(INPUT, name)` holds spec input `name` made from its field (`with_inputs`)


@dataclass
class Splits:
    """The train/val/test splits as torch tensors, and how the network's inputs read them."""

    train: dict[str, Any]  # field -> (N, *field shape): float32 values or int64 class ids
    val: dict[str, Any]
    test: dict[str, Any]
    input_fields: dict[str, str]  # spec input -> the field it reads
    shapes: dict[str, tuple[int, ...]]  # spec input -> its per-sample shape, symbolic dims bound
    classes: int | None = None  # the number of classes of `y`, when it holds classes
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> {mean, std} of train, per channel

    def sizes(self) -> dict[str, int]:
        return {name: _length(getattr(self, name)) for name in ("train", "val", "test")}

    def inputs(self, tensors: dict[str, Any], augment=None) -> dict[str, Any]:
        """The network's inputs from a split or a batch of it: each spec input's field reshaped
        (N, *field shape) -> (N, *input shape), then augmented by `augment` (training batches only: on the
        data's own scale, [0, 1] for images), then normalized with the train split's statistics."""
        out = {}
        for name, f in self.input_fields.items():
            if augment is None and (INPUT, name) in tensors:  # made once by `with_inputs`
                out[name] = tensors[INPUT, name]
                continue
            values = tensors[f]
            x = values.reshape(len(values), *self.shapes[name])
            if augment is not None:
                x = augment(x)
            if f in self.stats:  # statistics per channel or feature of the field's own shape
                x = ((x.reshape(values.shape) - self.stats[f]["mean"]) / self.stats[f]["std"]).reshape(x.shape)
            out[name] = x
        return out

    def with_inputs(self, train: bool = True) -> Splits:
        """The splits holding, beside their fields, each input as `inputs` makes it without augmentation (key
        `(INPUT, name)`), so that a batch of them is one index per tensor instead of a reshape and a
        normalization per batch: val and test always, train when `train` (no augmentation, which must come
        before normalization). It costs a second copy of each input field."""
        names = ("train", "val", "test") if train else ("val", "test")
        return replace(self, **{s: {**getattr(self, s), **{(INPUT, k): v for k, v in
                                                           self.inputs(getattr(self, s)).items()}} for s in names})

    def to(self, device) -> Splits:
        """The splits and statistics moved to `device` (once, so `batches` then only indexes)."""
        return replace(self, **{s: {k: v.to(device) for k, v in getattr(self, s).items()}
                                for s in ("train", "val", "test")},
                       stats={f: {k: v.to(device) for k, v in st.items()} for f, st in self.stats.items()})


def prepare(config, input_shapes: dict[str, tuple], root: Path) -> Splits:
    """The splits of `config.dataset`: loaded, transformed (every float field), split (stratified by `y`,
    seeded by `train.seed`; a source's own test split is kept), normalization statistics taken from train, and
    every input's field checked to reshape to the input.

    `input_shapes`: spec input -> per-sample shape, possibly with one symbolic dim, which takes what the data's
    size leaves (`[T, 8]` reading 64 values: T = 8). `root` is the spec's folder. Raises DataError.
    """
    import torch

    from .config import input_fields

    reads = input_fields(config, input_shapes)
    data = config.args.data
    source = config.dataset
    arrays = source.entry.load(source.args, Path(root), {f: tuple(input_shapes[i]) for i, f in reads.items()})
    fields = _tensors(arrays.fields, arrays.classes)
    test = _tensors(arrays.test, arrays.classes) if arrays.test is not None else None
    for t in config.transform:
        fields = _transform(t, fields, arrays.classes)
        test = _transform(t, test, arrays.classes) if test is not None else None
    y = arrays.fields["y"] if "y" in arrays.classes else None
    parts = [{k: v[torch.as_tensor(i)] for k, v in fields.items()}
             for i in _split(_length(fields), data.split[:2] if test is not None else data.split, y, config.args.seed)]
    train, val, test = parts if test is None else (*parts, test)
    if not _length(train):
        raise DataError(f"the train split is empty ({_length(fields)} samples, split {list(data.split)})")
    shapes = {}
    for name, f in reads.items():
        if f not in fields:
            raise DataError(f"the data has no field `{f}` for input `{name}`; its fields: {', '.join(fields)}")
        shapes[name] = _bind(tuple(input_shapes[name]), fields[f].shape[1:], name, f)
    stats = {f: _stats(train[f]) for f in dict.fromkeys(reads.values()) if data.normalize and f not in arrays.classes}
    return Splits(train, val, test, reads, shapes, arrays.classes.get("y"), stats)


def batches(tensors: dict[str, Any], batch_size: int, shuffle: bool, seed: int, epoch: int, device,
            start: int = 0) -> Iterator[dict[str, Any]]:
    """The batches of a split: dicts of (≤ batch_size, ...) slices of `tensors`, on `device`.

    Shuffled, epoch `epoch` visits the samples in `torch.randperm` order drawn from a generator seeded by
    (seed, epoch) alone, so a resumed run replays it without saved state; `start` skips that many batches.
    The last batch may be smaller. Move the split to `device` once beforehand (`Splits.to`): here that is a
    no-op, and each batch is one index per tensor.
    """
    tensors = {k: v.to(device) for k, v in tensors.items()}
    n = _length(tensors)
    order = epoch_order(n, seed, epoch).to(device) if shuffle else None
    for i in range(start * batch_size, n, batch_size):
        if order is None:
            yield {k: v[i:i + batch_size] for k, v in tensors.items()}  # views
        else:
            at = order[i:i + batch_size]
            yield {k: v.index_select(0, at) for k, v in tensors.items()}  # `v[at]`, without indexing's parsing


def epoch_order(n: int, seed: int, epoch: int):
    """The order in which epoch `epoch` visits `n` training samples: a `torch.randperm` drawn from a generator
    seeded by (seed, epoch) alone (on the CPU, so every device and every process draws the same)."""
    import torch

    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)
    return torch.randperm(n, generator=generator)


def _tensors(arrays: dict[str, Any], classes: dict[str, int]) -> dict[str, Any]:
    """numpy -> torch: class fields int64, the rest float32."""
    import numpy as np
    import torch

    return {k: torch.as_tensor(np.ascontiguousarray(v), dtype=torch.int64 if k in classes else torch.float32)
            for k, v in arrays.items()}


def _transform(t, fields: dict[str, Any], classes: dict[str, int]) -> dict[str, Any]:
    """A transform Choice applied to every float field."""
    out = dict(fields)
    for k, x in fields.items():
        if k not in classes:
            try:
                t.entry.shape(t.args, tuple(x.shape[1:]))
            except ValueError as exc:
                raise DataError(f"transform `{t.name}` cannot apply to field `{k}`: {exc}") from None
            out[k] = t.entry.apply(t.args, x)
    return out


def _split(n: int, fractions, y, seed: int) -> list:
    """Index arrays of consecutive parts of a seeded permutation of range(n), sized by `fractions` (rescaled to
    sum 1). With class ids `y`, each class is spread evenly through the permutation, so every part holds each
    class in proportion (within one sample)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    if y is not None:
        _, cls, counts = np.unique(y[order], return_inverse=True, return_counts=True)
        by_class = np.argsort(cls, kind="stable")
        rank = np.empty(n)
        rank[by_class] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)  # place within its class
        order = order[np.argsort((rank + 0.5) / counts[cls], kind="stable")]
    ends = np.round(np.cumsum(fractions) / sum(fractions) * n).astype(int)
    return np.split(order, ends[:-1])


def _bind(shape: tuple, have: tuple, name: str, f: str) -> tuple[int, ...]:
    """The input's `shape` with its symbolic dim (if any) bound so that it holds prod(have) values."""
    size = math.prod(have)
    known = math.prod(d for d in shape if isinstance(d, int))
    bound = tuple(d if isinstance(d, int) else size // known for d in shape)
    if sum(not isinstance(d, int) for d in shape) > 1 or math.prod(bound) != size:
        raise DataError(f"field `{f}` is {_fmt(have)} per sample, which does not reshape to input `{name}` "
                        f"{_fmt(shape)}: add a transform (`resize`), or change the input")
    return bound


def _stats(x) -> dict[str, Any]:
    """The mean and std of a (train) field (N, *shape): one per channel (dim 0 of the per-sample shape) for
    images and sequences [C, ...], one per feature for vectors [F], one for scalars — what torchvision's
    `Normalize` and scikit-learn's `StandardScaler` use. Tensors shaped to broadcast over (N, *shape); a
    constant channel or feature keeps std 1."""
    x = x.double()
    dims = [0, *range(2, x.dim())] if x.dim() > 2 else [0]
    mean = x.mean(dim=dims, keepdim=True)[0]
    std = x.std(dim=dims, correction=0, keepdim=True)[0]
    return {"mean": mean.float(), "std": std.masked_fill(std == 0, 1.0).float()}


def _length(tensors: dict[str, Any]) -> int:
    return len(next(iter(tensors.values())))


def _fmt(shape) -> str:
    return "×".join(map(str, shape)) if len(shape) else "a scalar"

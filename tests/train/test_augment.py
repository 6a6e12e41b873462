import subprocess
import sys

import pytest
import torch

from netspec.errors import SpecError, SpecErrors
from netspec.loader import parse_yaml
from netspec.train.augment import AUGMENTATIONS, GRAY_OR_RGB, IMAGES_ONLY, pipeline

# one row per entry: an augmenting choice, a per-sample shape it fits, and a choice that changes nothing
ROWS = {
    "random_horizontal_flip": ("random_horizontal_flip: 0.5", (3, 8, 8), "random_horizontal_flip: 0"),
    "random_vertical_flip": ("random_vertical_flip: {p: 0.5}", (3, 8, 8), "random_vertical_flip: 0"),
    "random_rotation": ("random_rotation: 30", (1, 8, 8), "random_rotation: {degrees: 30, p: 0}"),
    "random_crop": ("random_crop: {size: [8, 8], padding: 2}", (1, 8, 8), "random_crop: {size: 8}"),
    "color_jitter": ("color_jitter: {brightness: 0.5, contrast: 0.5, saturation: 0.5, hue: 0.2}", (3, 8, 8),
                     "color_jitter: {brightness: 0.5, p: 0}"),
    "random_contrast": ("random_contrast: 0.5", (1, 8, 8), "random_contrast: {contrast: 0.5, p: 0}"),
    "gaussian_noise": ("gaussian_noise: 0.1", (2, 8, 8), "gaussian_noise: {sigma: 0.1, p: 0}"),
    "random_erasing": ("random_erasing: 1.0", (3, 8, 8), "random_erasing: 0"),
}
IMAGE_ENTRIES = [name for name in ROWS if name != "gaussian_noise"]


def choice(text: str):
    source = parse_yaml(f"augment:\n  - {text}\n", "t.yaml")
    return AUGMENTATIONS.parse(source.tree["augment"][0], ("augment", 0), source)


def module(text: str):
    c = choice(text)
    return c.entry.build(c.args)


def batch(shape, dtype=torch.float32):
    return torch.rand((6, *shape), generator=torch.Generator().manual_seed(0), dtype=dtype)


def test_every_entry_has_a_row():
    assert set(AUGMENTATIONS) == set(ROWS)


@pytest.mark.parametrize("name", ROWS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keeps_shape_and_dtype_and_changes_the_batch(name, dtype):
    text, shape, _ = ROWS[name]
    x = batch(shape, dtype)
    torch.manual_seed(0)
    y = module(text)(x)
    assert type(y) is torch.Tensor and y.shape == x.shape and y.dtype == dtype
    assert not torch.equal(y, x)


@pytest.mark.parametrize("name", ROWS)
def test_identity_setting_leaves_the_batch(name):
    _, shape, identity = ROWS[name]
    x = batch(shape)
    assert torch.equal(module(identity)(x), x)


@pytest.mark.parametrize("name", ROWS)
def test_randomness_comes_from_torchs_global_rng(name):
    text, shape, _ = ROWS[name]
    m, x = module(text), batch(shape)
    outputs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        outputs.append(m(x))
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[0], outputs[2])


@pytest.mark.parametrize("name", ROWS)
def test_check_accepts_the_rows_shape(name):
    c = choice(ROWS[name][0])
    assert c.entry.check(c.args, ROWS[name][1]) is None


@pytest.mark.parametrize("name", IMAGE_ENTRIES)
@pytest.mark.parametrize("shape", [(64,), (8, 8), (1, 3, 8, 8)])
def test_image_entries_reject_other_ranks(name, shape):
    c = choice(ROWS[name][0])
    assert c.entry.check(c.args, shape) == IMAGES_ONLY


@pytest.mark.parametrize("name", ROWS)
def test_unknown_argument_is_a_located_error(name):
    with pytest.raises((SpecError, SpecErrors)) as exc:
        choice(f"{name}: {{angle: 3}}")  # besides a missing required argument, where there is one
    errors = exc.value.errors if isinstance(exc.value, SpecErrors) else [exc.value]
    (error,) = [e for e in errors if "angle" in e.message]
    assert error.message == f"unknown {name} argument `angle`"
    assert (error.mark.line, error.mark.col) == (2, len(f"  - {name}: {{") + 1)


def test_a_range_needs_min_below_max():
    with pytest.raises(SpecError, match=r"`degrees`: .*a range \[min, max\] needs min ≤ max") as exc:
        choice("random_rotation: {degrees: [10, -10]}")
    assert exc.value.mark.line == 2


def test_horizontal_then_vertical_flip():
    x = batch((3, 5, 7))
    m = pipeline([choice("random_horizontal_flip: 1"), choice("random_vertical_flip: 1")])
    assert torch.equal(m(x), x.flip(-1).flip(-2))


def test_empty_pipeline_is_none():
    assert pipeline([]) is None


def test_random_crop_with_padding_keeps_size_and_shifts_content():
    x = torch.arange(1.0, 65.0).reshape(1, 1, 8, 8).expand(16, 1, 8, 8)
    torch.manual_seed(0)
    y = module("random_crop: {size: [8, 8], padding: 1}")(x)
    assert y.shape == x.shape
    padded = torch.nn.functional.pad(x[0], (1, 1, 1, 1))
    windows = {(i, j): padded[:, i:i + 8, j:j + 8] for i in range(3) for j in range(3)}
    offsets = [next(k for k, w in windows.items() if torch.equal(w, sample)) for sample in y]
    assert set(offsets) - {(1, 1)}  # some samples moved


def test_random_crop_must_keep_the_image_size():
    c = choice("random_crop: {size: [6, 8], padding: 1}")
    assert "a crop of 6×8 would change the input's 8×8 size" in c.entry.check(c.args, (1, 8, 8))
    assert c.entry.check(c.args, (1, "H", 8)) is None


@pytest.mark.parametrize("value", [0.0, 0.5])
def test_random_erasing_sets_a_rectangle_to_value(value):
    x = torch.ones(8, 3, 8, 8)
    torch.manual_seed(0)
    y = module(f"random_erasing: {{p: 1, value: {value}}}")(x)
    erased = y != x
    for mask, sample in zip(erased, y):
        assert mask.any() and torch.all(sample[mask] == value)
        rows, cols = mask[0].any(1), mask[0].any(0)
        assert torch.equal(mask, (rows[:, None] & cols[None, :]).expand_as(mask))  # a rectangle, all channels


@pytest.mark.parametrize("shape", [(64,), (1, 40), (2, 3, 4, 5)])
def test_gaussian_noise_on_any_rank(shape):
    c = choice("gaussian_noise: {mean: 1.0, sigma: 0.5}")
    assert c.entry.check(c.args, shape) is None
    x = torch.zeros(32, *shape)
    torch.manual_seed(0)
    y = c.entry.build(c.args)(x)
    assert y.shape == x.shape
    assert abs(y.mean().item() - 1.0) < 0.1 and abs(y.std().item() - 0.5) < 0.1


def test_colour_ops_check_channels():
    jitter, rgb = choice("color_jitter: {brightness: 0.2, contrast: 0.2}"), choice("color_jitter: {hue: 0.1}")
    contrast = choice("random_contrast: [0.8, 1.2]")
    assert jitter.entry.check(jitter.args, (1, 8, 8)) is None
    assert jitter.entry.check(jitter.args, (2, 8, 8)) == f"{GRAY_OR_RGB}; this one has 2"
    assert rgb.entry.check(rgb.args, (1, 8, 8)) == "saturation and hue need RGB images (3 channels); this one has 1"
    assert rgb.entry.check(rgb.args, ("C", 8, 8)) is None
    assert contrast.entry.check(contrast.args, (4, 8, 8)) == f"{GRAY_OR_RGB}; this one has 4"


def test_random_contrast_scales_about_the_mean():
    x = batch((1, 8, 8)) * 0.5 + 0.25  # inside [0, 1] whatever the factor
    torch.manual_seed(0)
    y = module("random_contrast: {contrast: [0.5, 0.5]}")(x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(y, mean + 0.5 * (x - mean))


def test_importing_augment_does_not_import_torch():
    code = "import sys, netspec.train.augment; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

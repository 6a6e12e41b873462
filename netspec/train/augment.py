"""Augmentations: random changes to the training inputs, one registered entry each.

    train:
      data:
        augment: [random_horizontal_flip, {random_rotation: 10}, {random_crop: {size: [8, 8], padding: 1}}]

An entry checks the per-sample input shape it would augment (`check`, torch-free, so
`netspec validate` reports a misfit at its YAML line) and builds a `kornia.augmentation`
module (`build`); `pipeline` chains a list of them. The modules act on a whole batch
(B, *shape) on its device, keep its shape and dtype, and draw their random numbers from
torch's global CPU generator: seeding torch, or restoring its RNG state, repeats them. kornia
augments in eval mode too, so the trainer calls the pipeline on training batches only.

Values: flips, rotation, crop, noise and erasing work on any value range. The colour ops
(`color_jitter`, `random_contrast`) take pixels in [0, 1] and clamp to it, as torchvision's
ColorJitter does on float images: augmentation comes before normalization (the datasets give
[0, 1]).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field, NonNegativeInt, PositiveInt

from .registry import Args, Choice, Entry, Registry

if TYPE_CHECKING:
    import torch

AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


def _ordered(pair: list) -> list:
    if pair[0] > pair[1]:
        raise ValueError(f"a range [min, max] needs min ≤ max, got {pair}")
    return pair


def _range(item: Any) -> Any:
    """The type of a [min, max] range of `item`s."""
    return Annotated[list[item], Field(min_length=2, max_length=2), AfterValidator(_ordered)]


def _padding_length(padding: list) -> list:
    if len(padding) not in (2, 4):
        raise ValueError(f"padding is one number, [left/right, top/bottom] or [left, top, right, bottom], "
                         f"not {len(padding)} numbers")
    return padding


Unit = Annotated[float, Field(ge=0, le=1)]  # a probability, a fraction
NonNegative = Annotated[float, Field(ge=0)]
Factor = NonNegative | _range(NonNegative)  # f: a factor drawn from [max(0, 1 - f), 1 + f]; [lo, hi]: from it
Degrees = Annotated[float, Field(ge=0, le=360)] | _range(Annotated[float, Field(ge=-360, le=360)])
Hue = Annotated[float, Field(ge=0, le=0.5)] | _range(Annotated[float, Field(ge=-0.5, le=0.5)])
Size = PositiveInt | Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]
Padding = NonNegativeInt | Annotated[list[NonNegativeInt], AfterValidator(_padding_length)]

IMAGES_ONLY = "it works on images [C, H, W] (a grayscale image is [1, H, W])"
GRAY_OR_RGB = "it works on grayscale or RGB images (1 or 3 channels)"


def _tuple(value):
    """A YAML list as the tuple kornia expects; a number as is."""
    return tuple(value) if isinstance(value, list) else value


def _pair(value: int | list[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _channels(shape: tuple, allowed: tuple[int, ...], need: str) -> str | None:
    """`need` when the image's channel count is known and not one of `allowed`."""
    c = shape[0]
    return f"{need}; this one has {c}" if isinstance(c, int) and c not in allowed else None


class Augmentation(Entry):
    """A random change of an image [C, H, W], any channel count, unless an entry says otherwise."""

    def check(self, a, shape: tuple) -> str | None:
        """Why this augmentation cannot augment inputs of per-sample `shape` (dims may be symbolic), or None."""
        return IMAGES_ONLY if len(shape) != 3 else None

    def build(self, a) -> torch.nn.Module:
        """A module taking a float batch (B, *shape) to a batch of the same shape and dtype."""
        raise NotImplementedError


class FlipArgs(Args):
    p: Unit = 0.5


@AUGMENTATIONS.register
class RandomHorizontalFlip(Augmentation):
    """Mirror each image left to right with probability p.

    Lecture practice: flips. Mirrors torchvision.transforms.RandomHorizontalFlip(p); built with
    kornia.augmentation.RandomHorizontalFlip.

    Args:
        p: the chance each image is flipped.

    Example: `- random_horizontal_flip: 0.5`
    """

    name = "random_horizontal_flip"
    Args = FlipArgs
    main_arg = "p"

    def build(self, a):
        from kornia.augmentation import RandomHorizontalFlip

        return RandomHorizontalFlip(p=a.p, keepdim=True)


@AUGMENTATIONS.register
class RandomVerticalFlip(Augmentation):
    """Mirror each image top to bottom with probability p.

    Lecture practice: flips. Mirrors torchvision.transforms.RandomVerticalFlip(p); built with
    kornia.augmentation.RandomVerticalFlip.

    Args:
        p: the chance each image is flipped.

    Example: `- random_vertical_flip: 0.5`
    """

    name = "random_vertical_flip"
    Args = FlipArgs
    main_arg = "p"

    def build(self, a):
        from kornia.augmentation import RandomVerticalFlip

        return RandomVerticalFlip(p=a.p, keepdim=True)


class RotationArgs(Args):
    degrees: Degrees
    p: Unit = 1.0


@AUGMENTATIONS.register
class RandomRotation(Augmentation):
    """Rotate each image about its centre by an angle drawn uniformly from a range.

    Lecture practice: small rotations. Mirrors torchvision.transforms.RandomRotation(degrees), but
    resamples bilinearly (torchvision: nearest); corners rotated in are 0. Built with
    kornia.augmentation.RandomRotation.

    Args:
        degrees: d draws from [-d, d]; [min, max] from that range (in degrees, counter-clockwise,
            within ±360).
        p: the chance each image is rotated (torchvision rotates all).

    Example: `- random_rotation: 10`
    """

    name = "random_rotation"
    Args = RotationArgs
    main_arg = "degrees"

    def build(self, a):
        from kornia.augmentation import RandomRotation

        return RandomRotation(_tuple(a.degrees), p=a.p, keepdim=True)


class CropArgs(Args):
    size: Size
    padding: Padding = 0


@AUGMENTATIONS.register
class RandomCrop(Augmentation):
    """Pad each image with zeros, then crop it back to its size at a random place: the content shifts.

    Lecture practice: random crops with padding. Mirrors torchvision.transforms.RandomCrop(size, padding);
    built with kornia.augmentation.RandomCrop. `size` is the image's own [H, W], since the network
    takes a fixed input shape.

    Args:
        size: the crop's [H, W] (one number: a square).
        padding: zeros added on each side: one number, [left/right, top/bottom] or [left, top, right, bottom].

    Example: `- random_crop: {size: [8, 8], padding: 1}`
    """

    name = "random_crop"
    Args = CropArgs

    def check(self, a, shape):
        if problem := super().check(a, shape):
            return problem
        size, image = _pair(a.size), shape[1:]
        if any(isinstance(d, int) and d != s for d, s in zip(image, size)):
            return (f"a crop of {size[0]}×{size[1]} would change the input's {image[0]}×{image[1]} size; crop the "
                    f"image's own size and shift it with `padding`")
        return None

    def build(self, a):
        from kornia.augmentation import RandomCrop

        return RandomCrop(_pair(a.size), padding=_tuple(a.padding), keepdim=True)


class ColorJitterArgs(Args):
    brightness: Factor = 0.0
    contrast: Factor = 0.0
    saturation: Factor = 0.0
    hue: Hue = 0.0
    p: Unit = 1.0


@AUGMENTATIONS.register
class ColorJitter(Augmentation):
    """Scale brightness, contrast and saturation and shift hue by random amounts, in a random order.

    Lecture practice: colour shifts. Mirrors torchvision.transforms.ColorJitter (same factors and
    formulas); built with kornia.augmentation.ColorJitter. Pixels are taken in [0, 1] and clamped
    to it. Brightness and contrast work on grayscale (1 channel) or RGB (3) images; saturation and
    hue need RGB (torchvision silently skips them on grayscale; netspec reports it).

    Args:
        brightness, contrast, saturation: f draws a factor from [max(0, 1 - f), 1 + f]; [min, max]
            from that range; 0 leaves the property alone.
        hue: h draws a shift from [-h, h] (h ≤ 0.5, in turns of the colour wheel); [min, max] within
            [-0.5, 0.5].
        p: the chance each image is changed (torchvision changes all).

    Example: `- color_jitter: {brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.05}`
    """

    name = "color_jitter"
    Args = ColorJitterArgs

    def check(self, a, shape):
        if problem := super().check(a, shape):
            return problem
        if a.saturation != 0 or a.hue != 0:
            return _channels(shape, (3,), "saturation and hue need RGB images (3 channels)")
        return _channels(shape, (1, 3), GRAY_OR_RGB)

    def build(self, a):
        from kornia.augmentation import ColorJitter

        return ColorJitter(_tuple(a.brightness), _tuple(a.contrast), _tuple(a.saturation), _tuple(a.hue), p=a.p,
                           keepdim=True)


class ContrastArgs(Args):
    contrast: Factor
    p: Unit = 1.0


@AUGMENTATIONS.register
class RandomContrast(Augmentation):
    """Scale each image's contrast about its mean grey level by a random factor.

    Lecture practice: contrast changes. Mirrors torchvision.transforms.ColorJitter(contrast=...);
    built with kornia.augmentation.ColorJitter (kornia's RandomContrast multiplies the pixels
    themselves, which torchvision calls brightness). Pixels are taken in [0, 1] and clamped to it;
    grayscale (1 channel) or RGB (3) images.

    Args:
        contrast: f draws a factor from [max(0, 1 - f), 1 + f]; [min, max] from that range.
        p: the chance each image is changed.

    Example: `- random_contrast: {contrast: [0.8, 1.2], p: 0.5}`
    """

    name = "random_contrast"
    Args = ContrastArgs
    main_arg = "contrast"

    def check(self, a, shape):
        return super().check(a, shape) or _channels(shape, (1, 3), GRAY_OR_RGB)

    def build(self, a):
        from kornia.augmentation import ColorJitter

        return ColorJitter(contrast=_tuple(a.contrast), p=a.p, keepdim=True)


class NoiseArgs(Args):
    mean: float = 0.0
    sigma: NonNegative = 0.1
    p: Unit = 1.0


@AUGMENTATIONS.register
class GaussianNoise(Augmentation):
    """Add independent normal noise to every value of the input; inputs of any shape.

    Lecture practice: noise addition. Mirrors torchvision.transforms.v2.GaussianNoise(mean, sigma),
    without its clipping to [0, 1], so it suits any value range; built with
    kornia.augmentation.RandomGaussianNoise, over the sample seen as a (1, 1, N) image, so vectors
    [F] and sequences [C, T] take noise as images do.

    Args:
        mean: the noise's mean.
        sigma: its standard deviation.
        p: the chance each sample gets noise (torchvision adds it to all).

    Example: `- gaussian_noise: 0.05`
    """

    name = "gaussian_noise"
    Args = NoiseArgs
    main_arg = "sigma"

    def check(self, a, shape):
        return None

    def build(self, a):
        from kornia.augmentation import RandomGaussianNoise

        return _flat_view()(RandomGaussianNoise(mean=a.mean, std=a.sigma, p=a.p, keepdim=True))


class ErasingArgs(Args):
    p: Unit = 0.5
    scale: _range(Unit) = [0.02, 0.33]
    ratio: _range(Annotated[float, Field(gt=0)]) = [0.3, 3.3]
    value: Unit = 0.0


@AUGMENTATIONS.register
class RandomErasing(Augmentation):
    """Set a random rectangle of each image to a constant value, with probability p.

    Lecture practice: information loss (cutout). Mirrors torchvision.transforms.RandomErasing(p, scale,
    ratio, value); built with kornia.augmentation.RandomErasing.

    Args:
        p: the chance each image loses a rectangle.
        scale: the rectangle's area as a fraction of the image's, drawn from [min, max].
        ratio: its aspect ratio, drawn from [min, max].
        value: what the rectangle is set to, in [0, 1] (kornia's limit).

    Example: `- random_erasing: {p: 0.5, scale: [0.02, 0.2]}`
    """

    name = "random_erasing"
    Args = ErasingArgs
    main_arg = "p"

    def build(self, a):
        from kornia.augmentation import RandomErasing

        return RandomErasing(_tuple(a.scale), _tuple(a.ratio), value=a.value, p=a.p, keepdim=True)


@cache
def _flat_view() -> type:
    """The module class wrapping an elementwise image op so it takes batches of any rank (made on first use,
    as this file imports no torch)."""
    import torch

    class FlatView(torch.nn.Module):
        def __init__(self, op: torch.nn.Module):
            super().__init__()
            self.op = op

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.op(x.reshape(len(x), 1, 1, -1)).reshape(x.shape)  # (B, *shape) -> (B, 1, 1, N) -> back

    return FlatView


def pipeline(choices: list[Choice]) -> torch.nn.Module | None:
    """One module applying the chosen augmentations in order to a training batch (B, *shape); None for none.

    It holds no tensors and works on any device as built, sampling on the CPU generator; `.to(device)` moves
    kornia's sampling to that device's generator (whose state a resume must then restore)."""
    if not choices:
        return None
    import torch

    return torch.nn.Sequential(*(c.entry.build(c.args) for c in choices))

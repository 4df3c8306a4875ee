"""Multi-scale sliced Wasserstein distance (SWD) between Laplacian-pyramid patch descriptors.

The distribution-level quality metric of Karras et al., "Progressive Growing of GANs for Improved
Quality, Stability, and Variation" (ICLR 2018), which needs no pretrained network:

1. Each image becomes a Laplacian pyramid: blur with the 5-tap binomial filter ``[1, 4, 6, 4, 1] / 16``
   (separable, mirror padding) and keep every second pixel, down to the last level whose shorter
   side is still at least 16 pixels; every level but the coarsest is the difference between the
   level and the next one upsampled (zero insertion, the same filter with gain 4). The coarsest level
   is the blurred image itself.
2. From every level of every image, ``patches_per_image`` 7 x 7 neighbourhoods are cut at random
   positions; a descriptor is a patch's ``C * 49`` values.
3. Per level and per image set, descriptors are normalised per channel: minus the channel's mean,
   divided by its standard deviation, both over all of that set's descriptors and their 49 pixels.
4. Per level, the sliced Wasserstein distance: project both sets on ``num_projections`` random unit
   directions, take the 1-D Wasserstein-1 distance between the projected sets, and average over
   directions. The distance is reported per level (finest first) and as the mean over levels.

The unit follows the paper: distances are multiplied by ``1e3`` (:data:`SWD_SCALE`), so numbers
read like ProGAN's tables. Lower is better; two samples of the same distribution read a small
positive floor that shrinks as more images are seen.

Choices the paper leaves open, fixed here so the value is reproducible:

* Directions come from a generator seeded with ``seed`` (the paper draws fresh ones).
* Patch positions of an image come from a generator seeded with ``seed`` and a hash of the image's
  8-bit pixel values. The same image always yields the same descriptors, so the value depends
  neither on how images are split into batches, nor on their order, nor on how they are spread
  over processes; identical real and generated sets read exactly 0.
* The paper compares equally sized sets (``mean |sort(a) - sort(b)|``). Sets of different sizes are
  compared through their quantile functions, which is the exact Wasserstein-1 distance between the
  two empirical distributions and equals the paper's formula when the sizes agree.
* A channel whose descriptors have zero spread at some level (e.g. a set of flat images) is only
  centred there, not scaled, instead of dividing by zero.

Because every set is normalised by its own statistics (as in the paper), a global change of
contrast or colour balance that scales a level uniformly is invisible to that level; blur, noise and
periodic patterns change the shape of the descriptor distribution and are seen.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_checkerboard.functional._validation import (
    check_image_batch,
    check_int,
    compute_dtype,
    to_unit_range,
)

__all__ = [
    "MIN_RESOLUTION",
    "PATCH_SIZE",
    "SWD_REDUCTIONS",
    "SWD_SCALE",
    "laplacian_pyramid",
    "sliced_wasserstein_distance",
    "swd_num_levels",
]

#: Side of the square neighbourhoods whose values form a descriptor.
PATCH_SIZE = 7
#: The coarsest pyramid level keeps its shorter side at least this many pixels.
MIN_RESOLUTION = 16
#: Distances are reported multiplied by this factor, as in the paper's tables.
SWD_SCALE = 1e3
#: Allowed values of ``reduction`` in :func:`sliced_wasserstein_distance`.
SWD_REDUCTIONS = ("mean", "none")

# Projections are drawn and applied this many directions at a time (the paper's repeat size), which
# bounds the projected-descriptor buffer to ``descriptors x 128`` values.
_DIRECTIONS_PER_CHUNK = 128
# Per-pixel weights of the image hash stay below 2**24, so the int64 sum of up to 2**31 weighted
# 8-bit values cannot overflow.
_HASH_WEIGHT_BOUND = 2**24
_GOLDEN = 0x9E3779B97F4A7C15


def swd_num_levels(height: int, width: int) -> int:
    """Number of pyramid levels for ``height x width`` images: halve while the shorter side stays >= 16.

    Odd sides round up when halved. Returns 0 for images smaller than :data:`MIN_RESOLUTION`.

    Example:
        >>> swd_num_levels(32, 32), swd_num_levels(64, 48), swd_num_levels(128, 128), swd_num_levels(15, 64)
        (2, 2, 4, 0)
    """
    side, levels = min(height, width), 0
    while side >= MIN_RESOLUTION:
        levels += 1
        side = (side + 1) // 2
    return levels


def _binomial_kernel(channels: int, gain: float, like: Tensor) -> Tensor:
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=like.dtype, device=like.device) / 16.0
    return (gain * torch.outer(taps, taps)).expand(channels, 1, 5, 5)


def _blur(x: Tensor, gain: float = 1.0, stride: int = 1) -> Tensor:
    # "reflect" mirrors about the edge pixel without repeating it, as scipy.ndimage's mode="mirror".
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, _binomial_kernel(x.shape[1], gain, x), stride=stride, groups=x.shape[1])


def _pyramid_up(x: Tensor, height: int, width: int) -> Tensor:
    batch, channels, h, w = x.shape
    spread = x.new_zeros(batch, channels, 2 * h, 2 * w)
    spread[..., ::2, ::2] = x
    return _blur(spread, gain=4.0)[..., :height, :width]


def laplacian_pyramid(images: Tensor, num_levels: int | None = None) -> list[Tensor]:
    """Laplacian pyramid of a batch, finest level first; the last entry is the coarsest Gaussian level.

    Adding every level, each upsampled back to the size of the one before it, gives back ``images``
    exactly (up to float round-off).

    Args:
        images: float ``(B, C, H, W)``.
        num_levels: number of levels; ``None`` takes :func:`swd_num_levels`.

    Returns:
        ``num_levels`` tensors; level ``k`` has sides ``ceil(H / 2**k) x ceil(W / 2**k)``.

    Raises:
        ValueError: if ``num_levels`` is not a positive int, or a level would be smaller than 3 pixels
            (too small to mirror-pad).

    Example:
        >>> import torch
        >>> fine, coarse = laplacian_pyramid(torch.rand(2, 3, 32, 32))
        >>> tuple(fine.shape), tuple(coarse.shape)
        ((2, 3, 32, 32), (2, 3, 16, 16))
        >>> fine, coarse = laplacian_pyramid(torch.full((1, 1, 32, 32), 0.5))  # no detail at any scale
        >>> float(fine.abs().max()), float(coarse.min()), float(coarse.max())
        (0.0, 0.5, 0.5)
    """
    height, width = images.shape[-2:]
    num_levels = swd_num_levels(height, width) if num_levels is None else check_int(num_levels, "num_levels", 1)
    if num_levels > 1 and min(height, width) // 2 ** (num_levels - 1) < 3:
        raise ValueError(
            f"`num_levels` must leave every level at least 3 pixels wide, got {num_levels} levels for "
            f"H x W = {height} x {width}"
        )
    pyramid = [images]
    for _ in range(num_levels - 1):
        current = pyramid[-1]
        lower = _blur(current, stride=2)
        pyramid[-1] = current - _pyramid_up(lower, *current.shape[-2:])
        pyramid.append(lower)
    return pyramid


@lru_cache(maxsize=8)
def _hash_weights(numel: int, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, _HASH_WEIGHT_BOUND, (numel,), generator=generator, dtype=torch.int64)


def _image_keys(x: Tensor, seed: int) -> list[int]:
    """One integer per image from its 8-bit values: exact integer arithmetic, the same on every device."""
    quantised = (x.detach() * 255.0).round_().to(torch.int64).flatten(1)
    weights = _hash_weights(quantised.shape[1], seed).to(quantised.device)
    sums = (quantised * weights).sum(dim=1).tolist()
    return [(value + seed * _GOLDEN) % 2**63 for value in sums]


def _patch_positions(keys: list[int], sizes: list[tuple[int, int]], patches: int) -> list[Tensor]:
    """Top-left corners ``(B, patches, 2)`` per level; an image's positions depend only on its key."""
    uniform = torch.stack(
        [
            torch.rand(len(sizes), patches, 2, generator=torch.Generator().manual_seed(key), dtype=torch.float64)
            for key in keys
        ]
    )
    positions = []
    for level, (height, width) in enumerate(sizes):
        span = torch.tensor([height - PATCH_SIZE + 1, width - PATCH_SIZE + 1], dtype=torch.float64)
        positions.append((uniform[:, level] * span).floor().to(torch.int64))
    return positions


def _descriptors(level: Tensor, corners: Tensor) -> Tensor:
    """Cut ``(B, P, C * 49)`` descriptors from ``level`` at the top-left ``corners`` ``(B, P, 2)``."""
    batch = level.shape[0]
    offsets = torch.arange(PATCH_SIZE, device=level.device)
    corners = corners.to(level.device)
    rows = corners[..., 0, None] + offsets  # (B, P, 7)
    cols = corners[..., 1, None] + offsets
    index = torch.arange(batch, device=level.device)[:, None, None, None]
    # Advanced indices around a slice put the indexed dims first: (B, P, 7, 7, C).
    patches = level[index, :, rows[..., :, None], cols[..., None, :]]
    return patches.permute(0, 1, 4, 2, 3).flatten(2)


def _check_options(patches_per_image: object, num_projections: object, seed: object) -> None:
    check_int(patches_per_image, "patches_per_image", 1)
    check_int(num_projections, "num_projections", 1)
    check_int(seed, "seed", 0)


def _update(images: Tensor, patches_per_image: int, seed: int, name: str = "images") -> Tensor:
    """Check a batch and return its descriptors ``(B, levels, patches_per_image, C * 49)``."""
    check_image_batch(images, name=name)
    height, width = images.shape[-2:]
    if min(height, width) < MIN_RESOLUTION:
        raise ValueError(
            f"`{name}` must be at least {MIN_RESOLUTION} x {MIN_RESOLUTION} pixels for the sliced Wasserstein "
            f"distance, got H x W = {height} x {width}"
        )
    x = to_unit_range(images.detach(), name=name)
    pyramid = laplacian_pyramid(x)
    sizes = [tuple(level.shape[-2:]) for level in pyramid]
    positions = _patch_positions(_image_keys(x, seed), sizes, patches_per_image)
    return torch.stack([_descriptors(level, corners) for level, corners in zip(pyramid, positions)], dim=1)


def _normalise(descriptors: Tensor, channels: int) -> Tensor:
    """Per-channel standardisation over all descriptors of one set and level (flat channels: centred only)."""
    per_channel = descriptors.reshape(descriptors.shape[0], channels, -1)
    std, mean = torch.std_mean(per_channel, dim=(0, 2), correction=0, keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return ((per_channel - mean) / std).flatten(1)


def _wasserstein_1d(a: Tensor, b: Tensor) -> Tensor:
    """Wasserstein-1 distance between the columns of sorted samples ``a`` ``(n, K)`` and ``b`` ``(m, K)``.

    The integral over ``t`` in [0, 1] of the gap between the two quantile functions, which are step
    functions with steps at ``i / n`` and ``j / m``.
    """
    n, m = a.shape[0], b.shape[0]
    if n == m:
        return (a - b).abs().mean(dim=0)
    steps = torch.cat(
        [
            torch.arange(1, n + 1, dtype=torch.float64, device=a.device) / n,
            torch.arange(1, m + 1, dtype=torch.float64, device=a.device) / m,
        ]
    ).sort().values
    widths = torch.diff(steps, prepend=steps.new_zeros(1))
    middle = steps - widths / 2
    index_a = (middle * n).floor().long().clamp_(max=n - 1)
    index_b = (middle * m).floor().long().clamp_(max=m - 1)
    return (widths.to(a.dtype)[:, None] * (a[index_a] - b[index_b]).abs()).sum(dim=0)


def _compute(generated: Tensor, real: Tensor, num_projections: int, seed: int) -> Tensor:
    """Per-level SWD (``x SWD_SCALE``) between two descriptor sets ``(N, levels, P, D)``."""
    if generated.shape[0] == 0 or real.shape[0] == 0:
        raise ValueError(
            "the sliced Wasserstein distance needs both real and generated images, got "
            f"{real.shape[0]} real and {generated.shape[0]} generated"
        )
    if generated.shape[1:] != real.shape[1:] or generated.shape[-1] % PATCH_SIZE**2:
        raise ValueError(
            "real and generated images must give descriptors of one form (the same channels and pyramid "
            f"levels), got (levels, patches, values) {tuple(real.shape[1:])} real and "
            f"{tuple(generated.shape[1:])} generated"
        )
    levels, dim = real.shape[1], real.shape[-1]
    channels = dim // PATCH_SIZE**2
    dtype = compute_dtype(real.dtype)
    directions_rng = torch.Generator().manual_seed(seed)
    distances = []
    for level in range(levels):
        a = _normalise(generated[:, level].reshape(-1, dim).to(dtype), channels)
        b = _normalise(real[:, level].reshape(-1, dim).to(dtype), channels)
        directions = torch.randn(dim, num_projections, generator=directions_rng, dtype=torch.float64)
        directions = (directions / directions.norm(dim=0, keepdim=True)).to(device=a.device, dtype=dtype)
        total = a.new_zeros(())
        for chunk in directions.split(_DIRECTIONS_PER_CHUNK, dim=1):
            projected_a = (a @ chunk).sort(dim=0).values
            projected_b = (b @ chunk).sort(dim=0).values
            total = total + _wasserstein_1d(projected_a, projected_b).sum()
        distances.append(total / num_projections)
    return torch.stack(distances) * SWD_SCALE


def sliced_wasserstein_distance(
    generated: Tensor,
    real: Tensor,
    *,
    patches_per_image: int = 128,
    num_projections: int = 512,
    seed: int = 0,
    reduction: str = "mean",
) -> Tensor:
    """Multi-scale sliced Wasserstein distance (x 1e3) between generated and real images (ProGAN's SWD).

    See the module docstring for the definition. The result does not depend on the order of the
    images; :class:`~lightning_checkerboard.metrics.SlicedWassersteinDistance` accumulates the same
    quantity over batches and processes.

    Args:
        generated: ``(N, C, H, W)``, float in [0, 1] or uint8.
        real: ``(M, C, H', W')`` in the same form; sizes may differ as long as the number of pyramid
            levels agrees.
        patches_per_image: 7 x 7 patches cut from every level of every image (the paper: 128).
        num_projections: random directions per level (the paper: 4 x 128 = 512).
        seed: seeds the directions and the patch positions.
        reduction: ``"mean"`` (the mean over levels, a scalar) or ``"none"`` (one value per level,
            finest first).

    Shape:
        - Output: ``()`` for ``reduction="mean"``, ``(levels,)`` for ``"none"``, with
          ``levels = swd_num_levels(H, W)``.

    Raises:
        ValueError: for a wrong rank, non-finite values, floats outside [0, 1], images smaller than
            16 x 16, sets whose channels or levels differ, a non-positive ``patches_per_image`` or
            ``num_projections``, a negative ``seed``, or an unknown ``reduction``.
        TypeError: if the images are not tensors, or neither float nor uint8.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.rand(4, 3, 32, 32, generator=g)
        >>> float(sliced_wasserstein_distance(real, real))
        0.0
        >>> blurred = torch.nn.functional.avg_pool2d(real, 3, 1, 1, count_include_pad=False)
        >>> per_level = sliced_wasserstein_distance(blurred, real, reduction="none")
        >>> per_level.shape, bool((per_level > 0).all())
        (torch.Size([2]), True)
    """
    _check_options(patches_per_image, num_projections, seed)
    if reduction not in SWD_REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {', '.join(map(repr, SWD_REDUCTIONS))}, got {reduction!r}")
    per_level = _compute(
        _update(generated, patches_per_image, seed, name="generated"),
        _update(real, patches_per_image, seed, name="real"),
        num_projections,
        seed,
    )
    return per_level.mean() if reduction == "mean" else per_level

"""Image-batch checks shared by the functional math and the metric classes.

Kept apart so that ``functional/`` and ``metrics/`` raise the same messages. Plain argument checks
(integers, numbers, choices) come from :mod:`lightning_checkerboard._validation`, whose ``check_int``
is re-exported here for the modules that import it from this one. Nothing here resizes: resampling an
image makes or destroys exactly the grid patterns the metrics measure.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_checkerboard._validation import check_int, check_positive_int

__all__ = [
    "MIN_BINS_PER_CELL",
    "check_image_batch",
    "check_int",
    "check_levels",
    "compute_dtype",
    "to_unit_range",
]

#: Smallest number of frequency bins between two grid bins (``H / P`` for the grid period ``P``,
#: ``2**levels`` for stacked stride-2 stages) the score supports:
#: with fewer, the 3x3 peak blocks of neighbouring grid bins touch and no reference strip fits.
MIN_BINS_PER_CELL = 4


def check_levels(levels: object) -> int:
    """Return ``levels`` (the number of stride-2 stages) as an int, or raise if it is not a positive integer."""
    return check_positive_int(levels, "levels")


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The float dtype the spectra are computed in: float64 stays, everything else becomes float32.

    Half precision is too coarse for power sums over a whole image (and CPU ``rfft2`` rejects it).
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_image_batch(
    images: object, levels: int | None = None, *, name: str = "images", period: int | None = None
) -> Tensor:
    """Check rank, dtype, finiteness and (with ``levels`` or ``period``) the size of a ``(B, C, H, W)`` batch.

    The grid of ``levels`` stride-2 stages has period ``2**levels``; ``period`` names any period ``P``
    directly. Either way ``H`` and ``W`` must be divisible by the period and at least
    :data:`MIN_BINS_PER_CELL` times it. Returns the batch unchanged. Value range is checked separately
    by :func:`to_unit_range`.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(
            f"`{name}` must have 4 dimensions (B, C, H, W), got {images.ndim} with shape {tuple(images.shape)}"
        )
    if not (images.is_floating_point() or images.dtype == torch.uint8):
        raise TypeError(f"`{name}` must be a float tensor in [0, 1] or uint8 in [0, 255], got dtype {images.dtype}")
    if images.shape[0] == 0 or images.shape[1] == 0:
        raise ValueError(f"`{name}` must hold at least one image and one channel, got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    grids = []
    if levels is not None:
        grids.append((2**levels, f"2**levels = {2**levels}", f"levels={levels}", "H / 2**levels"))
    if period is not None:
        grids.append((period, f"the period {period}", f"period={period}", "H / period"))
    for cell, divisor, setting, ratio in grids:
        if height % cell or width % cell:
            raise ValueError(
                f"`{name}` height and width must be divisible by {divisor} (crop them; resizing would "
                f"alter the grid patterns being measured), got H x W = {height} x {width}"
            )
        if height // cell < MIN_BINS_PER_CELL or width // cell < MIN_BINS_PER_CELL:
            smallest = cell * MIN_BINS_PER_CELL
            raise ValueError(
                f"`{name}` are too small for {setting}: H and W must be at least {smallest} "
                f"({ratio} >= {MIN_BINS_PER_CELL}), got H x W = {height} x {width}"
            )
    if images.is_floating_point():
        low, high = torch.aminmax(images.detach())
        if not (torch.isfinite(low) and torch.isfinite(high)):
            n_nan = int(torch.isnan(images).sum())
            n_inf = int(torch.isinf(images).sum())
            raise ValueError(f"`{name}` contain non-finite values: {n_nan} NaN and {n_inf} inf of {images.numel()}")
    return images


#: Rounding slack of the [0, 1] check, in units of the dtype's machine epsilon: resampling and blurring
#: in float arithmetic return values such as ``1 + 1.2e-7`` from [0, 1] input.
RANGE_ULPS = 4


def to_unit_range(images: Tensor, *, name: str = "images", check_range: bool = True) -> Tensor:
    """Return ``images`` as floats in [0, 1]: uint8 is divided by 255, floats are checked.

    Values within :data:`RANGE_ULPS` machine epsilons outside [0, 1] (float rounding, e.g. from
    torchvision's ``gaussian_blur``) are accepted and clamped; anything further out is refused, never
    clipped (clipping would hide artifacts). Half-precision floats are promoted to float32 (see
    :func:`compute_dtype`).
    """
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255.0
    if check_range:
        low, high = torch.aminmax(images.detach())
        low, high = float(low), float(high)
        slack = RANGE_ULPS * torch.finfo(images.dtype).eps
        if low < -slack or high > 1.0 + slack:
            raise ValueError(
                f"float `{name}` must lie in [0, 1] (pass uint8 for 0..255 data; do not clip, clipping hides "
                f"artifacts), got values in [{low!r}, {high!r}]"
            )
        if low < 0.0 or high > 1.0:
            images = images.clamp(0.0, 1.0)
    return images.to(compute_dtype(images.dtype))

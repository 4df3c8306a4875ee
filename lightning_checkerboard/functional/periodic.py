"""The checkerboard score at any integer period: seams of tiled decoders, patches, strided encoders (torch only).

Stacked stride-2 upsamplings leave patterns at periods 2, 4, ..., ``2**L``; other sources leave them
at other periods: a decoder run tile by tile leaves seams every ``tile - overlap`` pixels (48, 96 or
224, say), a patch embedding every patch size. :func:`periodic_pattern_reading` measures the periodic
pattern of period ``P`` (any integer ``P >= 2``) exactly as the checkerboard score measures the
power-of-two grid, with the same reference, noise model, within-cell cap and 95 % upper bound: the
grid bins are ``(a * H / P, b * W / P)``, ``0 <= a, b < P`` without DC, ``P**2 - 1`` of them, every
frequency of a pattern whose period divides ``P``. For ``P = 2**L`` it gives the readings of
:class:`~lightning_checkerboard.metrics.CheckerboardScore` at ``levels = L``.

A bin ``(a, b)`` repeats every ``P / gcd(a, b, P)`` pixels, so its exact period is a divisor of
``P``: the reading splits the pattern by exact period (a seam every 48 px also lights periods 24, 16,
12, 8, 6, 4, 3 and 2, its harmonics). The per-bin upper limits hold jointly (a Bonferroni correction
over all ``P**2 - 1`` bins), so the squared per-period bounds of any subset of periods add up to a 95 %
bound on that subset as well.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_checkerboard._validation import check_int, check_number
from lightning_checkerboard.functional._validation import check_image_batch, to_unit_range
from lightning_checkerboard.functional.checkerboard import (
    DEFAULT_ALPHA,
    DEFAULT_Z,
    CheckerboardSums,
    _checkerboard_score_update,
)
from lightning_checkerboard.functional.checkerboard_diagnostics import _checkerboard_diagnostics_compute
from lightning_checkerboard.functional.checkerboard_noise import _cell_divisors

__all__ = ["periodic_pattern_periods", "periodic_pattern_reading", "periodic_pattern_reading_from_sums",
           "periodic_pattern_statistics"]


def _check_period(period: object) -> int:
    return check_int(period, "period", minimum=2)


def periodic_pattern_periods(period: int) -> list[int]:
    """The exact periods a period-``P`` pattern's bins can have: the divisors ``p > 1`` of ``P``, ascending.

    These name the per-period keys of :func:`periodic_pattern_reading`.

    Raises:
        ValueError: if ``period`` is not an integer ``>= 2``.

    Example:
        >>> periodic_pattern_periods(12), periodic_pattern_periods(8)
        ([2, 3, 4, 6, 12], [2, 4, 8])
    """
    return _cell_divisors(_check_period(period))


def periodic_pattern_statistics(images: Tensor, period: int, *, kappa: float = 1.0) -> CheckerboardSums:
    """Sums over one batch of the per-image statistics on the period-``P`` grid.

    Every field of the result is a sum over images, so the sums of several batches add field by field
    (``CheckerboardSums(*(a + b for a, b in zip(first, second)))``) and give the reading of all their
    images through :func:`periodic_pattern_reading_from_sums`: a way to read more or larger images than
    one batch holds in memory.

    Args:
        images: float in [0, 1] or uint8 (scaled by 1/255).
        period: the pattern period ``P`` in pixels, an integer ``>= 2``.
        kappa: weight of the local reference in ``d = B - kappa * R``.

    Shape:
        - Input: ``(B, C, H, W)`` with ``H, W`` divisible by ``P`` and at least ``4 * P``.
        - Output: a :class:`~lightning_checkerboard.functional.checkerboard.CheckerboardSums` over
          ``G = P**2 - 1`` grid bins.

    Raises:
        TypeError: if ``images`` is not a float or uint8 tensor.
        ValueError: on a bad ``period`` or ``kappa``, a wrong rank, a size the period does not fit,
            NaN/inf, or floats outside [0, 1].

    Example:
        >>> sums = periodic_pattern_statistics(torch.full((2, 3, 24, 24), 0.5), period=6)
        >>> sums.peak.shape, int(sums.num_images)
        (torch.Size([35]), 2)
    """
    period = _check_period(period)
    kappa = check_number(kappa, "kappa", minimum=0.0)
    check_image_batch(images, period=period)
    return _checkerboard_score_update(to_unit_range(images), None, kappa, cells=period)


def periodic_pattern_reading_from_sums(
    sums: CheckerboardSums,
    period: int,
    *,
    kappa: float = 1.0,
    z: float = DEFAULT_Z,
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, Tensor]:
    """The reading of :func:`periodic_pattern_reading` from (accumulated) :func:`periodic_pattern_statistics`.

    Args:
        sums: the sums, over all images read, on the period-``P`` grid.
        period: the period ``P`` they were taken at.
        kappa: the ``kappa`` they were taken with.
        z: detection margin in standard errors.
        alpha: error rate of the upper bounds.

    Raises:
        ValueError: on a bad ``period``, ``kappa``, ``z`` or ``alpha``, or sums of another period.

    Example:
        >>> sums = periodic_pattern_statistics(torch.full((2, 3, 24, 24), 0.5), period=6)
        >>> list(periodic_pattern_reading_from_sums(sums, 6))[:5]
        ['score', 'upper', 'effective_images', 'amplitude_period_2', 'upper_period_2']
    """
    period = _check_period(period)
    kappa = check_number(kappa, "kappa", minimum=0.0)
    z = check_number(z, "z", minimum=0.0)
    alpha = check_number(alpha, "alpha", minimum=0.0, maximum=1.0, strict_minimum=True, strict_maximum=True)
    bins = sums.peak.shape[-1]
    if bins != period**2 - 1:
        raise ValueError(f"`sums` hold {bins} grid bins, the period {period} has {period**2 - 1}; got period={period}")
    diagnostics = _checkerboard_diagnostics_compute(sums, None, kappa, z, alpha, cells=period)
    out = {key: diagnostics[key] for key in ("score", "upper", "effective_images")}
    for p in _cell_divisors(period):
        out[f"amplitude_period_{p}"] = diagnostics[f"amplitude_period_{p}"]
        out[f"upper_period_{p}"] = diagnostics[f"upper_period_{p}"]
    return out


def periodic_pattern_reading(
    images: Tensor,
    period: int,
    *,
    kappa: float = 1.0,
    z: float = DEFAULT_Z,
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, Tensor]:
    """RMS amplitude, in 8-bit levels, of the pattern of period ``P`` in a batch, with its 95 % upper bound.

    The checkerboard score on the grid bins of period ``P`` (every bin whose period divides ``P``):
    per image the energy of the 3x3 Hann-window block on each bin minus ``kappa`` times its local
    reference, summed over the batch; a bin counts once its sum stands ``z`` standard errors above
    zero, capped by the energy the images hold inside their ``p x p`` cells. A pattern of RMS
    ``a / 255`` that repeats every ``P`` pixels reads ``a``; photographs read 0. For ``P = 2**L`` the
    readings equal :meth:`~lightning_checkerboard.metrics.CheckerboardScore.diagnostics` at ``levels = L``.

    The noise margin shrinks as images are added: compare readings over equal numbers of images.
    Images of exactly ``4 * P`` pixels leave room for one reference ring only, and the bound then counts
    the blocks' whole energy (loose, never low). The more bins, the more pass the ``z`` margin by
    chance on a small set: at ``P = 96`` (9215 bins) a few clean photographs read up to about 0.15
    levels against a bound of about 50; ``z=4`` removes such chance detections.

    Args:
        images: float in [0, 1] or uint8 (scaled by 1/255).
        period: the pattern period ``P`` in pixels, an integer ``>= 2`` (e.g. ``tile - overlap`` of a
            tiled decoder).
        kappa: weight of the local reference.
        z: detection margin in standard errors.
        alpha: error rate of the upper bounds (0.05: 95 %).

    Returns:
        Scalar tensors: ``score`` (the RMS amplitude on all bins), ``upper`` (the largest amplitude the
        batch cannot rule out at ``1 - alpha``), ``effective_images`` (how many independent images the
        batch is worth), then for each divisor ``p > 1`` of ``P``, ascending
        (:func:`periodic_pattern_periods`), ``amplitude_period_{p}`` and ``upper_period_{p}``: the
        same on the bins whose exact period is ``p``. The squared amplitudes add up to ``score**2``.
        The per-bin limits hold jointly (Bonferroni over all ``P**2 - 1`` bins), so
        ``sqrt(sum of upper_period_{p}**2)`` over any set of periods is still a ``1 - alpha`` bound
        on the pattern at those periods (the harmonics of a seam, say).

    Shape:
        - Input: ``(B, C, H, W)`` with ``H, W`` divisible by ``P`` and at least ``4 * P``.

    Raises:
        TypeError: if ``images`` is not a float or uint8 tensor.
        ValueError: on a bad ``period``, ``kappa``, ``z`` or ``alpha``, a wrong rank, a size the period
            does not fit, NaN/inf, or floats outside [0, 1].

    Example:
        >>> import math
        >>> g = torch.Generator().manual_seed(0)
        >>> smooth = torch.nn.functional.avg_pool2d(torch.rand(16, 3, 98, 98, generator=g), 3, 1)
        >>> images = 0.1 + 0.8 * smooth  # (16, 3, 96, 96), a smooth random texture in [0.1, 0.9]
        >>> float(periodic_pattern_reading(images, period=6)["score"])
        0.0
        >>> stripes = math.sqrt(2) * torch.cos(2 * math.pi * torch.arange(96) / 6)  # period 6, RMS 1
        >>> reading = periodic_pattern_reading(images + 3 / 255 * stripes, period=6)
        >>> round(float(reading["score"]), 1), round(float(reading["amplitude_period_6"]), 1)
        (3.0, 3.0)
        >>> float(reading["upper"]) >= float(reading["score"])
        True
    """
    period = _check_period(period)
    sums = periodic_pattern_statistics(images, period, kappa=kappa)
    return periodic_pattern_reading_from_sums(sums, period, kappa=kappa, z=z, alpha=alpha)

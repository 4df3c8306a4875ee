"""How much of the checkerboard score's grid energy is noise: shared content, copies, equal-phase cells.

Two corrections the score applies to its per-bin sums (:mod:`lightning_checkerboard.functional.checkerboard`),
each measured on the images themselves:

- **Images that share content** (near-duplicates, copies, a mode-collapsed generator) make the sample
  variance of the sums too small: :func:`near_duplicate_correlation` reads the correlation from the
  spread of the images' low-frequency log power, and :func:`design_effect` turns it into the
  variance inflation and the effective number of images.
- **Equal-phase cells** (nearest upsampling) hold no pattern, yet the windowed spectrum leaks their
  content onto the grid bins: the excess summed over the images is capped by the energy they hold
  inside their cells.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from lightning_checkerboard.functional._validation import compute_dtype
from lightning_checkerboard.functional.spectrum import hann_window_2d

__all__ = ["CONTENT_PEAK", "design_effect", "near_duplicate_correlation"]


#: Variance of ``log`` of a periodogram value of independent, random-phase content: that of the log
#: of an exponential variable, ``pi**2 / 6``.
_LOG_PERIODOGRAM_VARIANCE = math.pi**2 / 6
#: Standard deviation of the spread ratio of :func:`near_duplicate_correlation` over ``n`` independent
#: images is about ``0.45 / sqrt(n)`` (measured on white and smoothed Gaussian noise, 8 to 64 images);
#: only a ratio 4 such deviations below 1 is read as shared content.
_SPREAD_MARGIN = 1.8
#: How far one image's own content can stand above its reference on a grid bin, as a multiple of the
#: reference: ``(B - R) / R`` reached 4.1-6.3 at most, per period, over 4096 crops of each size (32-128 px)
#: of photographs the tests do not use. Copies of one image get a noise floor of this size divided by
#: the detection margin: a bin counts only where it stands above what one image's content reaches on
#: its own (a strongly periodic texture can reach further; one image cannot tell it from a pattern).
CONTENT_PEAK = 8.0
#: Below this mean log power on the fingerprint frequencies (about 1e-14 of the unit range squared)
#: images have no content there (constant images, a pure pattern, a perfect reconstruction's
#: residual): nothing is shared that could pass for a pattern, so they count as independent.
_BLANK_LOG_POWER = math.log(1e-14)


def near_duplicate_correlation(spread_sum: Tensor, spread_sq: Tensor, n: Tensor | float) -> Tensor:
    """How much of their content the images share, from the spread of their low-frequency log power.

    For independent images the log periodogram at each low frequency varies over images by at least
    ``pi**2 / 6`` (the variance of the log of an exponential variable: random-phase content), and
    photographs by more, since their contrast differs too. Crops of one scene, a mode-collapsed
    generator or copies of one image vary less: copies not at all. With ``r`` the measured variance
    (averaged over the 24 frequencies of :attr:`CheckerboardStatistics.spread`) over ``pi**2 / 6``,
    the returned correlation is ``clamp(1 - r / r0, 0, 1)``, ``r0 = 1 - 1.8 / sqrt(n)`` (four standard
    deviations of ``r`` below 1 for independent images). With fewer than 4 images only exact copies
    (no spread at all) are recognised; one image alone counts as copies (1). Images without content at these frequencies (constant ones, a
    pure pattern, an all-zero residual) share nothing and give 0.

    Args:
        spread_sum: ``sum_i`` of the per-image spread features, ``(K,)``.
        spread_sq: ``sum_i`` of their squares, ``(K,)``.
        n: number of images.

    Returns:
        Scalar in [0, 1]: 0 for independent images, 1 for copies.

    Example:
        >>> f = torch.randn(64, 24) * 1.3  # independent images: log-power spread above pi**2 / 6
        >>> float(near_duplicate_correlation(f.sum(0), f.square().sum(0), 64))
        0.0
        >>> f = torch.zeros(64, 24)  # 64 copies of one image
        >>> float(near_duplicate_correlation(f.sum(0), f.square().sum(0), 64))
        1.0
    """
    count = float(n)
    zero = torch.zeros((), dtype=spread_sum.dtype, device=spread_sum.device)
    if count < 1 or float(spread_sum.mean()) / count < _BLANK_LOG_POWER:
        return zero
    if count < 2:  # one image alone: its content is all there is, as for copies of it
        return torch.ones_like(zero)
    variance = ((spread_sq - spread_sum.square() / count).clamp_min(0) / (count - 1)).mean()
    ratio = variance / _LOG_PERIODOGRAM_VARIANCE
    if count < 4:  # too few for a spread to mean anything, unless there is none: copies
        return torch.where(ratio < 1e-3, torch.ones_like(zero), zero)
    threshold = 1.0 - _SPREAD_MARGIN / math.sqrt(count)
    return (1.0 - ratio / threshold).clamp(0.0, 1.0)


def design_effect(correlation: Tensor, n: Tensor | float) -> Tensor:
    """Variance inflation ``(1 + (n - 1) rho) / (1 - rho)`` of a sum over ``n`` images that share content.

    The sample variance of images with pairwise correlation ``rho`` estimates ``(1 - rho)`` of their
    variance, and their sum has ``n (1 + (n - 1) rho)`` of it; the ratio is what the sample-variance
    estimate of the sum's variance must be multiplied by. ``n / design_effect`` is the effective number
    of independent images. ``rho`` is capped at ``1 - 1 / n**2`` so copies give a large finite value.

    Example:
        >>> float(design_effect(torch.tensor(0.0), 64)), round(float(design_effect(torch.tensor(0.5), 64)), 1)
        (1.0, 65.0)
    """
    count = max(float(n), 1.0)
    rho = correlation.clamp(0.0, 1.0 - 1.0 / count**2)
    return (1.0 + (count - 1.0) * rho) / (1.0 - rho)


class _Noise(NamedTuple):
    """The noise model of a set of sums: variance inflation, variance floor and effective image count."""

    design_effect: Tensor
    floor: Tensor
    effective_images: Tensor


def _noise(sums: Any, z: float) -> _Noise:
    """Shared content inflates the variance of every sum (:func:`design_effect`). Copies, whose sample
    variance is 0, are one image counted ``n`` times: the floor ``rho * (CONTENT_PEAK / z * sum R)**2``
    lets a bin count only where it stands above what one image's content reaches on its own. The
    effective number of images is Kish's ``n / (1 + (n - 1) rho)``: ``n`` for independent images, 1 for
    copies."""
    n = sums.num_images
    rho = near_duplicate_correlation(sums.spread, sums.spread_squared, n)
    inflation = design_effect(rho, n)
    floor = rho * (CONTENT_PEAK / max(z, 1.0) * sums.reference).square()
    count = torch.as_tensor(n, dtype=inflation.dtype, device=inflation.device)
    return _Noise(inflation, floor, count / (1.0 + (count - 1.0).clamp_min(0) * rho))


def _cell_mean_and_variance(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance of each 2x2 cell ``[[a, b], [c, d]]`` of the last two dimensions.

    The variance by rows, ``(2 (a - b)**2 + 2 (c - d)**2 + ((a + b) - (c + d))**2) / 16``, from
    differences only, so a cell of equal values gives exactly 0 (``mean(x**2) - mean(x)**2`` leaves
    float rounding, which would let an equal-phase image keep a trace of its leaked energy).
    """
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    variance = (a - b).square_()
    variance.add_((c - d).square_()).mul_(2.0)
    top, bottom = a + b, c + d
    mean = (top + bottom).mul_(0.25)
    variance.add_(top.sub_(bottom).square_()).mul_(1.0 / 16.0)
    return mean, variance


def _cell_divisors(cells: int) -> list[int]:
    """The divisors ``d > 1`` of the grid period ``cells``, ascending: the periods its grid bins have.

    Example:
        >>> _cell_divisors(8), _cell_divisors(12)
        ([2, 4, 8], [2, 3, 4, 6, 12])
    """
    return [d for d in range(2, cells + 1) if cells % d == 0]


def _within_cells(images: Tensor, cells: int) -> Tensor:
    """Window-weighted mean square of each image's deviation from its ``d x d`` cell means, ``(B, D)``.

    One column per divisor ``d > 1`` of the grid period ``cells`` (:func:`_cell_divisors`), ascending:
    the variance inside each ``d x d`` cell, averaged over channels and weighted by the cell's share of
    ``w**2`` (normalised to sum to 1). Equal cells give exactly 0. Each cell's variance comes by the law
    of total variance from the cells one prime factor smaller (the mean of its sub-cells' variances plus
    the variance of their means): for ``cells = 2**L`` the chain ``2, 4, ..., 2**L``, 2x2 at a time.
    """
    height, width = images.shape[-2:]
    means = images.to(compute_dtype(images.dtype))
    weight = hann_window_2d(height, width, dtype=means.dtype, device=means.device).square()
    weight = weight / weight.sum()
    if cells & (cells - 1):
        return _within_any_cells(means, weight, cells)
    variance = None
    out = []
    for _ in range(cells.bit_length() - 1):
        means, between = _cell_mean_and_variance(means)
        variance = between if variance is None else between.add_(_cell_mean_and_variance(variance)[0])
        weight = _cell_mean_and_variance(weight)[0].mul_(4.0)
        out.append((variance.mean(dim=1) * weight).sum(dim=(-2, -1)))
    return torch.stack(out, dim=1)


def _cells_last(x: Tensor, size: int) -> Tensor:
    """``(..., H, W)`` as ``(..., H / size, W / size, size**2)``: each cell's values along the last dimension."""
    *lead, height, width = x.shape
    x = x.reshape(*lead, height // size, size, width // size, size).transpose(-3, -2)
    return x.reshape(*lead, height // size, width // size, size * size)


def _cell_mean_and_variance_any(x: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Mean and variance of each ``size x size`` cell of the last two dimensions.

    Measured from each cell's top-left value (``corner + mean(x - corner)``; the variance does not
    change), in two passes: a cell of equal values gives exactly its value and exactly 0.
    """
    x = _cells_last(x, size)
    corner = x[..., :1]
    x = x - corner
    shift = x.mean(dim=-1, keepdim=True)
    variance = (x - shift).square_().mean(dim=-1)
    return (corner + shift).squeeze(-1), variance


def _within_any_cells(images: Tensor, weight: Tensor, cells: int) -> Tensor:
    """:func:`_within_cells` for a period that is not a power of two: every divisor ``d > 1`` of ``cells``.

    A prime ``d`` is measured on the pixels; any other ``d`` from the cells ``d / p`` (``p`` its smallest
    prime factor), whose means and variances are ``p**2`` times fewer values than the image.
    """
    stats: dict[int, tuple[Tensor, Tensor]] = {}
    out = []
    for size in _cell_divisors(cells):
        prime = next(p for p in range(2, size + 1) if size % p == 0)
        if prime == size:
            means, variance = _cell_mean_and_variance_any(images, size)
        else:
            sub_means, sub_variance = stats[size // prime]
            means, variance = _cell_mean_and_variance_any(sub_means, prime)
            variance = variance.add_(_cells_last(sub_variance, prime).mean(dim=-1))
        stats[size] = (means, variance)
        share = _cells_last(weight, size).sum(dim=-1)
        out.append((variance.mean(dim=1) * share).sum(dim=(-2, -1)))
    return torch.stack(out, dim=1)


def _cap_by_cells(d: Tensor, within: Tensor, periods: Tensor) -> Tensor:
    """``d`` with its positive part on the bins whose period divides ``c`` scaled to at most ``within[:, k]``.

    ``c`` runs over the periods of the bins, ascending (the divisors ``> 1`` of the grid period; for
    ``2**L`` the chain 2, 4, ..., ``2**L``), ``k`` its column in ``within``. A pattern of period ``P``
    averages to zero over a ``P x P`` cell, so it lies wholly in the images' deviation from their cell
    means: they hold no more pattern energy at the periods dividing ``P`` than that.
    The windowed spectrum can claim more: the Hann window varies inside a cell, so images of equal
    cells (nearest upsampling) leak energy onto the grid frequencies that no phase of theirs carries.
    Cells are capped in turn, smallest first. The score applies it to the sums over
    images, not image by image: capping each image's noisy ``d`` would cut only its upward noise and
    read a real pattern low.
    """
    targets = sorted(set(periods.tolist()))
    if len(targets) != within.shape[1]:
        raise ValueError(f"`within` has {within.shape[1]} cell sizes, the grid bins {len(targets)} periods")
    periods = periods.to(d.device)
    positive = d.clamp_min(0)
    scale = torch.ones_like(d)
    for column, target in enumerate(targets):
        mask = (target % periods) == 0
        total = (positive * scale * mask).sum(dim=1)
        limit = within[:, column].to(d.dtype)
        factor = torch.where(total > limit, limit / total.clamp_min(torch.finfo(d.dtype).tiny), torch.ones_like(total))
        scale = torch.where(mask, scale * factor[:, None], scale)
    return torch.where(d > 0, d * scale, d)

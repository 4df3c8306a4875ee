"""Diagnostics of the checkerboard score: per-period amplitudes, PNR, contrast-free ratio, upper bound.

All of them are read from the same :class:`~lightning_checkerboard.functional.checkerboard.CheckerboardSums`
as the score, so a metric gets them without a second pass over the images;
``_checkerboard_diagnostics_compute`` gathers them into the dict that
:meth:`~lightning_checkerboard.metrics.CheckerboardScore.diagnostics` returns.

The upper bound (:func:`checkerboard_upper_bound_from_sums`) is the largest grid-pattern amplitude
that the sums cannot rule out at ``1 - alpha`` (95 % by default): what a score of 0 means.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_checkerboard._validation import check_number
from lightning_checkerboard.functional.checkerboard import (
    DEFAULT_ALPHA,
    DEFAULT_Z,
    CheckerboardSums,
    _grid_cells,
    _grid_periods,
    _noise,
    _variance_of_sum,
    _peak_excess,
    checkerboard_energy,
    checkerboard_score_from_sums,
    grid_bin_periods,
)
from lightning_checkerboard.functional.checkerboard_noise import _cell_divisors

__all__ = [
    "checkerboard_upper_bound_from_sums",
    "reference_bend",
    "checkerboard_upper_energy",
    "contrast_free_ratio",
    "peak_to_reference_db",
    "period_amplitudes",
    "student_t_quantile",
]


#: The bend assumed where the grid leaves room for one ring of strips (images of ``4 * 2**L`` pixels):
#: none can be measured, and upsampled content with a deep notch left patterns above any finite
#: guess (a bend of 2 covered 77 % of period-8 patterns on smooth 32-px images): the bound counts the
#: blocks' whole energy there.
SINGLE_RING_BEND = math.inf
#: Relative rounding allowed for in each bin's upper limit (a standard deviation of ``1e-3 * sum B``).
BOUND_ROUNDING = 1e-3


def _period_mask(cells: int, device: torch.device) -> Tensor:
    """``(D, G)``: row ``k`` marks the grid bins whose exact period is the ``k``-th divisor ``> 1`` of ``cells``."""
    periods = _grid_periods(cells).to(device)
    targets = torch.tensor(_cell_divisors(cells), device=device)
    return periods[None, :] == targets[:, None]


def _split_by_period(energy: Tensor, n: Tensor | float, cells: int, scale: float) -> Tensor:
    """``sqrt(sum of energy on the period-p bins / n) * scale`` for each divisor ``p > 1`` of the grid period
    ``cells``, ascending (``2, 4, ..., 2**L`` for ``cells = 2**L``)."""
    mask = _period_mask(cells, energy.device)
    per_period = torch.where(mask, energy[None, :], torch.zeros((), dtype=energy.dtype, device=energy.device)).sum(-1)
    n = torch.as_tensor(n, dtype=energy.dtype, device=energy.device).clamp_min(1)
    return (per_period / n).sqrt() * scale


def period_amplitudes(
    sum_d: Tensor,
    sum_d_sq: Tensor,
    n: Tensor | float,
    levels: int,
    z: float = DEFAULT_Z,
    scale: float = 255.0,
    *,
    design_effect: Tensor | float = 1.0,
    floor: Tensor | None = None,
    cap: Tensor | None = None,
) -> Tensor:
    """The score split by period: entry ``l - 1`` is the RMS amplitude on the period-``2**l`` bins.

    The squares add up to the square of :func:`checkerboard_score_from_sums`.

    Args:
        sum_d: ``sum_i d_i(p)``, ``(4**L - 1,)``.
        sum_d_sq: ``sum_i d_i(p)**2``, ``(4**L - 1,)``.
        n: number of images.
        levels: ``L``.
        z: margin in standard errors.
        scale: 255 for 8-bit levels.
        design_effect: variance inflation for images that share content (see
            :func:`~lightning_checkerboard.functional.checkerboard_energy`).
        floor: smallest variance of each sum.
        cap: the images' summed within-cell energy per level (see
            :func:`~lightning_checkerboard.functional.checkerboard_energy`).

    Shape:
        - Output: ``(L,)`` for periods ``2, 4, ..., 2**L``.

    Example:
        >>> d = torch.zeros(2, 15)
        >>> d[:, grid_bin_periods(2) == 4] = 1e-4 / 12  # a pattern of RMS 0.01 on the period-4 bins
        >>> period_amplitudes(d.sum(0), (d**2).sum(0), 2, levels=2, scale=1.0)
        tensor([0.0000, 0.0100])
    """
    energy = checkerboard_energy(sum_d, sum_d_sq, n, z, design_effect=design_effect, floor=floor, cap=cap)
    return _split_by_period(energy, n, 2**levels, scale)


def checkerboard_upper_energy(
    sum_d: Tensor,
    sum_d_sq: Tensor,
    n: Tensor | float,
    alpha: float = DEFAULT_ALPHA,
    *,
    design_effect: Tensor | float = 1.0,
    floor: Tensor | None = None,
) -> Tensor:
    """Per grid bin, the largest pattern energy (times ``n``) that the sums cannot rule out.

    Each bin gets the one-sided upper confidence limit ``max(0, sum d + t * sqrt(V))``, with ``V`` the
    variance of the sum over images: ``n * s**2`` (``s**2`` the sample variance of ``d``), times
    ``design_effect`` and at least ``floor`` as in
    :func:`~lightning_checkerboard.functional.checkerboard_energy`. ``t`` is the Student-t quantile at
    ``1 - alpha / G`` over the ``G`` bins (Bonferroni) with ``n_eff - 1`` degrees of freedom,
    ``n_eff = n / design_effect``, so all ``G`` limits hold together with probability at least
    ``1 - alpha`` and so does their sum. With fewer than two (effective) images nothing is ruled out
    (``inf``). The limits hold for the sums they are given: where ``d`` subtracts a reference that
    over-predicts the images' own energy on the bin, they read a pattern low, which is why
    :func:`checkerboard_upper_bound_from_sums` is given a reference scaled down by
    :func:`reference_bend`.

    Args:
        sum_d: ``sum_i d_i(p)``.
        sum_d_sq: ``sum_i d_i(p)**2``.
        n: number of images.
        alpha: error rate of the joint bound, in (0, 1).
        design_effect: variance inflation for images that share content.
        floor: smallest variance of each sum.

    Shape:
        - Input: ``(G,)`` each; ``n`` scalar.
        - Output: ``(G,)``, non-negative; ``sum d`` itself where every image agrees (no variance).

    Raises:
        ValueError: if ``alpha`` is not in (0, 1).

    Example:
        >>> d = torch.tensor([-1.0, 1.0, -1.0, 1.0])  # one bin, 4 images: sum 0, sample variance 4/3
        >>> checkerboard_upper_energy(d.sum()[None], d.square().sum()[None], 4, alpha=0.05)  # t(3) = 2.35
        tensor([5.4325])
    """
    alpha = check_number(alpha, "alpha", minimum=0.0, maximum=1.0, strict_minimum=True, strict_maximum=True)
    count = float(n)
    effective = count / float(design_effect)
    if count < 2 or effective < 2:
        return torch.full_like(sum_d, math.inf)
    t = student_t_quantile(1.0 - alpha / max(sum_d.numel(), 1), effective - 1)
    # n * s**2 = (sum d**2 - (sum d)**2 / n) * n / (n - 1): the variance of the sum over n images
    n_tensor = torch.as_tensor(count, dtype=sum_d.dtype, device=sum_d.device)
    variance_of_sum = _variance_of_sum(sum_d, sum_d_sq, n_tensor, count / (count - 1) * float(design_effect), floor)
    return (sum_d + t * variance_of_sum.sqrt()).clamp_min(0)


def reference_bend(background: Tensor) -> Tensor:
    """How far, at most, the reference may over-predict each grid bin's own background: a factor ``>= 1``.

    The reference ``R`` averages the power on strips 2 to 4 bins from the grid bin, which is right where
    the spectrum is flat there. Where it bends towards the grid bin, ``R`` over-predicts the block:
    images made by upsampling (bilinear, nearest, a generator's own layers) have a notch exactly on the
    grid frequencies, and near DC the steep spectrum of a photograph is convex. From the summed
    background of each side's inner ring (2 bins out) and outer rings (3 to 4 bins out):

    - ``notch``: per axis the geometric mean over its two sides of outer / inner, which a slope leaves
      near 1 (one side rises, the other falls) and a notch raises on both; the larger axis, at least 1;
    - ``slope``: the largest ratio ``s`` between opposite inner rings, turned into
      ``(1 + s)**2 / (4 s)``, the ratio of their arithmetic to their harmonic mean: how far the mean of
      the two sides can stand above the centre of a convex profile;

    and ``bend = notch**3 * slope``: the block's bins lie up to three ring steps further in than the
    outer-to-inner step measured. The exponent is calibrated: with 2, images brought up by bilinear
    stages still left patterns above their bound (``recipes/reports/calibrate_score.py``). A flat
    background gives 1. Images of ``4 * 2**L`` pixels leave room for one ring only (marked by a
    negative outer ring): the bend cannot be measured there and is taken as :data:`SINGLE_RING_BEND`
    (``inf``: the bound counts the blocks' whole energy).

    Args:
        background: ``sum_i`` of :attr:`~lightning_checkerboard.functional.CheckerboardStatistics.background`,
            ``(G, 4, 2)``.

    Shape:
        - Output: ``(G,)``.

    Example:
        >>> flat = torch.ones(1, 4, 2)
        >>> notch = torch.tensor([[[1.0, 4.0], [1.0, 4.0], [1.0, 2.0], [1.0, 2.0]]])  # rising away from the bin
        >>> slope = torch.tensor([[[4.0, 8.0], [1.0, 0.5], [2.0, 2.0], [2.0, 2.0]]])  # falling along u
        >>> reference_bend(flat).tolist(), reference_bend(notch).tolist(), reference_bend(slope).tolist()
        ([1.0], [64.0], [1.5625])
    """
    tiny = torch.finfo(background.dtype).tiny
    one = torch.ones((), dtype=background.dtype, device=background.device)
    inner, outer = background[..., 0], background[..., 1]
    # A negative outer ring marks images with room for one ring only: the bend cannot be measured, and
    # the bound then subtracts no reference at all.
    unmeasured = (outer < 0).any(dim=-1)
    step = torch.where(inner > 0, outer / inner.clamp_min(tiny), one)
    notches, slopes = [], []
    for minus, plus in ((0, 1), (2, 3)):
        notches.append((step[..., minus] * step[..., plus]).sqrt())
        low = torch.minimum(inner[..., minus], inner[..., plus])
        high = torch.maximum(inner[..., minus], inner[..., plus])
        slopes.append(torch.where(low > 0, high / low.clamp_min(tiny), one))
    notch = torch.maximum(*notches).clamp_min(1.0)
    ratio = torch.maximum(*slopes).clamp_min(1.0)
    bend = notch**3 * (1.0 + ratio).square() / (4.0 * ratio)
    return torch.where(unmeasured, torch.full_like(bend, SINGLE_RING_BEND), bend)


def student_t_quantile(p: float, dof: float) -> float:
    """The ``p`` quantile of Student's t distribution with ``dof`` degrees of freedom (torch only).

    The Cornish-Fisher expansion in the normal quantile ``z`` (Abramowitz & Stegun 26.7.5, five
    terms): close to the exact quantile once ``dof`` reaches about 10, and a few per cent low at
    very few degrees of freedom and far tails, where the bound is loose anyway.

    Example:
        >>> round(student_t_quantile(0.975, 60), 3), round(student_t_quantile(0.95, 1e9), 3)
        (2.0, 1.645)
    """
    z = float(torch.special.ndtri(torch.tensor(p, dtype=torch.float64)))
    v = float(dof)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4))


def checkerboard_upper_bound_from_sums(
    sum_d: Tensor,
    sum_d_sq: Tensor,
    n: Tensor | float,
    alpha: float = DEFAULT_ALPHA,
    scale: float = 255.0,
    levels: int | None = None,
    *,
    design_effect: Tensor | float = 1.0,
    floor: Tensor | None = None,
) -> Tensor:
    """The largest checkerboard amplitude the measurement cannot rule out at ``1 - alpha`` (8-bit levels).

    ``sqrt(sum_p U(p) / n) * scale`` with the per-bin limits ``U`` of
    :func:`checkerboard_upper_energy`: a score of 0 with a bound of 0.4 says "no grid pattern of RMS
    above 0.4 levels, at 95 %". With ``levels`` it returns the bound per period instead (entry
    ``l - 1`` for period ``2**l``), like :func:`period_amplitudes`. Returns ``inf`` with fewer than two
    (effective) images: they rule nothing out. The metric gives it ``d = B - R / bend``
    (:func:`reference_bend`), so the bound allows for a reference that over-predicts.

    Args:
        sum_d: ``sum_i d_i(p)``.
        sum_d_sq: ``sum_i d_i(p)**2``.
        n: number of images.
        alpha: error rate of the bound (0.05 for 95 %).
        scale: 255 for 8-bit levels.
        levels: ``L`` to split the bound by period; ``None`` for the total.
        design_effect: variance inflation for images that share content.
        floor: smallest variance of each sum.

    Shape:
        - Input: ``(G,)`` each.
        - Output: scalar, or ``(L,)`` with ``levels``.

    Example:
        >>> d = torch.tensor([[1e-4, 0.0], [1e-4, 0.0]])  # 2 images that agree exactly: no uncertainty
        >>> checkerboard_upper_bound_from_sums(d.sum(0), (d**2).sum(0), 2, scale=1.0)
        tensor(0.0100)
    """
    upper = checkerboard_upper_energy(sum_d, sum_d_sq, n, alpha, design_effect=design_effect, floor=floor)
    if levels is not None:
        return _split_by_period(upper, n, 2**levels, scale)
    n = torch.as_tensor(n, dtype=upper.dtype, device=upper.device).clamp_min(1)
    return (upper.sum() / n).sqrt() * scale


def _bound_sums(sums: CheckerboardSums, kappa: float) -> tuple[Tensor, Tensor]:
    """``sum d`` and ``sum d**2`` of ``d = B - kappa * R / bend``, from the moments of ``B`` and ``R``."""
    weight = kappa / reference_bend(sums.background)
    sum_d = sums.peak - weight * sums.reference
    sum_d_sq = sums.peak_squared - 2.0 * weight * sums.peak_reference + weight.square() * sums.reference_squared
    count = torch.as_tensor(sums.num_images, dtype=sum_d.dtype, device=sum_d.device).clamp_min(1)
    # Rounding can leave the moments' difference below what Cauchy-Schwarz allows: never a negative variance.
    return sum_d, torch.maximum(sum_d_sq, sum_d.square() / count)


def peak_to_reference_db(sum_peak: Tensor, sum_reference: Tensor, levels: int) -> Tensor:
    """Per-period diagnostic ``PNR_l = 10 log10(sum B / sum R)`` over the period-``2**l`` bins, in dB.

    About 0 dB (slightly below, as ``R`` takes a max) where the spectrum is smooth; positive where
    a grid pattern stands out. For plots: unlike the score it has no noise margin, and bicubic
    resampling, whose response dips at the grid frequencies, misreads as a negative PNR.

    Args:
        sum_peak: ``sum_i B_i(p)``, ``(4**L - 1,)``.
        sum_reference: ``sum_i R_i(p)``, ``(4**L - 1,)``.
        levels: ``L``.

    Shape:
        - Output: ``(L,)`` for periods ``2, 4, ..., 2**L``.

    Example:
        >>> peak_to_reference_db(torch.full((3,), 10.0), torch.ones(3), levels=1)
        tensor([10.])
    """
    return _peak_to_reference_db(sum_peak, sum_reference, 2**levels)


def _peak_to_reference_db(sum_peak: Tensor, sum_reference: Tensor, cells: int) -> Tensor:
    """:func:`peak_to_reference_db` on the grid of period ``cells``: one entry per divisor ``> 1``, ascending."""
    mask = _period_mask(cells, sum_peak.device).to(sum_peak.dtype)
    tiny = torch.finfo(sum_peak.dtype).tiny
    return 10.0 * torch.log10((mask @ sum_peak).clamp_min(tiny) / (mask @ sum_reference).clamp_min(tiny))


def contrast_free_ratio(score: Tensor, pixel_std: Tensor, scale: float = 255.0) -> Tensor:
    """``A / (255 * pixel std)``: the pattern's RMS as a fraction of the image content's RMS.

    A generator with low output contrast (say, BatchNorm in eval mode early in training) hides its
    pattern from the absolute score; this ratio does not. ``pixel_std`` is the within-image standard
    deviation (around each image's and channel's own mean, the same mean the spectra remove), pooled
    over images and channels. Returns 0 where ``pixel_std`` is 0 and the score is 0.

    Args:
        score: checkerboard score in 8-bit levels.
        pixel_std: pooled within-image pixel standard deviation of [0, 1] images.
        scale: the score's scale (255 for 8-bit levels).

    Example:
        >>> contrast_free_ratio(torch.tensor(2.55), torch.tensor(0.1))
        tensor(0.1000)
    """
    tiny = torch.finfo(pixel_std.dtype).tiny
    return score / (scale * pixel_std.clamp_min(tiny))



def _checkerboard_diagnostics_compute(
    sums: CheckerboardSums,
    levels: int | None = None,
    kappa: float = 1.0,
    z: float = DEFAULT_Z,
    alpha: float = DEFAULT_ALPHA,
    scale: float = 255.0,
    *,
    cells: int | None = None,
) -> dict[str, Tensor]:
    """Score, upper bound, contrast-free ratio and per-period amplitudes, bounds and PNR of the sums.

    The sums' grid has period ``2**levels``, or ``cells`` for any period (give one of them). Keys:
    ``score``, ``upper``, ``ratio``, ``effective_images``, then ``amplitude_period_{p}``,
    ``upper_period_{p}`` and ``pnr_db_period_{p}`` for every divisor ``p > 1`` of the period, ascending
    (``p = 2, 4, ..., 2**levels``); scalar tensors.
    """
    cells = _grid_cells(levels, cells)
    sum_d = _peak_excess(sums.peak, sums.reference, kappa)
    n = sums.num_images
    noise = _noise(sums, z)
    spread = {"design_effect": noise.design_effect, "floor": noise.floor}
    score = checkerboard_score_from_sums(sum_d, sums.d_squared, n, z, scale, cap=sums.within, **spread)
    count = torch.as_tensor(n, dtype=sums.pixel_variance.dtype, device=sums.pixel_variance.device)
    pixel_std = (sums.pixel_variance / count.clamp_min(1)).sqrt()
    bound_d, bound_d_sq = _bound_sums(sums, kappa)
    # Float32 sums and FFTs leave a relative error of about 1e-5 on a bin; on images without content noise
    # (smooth ones) the limit would otherwise sit on the truth and miss it by that rounding.
    rounding = (BOUND_ROUNDING * sums.peak).square()
    bound = {"design_effect": noise.design_effect, "floor": torch.maximum(noise.floor, rounding)}
    # The bound is never below the score: it allows for more, never for less, than the score counts.
    upper = torch.maximum(checkerboard_upper_bound_from_sums(bound_d, bound_d_sq, n, alpha, scale, **bound), score)
    out = {
        "score": score,
        "upper": upper,
        "ratio": contrast_free_ratio(score, pixel_std, scale),
        "effective_images": noise.effective_images.clone(),
    }
    energy = checkerboard_energy(sum_d, sums.d_squared, n, z, cap=sums.within, **spread)
    amplitude = _split_by_period(energy, n, cells, scale)
    per_period = {
        "amplitude_period": amplitude,
        "upper_period": torch.maximum(
            _split_by_period(checkerboard_upper_energy(bound_d, bound_d_sq, n, alpha, **bound), n, cells, scale),
            amplitude,
        ),
        "pnr_db_period": _peak_to_reference_db(sums.peak, sums.reference, cells),
    }
    for name, values in per_period.items():
        for index, period in enumerate(_cell_divisors(cells)):
            out[f"{name}_{period}"] = values[index]
    return out

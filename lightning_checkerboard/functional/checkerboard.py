"""The checkerboard score: grid-bin statistics of each image and the score of their sums (torch only).

The checkerboard score estimates the RMS amplitude, in 8-bit levels, of the periodic pattern that
``levels`` stacked stride-2 upsamplings leave at periods 2, 4, ..., 2**levels (Odena, Dumoulin & Olah,
"Deconvolution and Checkerboard Artifacts", Distill 2016). It is computed in two steps so that a
metric can accumulate it over a dataset with plain sums (exact under DDP):

1. :func:`checkerboard_statistics` gives, per image, the power ``B(p)`` of the unwindowed DFT on every
   grid bin, its local reference ``R(p)`` (and the reference extrapolated to the bin), and the same
   statistic on probe bins between the grid bins, all divided by ``(H * W)**2`` so they are mean
   squares of a [0, 1] image, whatever its size.
2. ``_checkerboard_score_compute`` groups the bins by period: a period counts when its total
   ``sum_i sum_p d_i(p)``, ``d = B - kappa * R``, stands ``z`` standard deviations above 0, the
   standard deviation being the larger of the totals' spread between images and the probes' spread
   (which copies of one image cannot shrink). :func:`checkerboard_score_from_sums` is the older
   per-bin rule on ``sum d``, ``sum d**2`` and ``n`` alone, kept for callers that have only those.

``_checkerboard_score_update`` sums one batch and ``_checkerboard_score_compute`` turns the sums into
the score; :func:`checkerboard_score` (one batch) and
:class:`~lightning_checkerboard.metrics.CheckerboardScore` (a dataset) both call that pair. The
per-period diagnostics and the upper bound, from the same sums, are in
:mod:`lightning_checkerboard.functional.checkerboard_diagnostics`.

Every image is divided by its own ``(H * W)**2`` before summing, rather than the sums by
``n * (H * W)**2`` at the end. For a fixed size the two are identical; the per-image form also
gives the right answer for a dataset of mixed sizes and keeps the float32 states near 1e-4 instead of
growing with the fourth power of the image side.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import torch
from torch import Tensor

from lightning_checkerboard._validation import check_number
from lightning_checkerboard.functional._validation import (
    check_image_batch,
    check_levels,
    compute_dtype,
    to_unit_range,
)

__all__ = [
    "CheckerboardStatistics",
    "CheckerboardSums",
    "PeriodTotals",
    "checkerboard_energy",
    "checkerboard_score",
    "checkerboard_score_from_sums",
    "checkerboard_statistics",
    "grid_bin_periods",
    "raw_power",
]

#: The detection margin: a grid bin counts only what stands 3 standard errors above zero.
DEFAULT_Z = 3.0
#: The upper bound's error rate: it holds with probability at least ``1 - DEFAULT_ALPHA``.
DEFAULT_ALPHA = 0.05
#: A period whose totals vary between images by less than this share of what the probes and the
#: pattern's cross term predict holds no content on its bins (a spectral zero: equal blocks, smooth
#: upsampled images, copies of one image); its bound then rests on the bins' own power.
QUIET_SHARE = 0.25


def _grid_coordinates(levels: int) -> list[tuple[int, int]]:
    cells = 2**levels
    return [(a, b) for a in range(cells) for b in range(cells) if (a, b) != (0, 0)]


def grid_bin_periods(levels: int) -> Tensor:
    """Period, in pixels, of the pattern component on each grid bin, in the order of the score states.

    Grid bin ``(a, b)`` (frequency ``(a, b) / 2**levels`` cycles per pixel) repeats every
    ``2**levels / gcd(a, b, 2**levels)`` pixels, so a period-4 pattern lights the 3 period-2 bins and
    the 12 period-4 bins, but none of the 48 period-8 ones.

    Args:
        levels: number of stride-2 stages ``L``; there are ``4**L - 1`` grid bins (DC excluded).

    Shape:
        - Output: ``(4**L - 1,)``, int64.

    Raises:
        ValueError: if ``levels`` is not a positive int.

    Example:
        >>> grid_bin_periods(2).tolist()
        [4, 2, 4, 4, 4, 4, 4, 2, 4, 2, 4, 4, 4, 4, 4]
    """
    levels = check_levels(levels)
    cells = 2**levels
    periods = [cells // math.gcd(math.gcd(a, b), cells) for a, b in _grid_coordinates(levels)]
    return torch.tensor(periods, dtype=torch.long)


def _half_plane_index(rows: Tensor, cols: Tensor, height: int, width: int) -> Tensor:
    """Flat index into an ``rfft2`` half plane of full-plane bins ``(rows, cols)`` (any integers)."""
    rows, cols = rows % height, cols % width
    mirrored = cols > width // 2
    rows = torch.where(mirrored, (-rows) % height, rows)
    cols = torch.where(mirrored, width - cols, cols)
    return rows * (width // 2 + 1) + cols


#: Reference strips reach ``1 .. REACH`` bins from a grid bin (3 bins wide): the near strip (distance 1)
#: and the far strips (distances 2 .. REACH) also give the quadratic extrapolation to the bin itself.
REACH = 3
#: Mean squared distance, in bins, of the near strip ``(+-1, -1..1)`` and of the far strips ``(+-2..3, -1..1)``.
_NEAR_MOMENT = 1.0 + 2.0 / 3.0
_FAR_MOMENT = sum(d * d for d in range(2, REACH + 1)) / (REACH - 1) + 2.0 / 3.0


class _Layout(NamedTuple):
    """Gather indices into the flattened ``rfft2`` half plane, built once per size (no Python loop per bin)."""

    grid: Tensor  # (G,) the grid bins
    on_axis: Tensor  # (G,) bool: grid bin on the u or v axis, where boundary and edge energy runs
    near_u: Tensor  # (G, 6) strip at distance 1 along u, 3 bins wide
    far_u: Tensor  # (G, 6 * (REACH - 1))
    near_v: Tensor
    far_v: Tensor
    axis_near: Tensor  # (G, 2) on the axis line through an on-axis bin, distance 1 (off-axis bins: along u)
    axis_far: Tensor  # (G, 2 * (REACH - 1))
    along_u: Tensor  # (G,) bool: the axis line runs along u (the bin has v = 0)
    probes: Tensor  # (Q,) probe bins halfway between grid bins, Q = 3 * G
    probe_on_axis: Tensor  # (Q,)
    probe_u: Tensor  # (Q, 6) the probe's own near strips
    probe_v: Tensor  # (Q, 6)
    probe_axis: Tensor  # (Q, 2)
    probe_along_u: Tensor  # (Q,)


def _probe_offsets(step_u: int, step_v: int) -> list[tuple[int, int]]:
    half_u, half_v = step_u // 2, step_v // 2
    return [(half_u, 0), (0, half_v), (half_u, half_v)]


@lru_cache(maxsize=64)
def _grid_layout(height: int, width: int, levels: int, device: torch.device) -> _Layout:
    """Gather indices of every grid bin, its reference strips and its probes (see :func:`checkerboard_statistics`)."""
    cells = 2**levels
    step_u, step_v = height // cells, width // cells
    grid = torch.tensor(_grid_coordinates(levels), dtype=torch.long)
    centre_u, centre_v = grid[:, 0] * step_u, grid[:, 1] * step_v
    across = torch.tensor([-1, 0, 1])

    def signed(lo: int, hi: int) -> Tensor:
        return torch.cat([-torch.arange(lo, hi + 1), torch.arange(lo, hi + 1)])

    def gather(cu: Tensor, cv: Tensor, du: Tensor, dv: Tensor) -> Tensor:
        du, dv = torch.meshgrid(du, dv, indexing="ij")
        rows = cu[:, None] + du.reshape(1, -1)
        cols = cv[:, None] + dv.reshape(1, -1)
        return _half_plane_index(rows, cols, height, width).to(device)

    def axis(cu: Tensor, cv: Tensor) -> Tensor:
        return ((cu % height) == 0) | ((cv % width) == 0)

    def line(cu: Tensor, cv: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor]:
        """Bins on the axis line through each bin: along u where v = 0, else along v."""
        along_u = (cv % width) == 0
        du = torch.where(along_u[:, None], offsets[None, :], torch.zeros_like(offsets)[None, :])
        dv = torch.where(along_u[:, None], torch.zeros_like(offsets)[None, :], offsets[None, :])
        rows, cols = cu[:, None] + du, cv[:, None] + dv
        return _half_plane_index(rows, cols, height, width).to(device), along_u.to(device)

    zero = torch.zeros(1, dtype=torch.long)
    grid_index = gather(centre_u, centre_v, zero, zero)[:, 0]
    near, far = signed(1, 1), signed(2, REACH)
    offsets = _probe_offsets(step_u, step_v)
    probe_u = torch.cat([centre_u + du for du, _ in offsets])
    probe_v = torch.cat([centre_v + dv for _, dv in offsets])
    axis_near, along_u = line(centre_u, centre_v, near)
    axis_far, _ = line(centre_u, centre_v, far)
    probe_axis, probe_along_u = line(probe_u, probe_v, near)
    return _Layout(
        grid_index,
        axis(centre_u, centre_v).to(device),
        gather(centre_u, centre_v, near, across),
        gather(centre_u, centre_v, far, across),
        gather(centre_u, centre_v, across, near),
        gather(centre_u, centre_v, across, far),
        axis_near,
        axis_far,
        along_u,
        gather(probe_u, probe_v, zero, zero)[:, 0],
        axis(probe_u, probe_v).to(device),
        gather(probe_u, probe_v, near, across),
        gather(probe_u, probe_v, across, near),
        probe_axis,
        probe_along_u,
    )


class CheckerboardStatistics(NamedTuple):
    """Per-image statistics of :func:`checkerboard_statistics`, in mean-square units of a [0, 1] image.

    Attributes:
        peak: ``B_i(p)``, power on each grid bin, shape ``(B, G)``.
        reference: ``R_i(p)``, the content power expected on that bin from its neighbours, ``(B, G)``.
        pixel_variance: variance of each image around its own mean, averaged over channels, ``(B,)``.
        reference_low: the reference extrapolated to the bin from its near and far strips (a spectrum
            with a minimum on the grid, as upsampled images have, extrapolates lower), ``(B, G)``.
        probe: ``e_i(q) = P_i(q) - R_i(q)`` on the probe bins halfway between grid bins, where no grid
            pattern lies: the same statistic as ``d`` on bins known to be empty, ``(B, 3 * G)``.
    """

    peak: Tensor
    reference: Tensor
    pixel_variance: Tensor
    reference_low: Tensor | None = None
    probe: Tensor | None = None


def raw_power(images: Tensor) -> tuple[Tensor, Tensor]:
    """Unwindowed power ``|DFT|**2 / (H W)**2`` of each mean-free image, averaged over channels (half plane).

    Returns the ``(B, H, W // 2 + 1)`` power and the per-image pixel variance ``(B,)``. With no window,
    a pattern that repeats an integer number of times across the image puts all its energy exactly on
    the grid bins (Parseval: its mean square is the sum of its bins), and an image made of equal
    ``2**k x 2**k`` blocks has exactly zero power on the grid bins of periods up to ``2**k``.
    """
    height, width = images.shape[-2:]
    x = images.to(compute_dtype(images.dtype))
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    pixel_variance = x.square().mean(dim=(1, 2, 3))
    spectrum = torch.fft.rfft2(x)
    power = (spectrum.real.square() + spectrum.imag.square()).mean(dim=1)
    return power / float(height * width) ** 2, pixel_variance


def _direction_reference(
    power: Tensor, strips: tuple[Tensor, ...], axis_line: tuple[Tensor, Tensor], on_axis: Tensor, along_u: Tensor
) -> tuple[Tensor, Tensor]:
    """Reference and its extrapolation to the bin, per image and bin.

    ``strips`` is ``(near_u, far_u, near_v, far_v)`` (far ones empty for probes), ``axis_line`` the near
    and far bins on the axis line. Off the axes the two strip directions are pooled. On an axis
    the image border and axis-aligned edges put a line of energy along the axis (one bin wide for
    smooth content), so the reference there is the axis line itself: a strip would dilute the line.
    """
    def means(index: Tensor) -> Tensor:
        return power.index_select(1, index.flatten()).view(power.shape[0], *index.shape).mean(-1)

    def reach(near: Tensor, far: Tensor, near_moment: float, far_moment: float) -> tuple[Tensor, Tensor]:
        """Mean of the near and far bins, and their quadratic extrapolation to distance 0."""
        near_mean = means(near)
        if far.shape[1] == 0:  # a probe: near bins only
            return near_mean, near_mean
        far_mean = means(far)
        share = near.shape[1] / (near.shape[1] + far.shape[1])
        slope = near_moment / (far_moment - near_moment)
        return share * near_mean + (1 - share) * far_mean, near_mean - (far_mean - near_mean) * slope

    near_u, far_u, near_v, far_v = strips
    ru, eu = reach(near_u, far_u, _NEAR_MOMENT, _FAR_MOMENT)
    rv, ev = reach(near_v, far_v, _NEAR_MOMENT, _FAR_MOMENT)
    rl, el = reach(*axis_line, _NEAR_MOMENT - 2.0 / 3.0, _FAR_MOMENT - 2.0 / 3.0)
    reference = torch.where(on_axis, rl, 0.5 * (ru + rv))
    low = torch.where(on_axis, el, 0.5 * (eu + ev))
    return reference, low


def checkerboard_statistics(images: Tensor, levels: int = 3) -> CheckerboardStatistics:
    """Per-image power ``B(p)`` on the checkerboard grid bins, its local reference ``R(p)`` and probes.

    The grid bins are ``p = (a * H / 2**L, b * W / 2**L)``, ``0 <= a, b < 2**L``, without DC: the
    frequencies of every pattern with period dividing ``2**L``. The spectrum is the unwindowed DFT of
    each mean-free image: a pattern that tiles the image puts all its energy on exactly those bins, so
    ``B(p)`` is one bin, and an image of equal ``2**k x 2**k`` blocks (nearest upsampling) has exactly
    zero power there: the box filter's zeros fall on the grid bins and no window spreads its non-zero
    neighbours onto them. The reference ``R`` is the mean power on 3-bin-wide strips at distances
    ``1 .. 3`` bins along ``u`` and along ``v``: pooled off the axes; on the axes, where the image border
    and axis-aligned edges run, the direction with more power per image. ``reference_low``
    extrapolates the strips quadratically to the bin (near strip against far strips), which the upper
    bound uses so that a spectrum dipping on the grid (smooth, upsampled images) cannot hide a
    pattern. ``probe`` is the same ``P - R`` on bins halfway between grid bins, where no grid pattern
    lies: their spread over a dataset is the noise of ``sum d``, duplicated images included. All
    are divided by ``(H * W)**2``: a pattern of RMS ``a`` adds ``a**2`` to ``sum_p B(p)``.

    Range is not checked (use :func:`checkerboard_score` or the metric for that), so that gradients and
    other signals can be scored too.

    Args:
        images: float batch, or uint8 (scaled by 1/255).
        levels: number of stride-2 stages ``L``; bins of periods 2, 4, ..., ``2**L`` are measured.

    Shape:
        - Input: ``(B, C, H, W)`` with ``H, W`` divisible by ``2**L`` and ``H / 2**L >= 4``.
        - Output: ``peak``, ``reference`` and ``reference_low`` of shape ``(B, 4**L - 1)``,
          ``pixel_variance`` ``(B,)``, ``probe`` ``(B, 3 * (4**L - 1))``.

    Raises:
        TypeError: if ``images`` is not a float or uint8 tensor.
        ValueError: on a wrong rank, a size the grid does not fit, NaN/inf, or a bad ``levels``.

    Example:
        >>> x = torch.full((2, 3, 32, 32), 0.5)
        >>> x[..., ::2, :] += 2 / 255  # horizontal stripes of period 2: +-1 level around the mean
        >>> stats = checkerboard_statistics(x, levels=3)
        >>> stats.peak.shape
        torch.Size([2, 63])
        >>> round(float(stats.peak.sum(dim=1)[0] * 255**2), 4)  # a**2 in 8-bit levels
        1.0
    """
    levels = check_levels(levels)
    check_image_batch(images, levels)
    return _checkerboard_statistics(to_unit_range(images, check_range=False), levels)


def _checkerboard_statistics(images: Tensor, levels: int) -> CheckerboardStatistics:
    """Unchecked core of :func:`checkerboard_statistics`, for callers that validated already."""
    height, width = images.shape[-2:]
    power, pixel_variance = raw_power(images)
    power = power.flatten(1)
    layout = _grid_layout(height, width, levels, power.device)
    peak = power.index_select(1, layout.grid)
    reference, reference_low = _direction_reference(
        power,
        (layout.near_u, layout.far_u, layout.near_v, layout.far_v),
        (layout.axis_near, layout.axis_far),
        layout.on_axis,
        layout.along_u,
    )
    no_far = layout.probe_u[:, :0]
    probe_reference, _ = _direction_reference(
        power,
        (layout.probe_u, no_far, layout.probe_v, no_far),
        (layout.probe_axis, no_far),
        layout.probe_on_axis,
        layout.probe_along_u,
    )
    probe = power.index_select(1, layout.probes) - probe_reference
    return CheckerboardStatistics(peak, reference, pixel_variance, reference_low, probe)


def checkerboard_energy(sum_d: Tensor, sum_d_sq: Tensor, n: Tensor | float, z: float = DEFAULT_Z) -> Tensor:
    """Energy of the grid bins that stand above their own noise: ``E(p) = sum d`` if ``sum d > z * sqrt(n Var d)``.

    ``n * Var d = sum d**2 - (sum d)**2 / n`` is the variance of the sum ``sum d`` over images. A bin
    counts only when its sum stands ``z`` standard deviations above zero; that margin is what keeps
    natural photos at 0, where a per-bin ``max(0, .)`` alone would count their noise.

    The margin is a detection threshold, not a subtraction: ``max(0, sum d - z * sqrt(n Var d))``
    would bias every detected bin low by ``z`` standard errors, and a pattern adds to ``Var d``
    itself (through its cross term with the image content). A detected bin is counted in full, an
    undetected one not at all.

    Args:
        sum_d: ``sum_i d_i(p)`` with ``d = B - kappa * R`` from :func:`checkerboard_statistics`.
        sum_d_sq: ``sum_i d_i(p)**2``.
        n: number of images summed.
        z: detection margin in standard errors (3 by default).

    Shape:
        - Input: ``(G,)`` each; ``n`` scalar.
        - Output: ``(G,)``.

    Example:
        >>> checkerboard_energy(torch.tensor([4.0, 4.0]), torch.tensor([4.0, 16.0]), 4)
        tensor([4., 0.])
    """
    n = torch.as_tensor(n, dtype=sum_d.dtype, device=sum_d.device)
    variance_of_sum = (sum_d_sq - sum_d.square() / n.clamp_min(1)).clamp_min(0)
    detected = (sum_d > z * variance_of_sum.sqrt()) & (sum_d > 0)
    return torch.where(detected, sum_d, torch.zeros_like(sum_d))


def checkerboard_score_from_sums(
    sum_d: Tensor, sum_d_sq: Tensor, n: Tensor | float, z: float = DEFAULT_Z, scale: float = 255.0
) -> Tensor:
    """The checkerboard score ``A = sqrt(sum_p E(p) / n) * scale`` from summed per-image statistics.

    With the per-image normalisation of :func:`checkerboard_statistics` this is
    ``sqrt(sum E / (n * H * W * sum w**2)) * 255`` over unnormalised spectra: the RMS amplitude of the
    grid pattern in 8-bit levels. Returns 0 when ``n == 0``.

    Args:
        sum_d: ``sum_i d_i(p)``.
        sum_d_sq: ``sum_i d_i(p)**2``.
        n: number of images.
        z: margin in standard errors.
        scale: 255 for 8-bit levels; 1 for a fraction of the [0, 1] range.

    Shape:
        - Input: ``(G,)`` each.
        - Output: scalar.

    Example:
        >>> d = torch.tensor([[1e-4, 0.0], [1e-4, 0.0]])  # 2 images, 2 bins, pattern of mean square 1e-4
        >>> checkerboard_score_from_sums(d.sum(0), (d**2).sum(0), 2, scale=1.0)
        tensor(0.0100)
    """
    energy = checkerboard_energy(sum_d, sum_d_sq, n, z)
    n = torch.as_tensor(n, dtype=energy.dtype, device=energy.device).clamp_min(1)
    return (energy.sum() / n).sqrt() * scale


class CheckerboardSums(NamedTuple):
    """Sums over images of the per-image statistics: what the score and its diagnostics are made of.

    Every field is a plain sum over images, so sums of disjoint batches (or processes) add up exactly.
    The last three are optional (``None``) for callers that only have the first five; the score then
    falls back to treating bins as independent and images as independent.

    Attributes:
        peak: ``sum_i B_i(p)``, ``(G,)``.
        reference: ``sum_i R_i(p)``, ``(G,)``.
        d_squared: ``sum_i d_i(p)**2`` with ``d = B - kappa * R``, ``(G,)``.
        pixel_variance: ``sum_i`` of the per-image pixel variance, scalar.
        num_images: ``n``.
        reference_low: ``sum_i`` of the reference extrapolated to the bin, ``(G,)``.
        group_d_squared: ``sum_i (sum_{p of period 2**l} d_i(p))**2``, ``(L,)``: the spread of each
            period's total between images, cross-bin correlation included.
        probe: ``sum_i e_i(q)`` on the probe bins, ``(3 * G,)``.
        probe_squared: ``sum_i e_i(q)**2``, ``(3 * G,)``: with ``probe``, how much more the sums vary
            than independent images would make them (the duplication factor).
        group_cross: ``sum_i sum_{p of period 2**l} 4 * max(0, d_i(p)) * R_i(p)``, ``(L,)``: the
            variance a pattern's cross term with the content adds to each image's total.
        group_peak_squared: ``sum_i (sum_{p of period 2**l} B_i(p))**2``, ``(L,)``: how much the
            bins' own power varies between images (not at all where they hold no content).
    """

    peak: Tensor
    reference: Tensor
    d_squared: Tensor
    pixel_variance: Tensor
    num_images: Tensor | int
    reference_low: Tensor | None = None
    group_d_squared: Tensor | None = None
    probe: Tensor | None = None
    probe_squared: Tensor | None = None
    group_cross: Tensor | None = None
    group_peak_squared: Tensor | None = None


def _peak_excess(peak: Tensor, reference: Tensor, kappa: float) -> Tensor:
    """``d = B - kappa * R``, per image or, being linear, on the sums: the one place it is formed."""
    return peak - kappa * reference


def _period_mask(levels: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``(L, G)`` 0/1 matrix: row ``l - 1`` marks the grid bins of period ``2**l``."""
    periods = grid_bin_periods(levels).to(device)
    targets = 2 ** torch.arange(1, levels + 1, device=device)
    return (periods[None, :] == targets[:, None]).to(dtype)


def _levels_of(num_bins: int) -> int:
    """``L`` from the number of grid bins ``4**L - 1``."""
    levels = round(math.log(num_bins + 1, 4))
    if 4**levels - 1 != num_bins:
        raise ValueError(f"sums must cover 4**levels - 1 grid bins, got {num_bins}")
    return levels


def _checkerboard_score_update(images: Tensor, levels: int, kappa: float) -> CheckerboardSums:
    """The :class:`CheckerboardSums` of one batch its caller has checked and prepared (no range check here).

    ``sum d`` needs no sum of its own: it is ``_peak_excess`` of the peak and reference sums.
    """
    stats = _checkerboard_statistics(images, levels)
    d = _peak_excess(stats.peak, stats.reference, kappa)
    mask = _period_mask(levels, d.device, d.dtype)
    groups = d @ mask.T
    cross = (4.0 * d.clamp_min(0) * stats.reference) @ mask.T
    peaks = stats.peak @ mask.T
    return CheckerboardSums(
        stats.peak.sum(0),
        stats.reference.sum(0),
        d.square().sum(0),
        stats.pixel_variance.sum(),
        d.shape[0],
        stats.reference_low.sum(0),
        groups.square().sum(0),
        stats.probe.sum(0),
        stats.probe.square().sum(0),
        cross.sum(0),
        peaks.square().sum(0),
    )


class PeriodTotals(NamedTuple):
    """Per period ``2**l`` (entry ``l - 1``): what the score and the bound are read from.

    Attributes:
        excess: ``sum_i sum_p d_i(p)`` over the period's bins.
        variance: the variance of ``excess``: the larger of its spread between images and the spread of
            the same statistic on the probe bins (which duplicated images cannot shrink).
        allowance: how much the reference may over-predict the content on the bins, summed:
            ``kappa * max(0, sum R - sum R_low)``; the bound adds it, the score does not. Where the
            bins sit significantly (``z`` standard deviations) below even the extrapolated reference,
            or vary between images far less than the probes say content would make them
            (:data:`QUIET_SHARE`), the spectrum has a zero on the grid (equal blocks, smooth
            upsampled images) that no neighbour predicts: the allowance is then all of
            ``kappa * sum R``, so the bound rests on the bins' own power ``sum B``, which no content
            can make smaller than the pattern's.
    """

    excess: Tensor
    variance: Tensor
    allowance: Tensor


def _period_totals(
    sums: CheckerboardSums, kappa: float, levels: int | None = None, z: float = DEFAULT_Z
) -> PeriodTotals:
    """The :class:`PeriodTotals` of accumulated sums (``z``: the margin that declares a grid zero)."""
    sum_d = _peak_excess(sums.peak, sums.reference, kappa)
    levels = _levels_of(sum_d.numel()) if levels is None else levels
    mask = _period_mask(levels, sum_d.device, sum_d.dtype)
    count = float(sums.num_images)
    excess = mask @ sum_d
    # Grid bins that vary far less between images than the probes do hold no content: a spectral zero.
    quiet = torch.zeros_like(excess, dtype=torch.bool)
    if count < 2:
        variance = torch.full_like(excess, math.inf)
    else:
        inflate = count / (count - 1)
        if sums.group_d_squared is None:
            per_bin = (sums.d_squared - sum_d.square() / count).clamp_min(0) * inflate
            variance = mask @ per_bin
        else:
            variance = (sums.group_d_squared - excess.square() / count).clamp_min(0) * inflate
        if sums.probe is not None:
            null, duplication = _probe_variance(sums.probe, sums.probe_squared, count, mask)
            cross = torch.zeros_like(null) if sums.group_cross is None else sums.group_cross
            if sums.group_peak_squared is not None:
                peak_total = mask @ sums.peak
                peak_spread = (sums.group_peak_squared - peak_total.square() / count).clamp_min(0) * inflate
                quiet = duplication * peak_spread < QUIET_SHARE * (null + duplication * cross)
            variance = torch.maximum(duplication * variance, null + duplication * cross)
    allowance = torch.zeros_like(excess)
    if sums.reference_low is not None:
        reference, reference_low = mask @ sums.reference, mask @ sums.reference_low
        allowance = kappa * (reference - reference_low).clamp_min(0)
        below = (mask @ sums.peak - kappa * reference_low) < -z * variance.sqrt()
        allowance = torch.where(below | quiet, kappa * reference, allowance)
    return PeriodTotals(excess, variance, allowance)


def _probe_variance(
    probe: Tensor, probe_squared: Tensor | None, count: float, mask: Tensor
) -> tuple[Tensor, Tensor]:
    """Per period, the no-pattern variance of its ``sum d`` and the duplication factor, from the probes.

    A probe bin carries the same statistic as a grid bin, on a bin where no grid pattern lies. The
    spread of ``sum_i e_i(q)`` across the probes of a period's bins, times the number of bins, is what
    that period's ``sum d`` varies by without a pattern: it grows like ``n`` for independent images and
    like ``n**2`` for copies of one image. (It also carries the spread of the reference's bias from
    probe to probe, which grows like ``n**2``: with many images of a steep spectrum it is
    conservative.) The duplication factor (at least 1) divides it by what independent images would
    give, ``sum_i (e_i(q) - mean)**2`` per probe: about 1 for independent images, about ``n`` for
    copies.
    """
    num_bins = mask.shape[1]
    owners = mask.repeat(1, probe.numel() // num_bins)  # (L, Q): probe k * G + g belongs to bin g
    count_q = owners.sum(1)
    mean = (owners @ probe) / count_q
    spread = (owners * (probe[None, :] - mean[:, None]).square()).sum(1) / (count_q - 1).clamp_min(1)
    null = mask.sum(1) * spread
    if probe_squared is None:
        return null, torch.ones_like(null)
    independent = (owners @ (probe_squared - probe.square() / count)).clamp_min(0) / count_q
    tiny = torch.finfo(null.dtype).tiny
    duplication = (spread / independent.clamp_min(tiny)).clamp(1.0, max(count, 1.0))
    return null, duplication


def _grouped_energy(totals: PeriodTotals, z: float) -> Tensor:
    """Per period, ``excess`` where it stands ``z`` standard deviations above 0, else 0."""
    detected = (totals.excess > z * totals.variance.sqrt()) & (totals.excess > 0)
    return torch.where(detected, totals.excess, torch.zeros_like(totals.excess))


def _checkerboard_score_compute(sums: CheckerboardSums, kappa: float, z: float, scale: float = 255.0) -> Tensor:
    """The score of accumulated :class:`CheckerboardSums`: ``sqrt(sum of detected periods / n) * scale``."""
    energy = _grouped_energy(_period_totals(sums, kappa), z)
    n = torch.as_tensor(sums.num_images, dtype=energy.dtype, device=energy.device).clamp_min(1)
    return (energy.sum() / n).sqrt() * scale


def checkerboard_score(
    images: Tensor, levels: int = 3, kappa: float = 1.0, z: float = DEFAULT_Z
) -> Tensor:
    """Checkerboard score of one batch, in 8-bit levels (the RMS amplitude of the grid pattern).

    One-shot form of :class:`~lightning_checkerboard.metrics.CheckerboardScore`, through the same
    ``_checkerboard_score_update`` / ``_checkerboard_score_compute`` pair: per image
    ``d(p) = B(p) - kappa * R(p)`` (:func:`checkerboard_statistics`), then
    :func:`checkerboard_score_from_sums` over the batch. The noise margin shrinks with the number of
    images, so score whole datasets with the metric rather than averaging per-batch scores.

    Args:
        images: float in [0, 1] or uint8.
        levels: number of stride-2 stages ``L`` (periods 2 .. ``2**L``).
        kappa: weight of the local reference.
        z: margin in standard errors.

    Shape:
        - Input: ``(B, C, H, W)`` with ``H, W`` divisible by ``2**L`` and ``H / 2**L >= 4``.
        - Output: scalar.

    Raises:
        TypeError: if ``images`` is not a float or uint8 tensor.
        ValueError: on a wrong rank, a size the grid does not fit, NaN/inf, floats outside [0, 1],
            or bad ``levels``/``kappa``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> smooth = torch.nn.functional.avg_pool2d(torch.rand(16, 3, 66, 66, generator=g), 3, 1)
        >>> images = 0.1 + 0.8 * smooth  # (16, 3, 64, 64), a smooth random texture in [0.1, 0.9]
        >>> float(checkerboard_score(images))
        0.0
        >>> checker = (-1.0) ** (torch.arange(64)[:, None] + torch.arange(64)[None, :])
        >>> round(float(checkerboard_score(images + 4 / 255 * checker)), 1)  # RMS 4 levels
        4.0
    """
    kappa = check_number(kappa, "kappa", minimum=0.0)
    z = check_number(z, "z", minimum=0.0)
    levels = check_levels(levels)
    check_image_batch(images, levels)
    return _checkerboard_score_compute(_checkerboard_score_update(to_unit_range(images), levels, kappa), kappa, z)

"""The checkerboard score: grid-bin statistics of each image and the score of their sums (torch only).

The checkerboard score estimates the RMS amplitude, in 8-bit levels, of the periodic pattern that
``levels`` stacked stride-2 upsamplings leave at periods 2, 4, ..., 2**levels (Odena, Dumoulin & Olah,
"Deconvolution and Checkerboard Artifacts", Distill 2016). It is computed in two steps so that a
metric can accumulate it over a dataset with plain sums (exact under DDP):

1. :func:`checkerboard_statistics` gives, per image, the peak energy ``B(p)`` on every grid bin and its
   local reference ``R(p)``, both already divided by ``H * W * sum(w**2)`` so they are mean squares of
   a [0, 1] image, whatever its size.
2. :func:`checkerboard_score_from_sums` turns the sums ``sum d``, ``sum d**2`` and ``n`` of
   ``d = B - kappa * R`` into the score (the detected energy capped by what the images hold inside their cells),
   with the noise of the sums inflated for images that share content.

``_checkerboard_score_update`` sums one batch and ``_checkerboard_score_compute`` turns the sums into
the score; :func:`checkerboard_score` (one batch) and
:class:`~lightning_checkerboard.metrics.CheckerboardScore` (a dataset) both call that pair. The
per-period diagnostics and the upper bound, from the same sums, are in
:mod:`lightning_checkerboard.functional.checkerboard_diagnostics`; the noise model (shared content,
copies, equal-phase cells) in :mod:`lightning_checkerboard.functional.checkerboard_noise`. Internally
the grid is described by its period ``cells`` (``2**levels``), so the same functions read a pattern of
any integer period: :mod:`lightning_checkerboard.functional.periodic`.

Every image is divided by its own ``H * W * sum(w**2)`` before summing, rather than the sums by
``n * H * W * sum(w**2)`` at the end. For a fixed size the two are identical; the per-image form also
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
from lightning_checkerboard.functional._validation import check_image_batch, check_levels, to_unit_range
from lightning_checkerboard.functional.checkerboard_noise import (
    _cap_by_cells,
    _noise,
    _within_cells,
    design_effect,
    near_duplicate_correlation,
)
from lightning_checkerboard.functional.spectrum import _power, _windowed_spectrum

__all__ = [
    "CheckerboardStatistics",
    "CheckerboardSums",
    "checkerboard_energy",
    "checkerboard_score",
    "checkerboard_score_from_sums",
    "checkerboard_statistics",
    "design_effect",
    "grid_bin_periods",
    "near_duplicate_correlation",
]

#: The detection margin: a grid bin counts only what stands 3 standard errors above zero.
DEFAULT_Z = 3.0
#: The upper bound's error rate: it holds with probability at least ``1 - DEFAULT_ALPHA``.
DEFAULT_ALPHA = 0.05


def _grid_cells(levels: int | None, cells: int | None) -> int:
    """The grid period ``P``: ``2**levels`` for stacked stride-2 stages, or ``cells`` itself (exactly one given)."""
    if (levels is None) == (cells is None):
        raise ValueError("give exactly one of `levels` and `cells`")
    return 2**levels if cells is None else cells


def _grid_coordinates(cells: int) -> list[tuple[int, int]]:
    """Grid bins ``(a, b)``, ``0 <= a, b < cells``, DC excluded, in the order of the score states."""
    return [(a, b) for a in range(cells) for b in range(cells) if (a, b) != (0, 0)]


def _grid_periods(cells: int) -> Tensor:
    """Period of each grid bin of the period-``cells`` grid: ``cells / gcd(a, b, cells)``, ``(cells**2 - 1,)``."""
    periods = [cells // math.gcd(math.gcd(a, b), cells) for a, b in _grid_coordinates(cells)]
    return torch.tensor(periods, dtype=torch.long)


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
    return _grid_periods(2 ** check_levels(levels))


def _half_plane_index(rows: Tensor, cols: Tensor, height: int, width: int) -> Tensor:
    """Flat index into an ``rfft2`` half plane of full-plane bins ``(rows, cols)`` (any integers)."""
    rows, cols = rows % height, cols % width
    mirrored = cols > width // 2
    rows = torch.where(mirrored, (-rows) % height, rows)
    cols = torch.where(mirrored, width - cols, cols)
    return rows * (width // 2 + 1) + cols


@lru_cache(maxsize=64)
def _grid_layout(height: int, width: int, cells: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Gather indices, into the flattened half plane, of every grid bin's 3x3 block and reference strips.

    ``cells`` is the grid period ``P`` (``2**levels``). Returns ``(block, strips_u, strips_v)`` of shapes
    ``(G, 9)``, ``(G, Su)`` and ``(G, Sv)``, ``G = P**2 - 1``. Built once per size so an update is three
    gathers, with no Python loop over bins.
    """
    step_u, step_v = height // cells, width // cells
    # Reference strips stop 2 bins short of the neighbouring grid bin, whose block reaches 1 bin out.
    reach_u, reach_v = min(4, step_u - 2), min(4, step_v - 2)
    grid = torch.tensor(_grid_coordinates(cells), dtype=torch.long)
    centre_u, centre_v = grid[:, 0] * step_u, grid[:, 1] * step_v

    near = torch.tensor([-1, 0, 1])
    offsets_u = torch.cat([-torch.arange(2, reach_u + 1), torch.arange(2, reach_u + 1)])
    offsets_v = torch.cat([-torch.arange(2, reach_v + 1), torch.arange(2, reach_v + 1)])

    def gather(du: Tensor, dv: Tensor) -> Tensor:
        du, dv = torch.meshgrid(du, dv, indexing="ij")
        rows = centre_u[:, None] + du.reshape(1, -1)
        cols = centre_v[:, None] + dv.reshape(1, -1)
        return _half_plane_index(rows, cols, height, width).to(device)

    return gather(near, near), gather(offsets_u, near), gather(near, offsets_v)


class CheckerboardStatistics(NamedTuple):
    """Per-image statistics of :func:`checkerboard_statistics`, in mean-square units of a [0, 1] image.

    Attributes:
        peak: ``B_i(p)``, energy of the 3x3 block on each grid bin, shape ``(B, G)``.
        reference: ``R_i(p) = 9 * max(R_u, R_v)``, the local background expected in that block, ``(B, G)``.
        pixel_variance: variance of each image around its own mean, averaged over channels, ``(B,)``.
        background: mean power per bin of the reference strips split by side and distance, ``(B, G, 4, 2)``:
            sides ``-u, +u, -v, +v``; the inner ring (2 bins from the grid bin) and the rings beyond it
            (minus the inner ring where the grid leaves no room for more: images of ``4 * 2**L``
            pixels). How the background bends
            towards the grid bin bounds how far the reference can over-predict the block.
        spread: log power of the channel-mean image on the 24 lowest frequencies (``1 <= max(|u|, |v|) <= 3``),
            ``(B, 24)``: a fingerprint of the image's content, whose spread over images tells independent
            images from near-duplicates.
        within: the energy each image holds inside its ``2**l x 2**l`` cells (what differs from the
            cell's mean), window-weighted like the spectrum, for ``l = 1 .. L``, ``(B, L)`` (for a grid
            of any period ``P``: its ``d x d`` cells for each divisor ``d > 1`` of ``P``, ascending). A
            pattern of period up to ``2**l`` lives there and nowhere else, so images whose cells are each
            one value (nearest upsampling) hold none, whatever their windowed spectrum shows.
    """

    peak: Tensor
    reference: Tensor
    pixel_variance: Tensor
    background: Tensor
    spread: Tensor
    within: Tensor


def checkerboard_statistics(images: Tensor, levels: int = 3) -> CheckerboardStatistics:
    """Per-image peak energy ``B(p)`` and local reference ``R(p)`` on the checkerboard grid bins.

    The grid bins are ``p = (a * H / 2**L, b * W / 2**L)``, ``0 <= a, b < 2**L``, without DC: the
    frequencies of every pattern with period dividing ``2**L``. The Hann window spreads a spectral line
    over exactly +-1 bin, so the peak energy is the power summed over the 3x3 block at ``p``. The
    reference ``R_u`` is the mean power on 3-bin-wide strips at offsets ``+-d`` along ``u``
    (``d = 2 .. D``, ``D = min(4, H / 2**L - 2)``, so they never touch a neighbouring block), ``R_v``
    likewise along ``v``; ``R = 9 * max(R_u, R_v)`` per image, so an axis-aligned edge, whose energy
    runs along one axis through the block, is not read as a peak. Both are divided by
    ``H * W * sum(w**2)``: a pattern of RMS ``a`` adds ``a**2`` to ``sum_p B(p)``.

    Range is not checked (use :func:`checkerboard_score` or the metric for that), so that gradients and
    other signals can be scored too.

    Args:
        images: float batch, or uint8 (scaled by 1/255).
        levels: number of stride-2 stages ``L``; bins of periods 2, 4, ..., ``2**L`` are measured.

    Shape:
        - Input: ``(B, C, H, W)`` with ``H, W`` divisible by ``2**L`` and ``H / 2**L >= 4``.
        - Output: fields of shape ``(B, 4**L - 1)``, ``(B, 4**L - 1)`` and ``(B,)``.

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


#: Low frequencies ``(u, v)`` of the ``rfft2`` half plane, each once, whose log power is an image's
#: content fingerprint (:attr:`CheckerboardStatistics.spread`): ``1 <= max(|u|, |v|) <= 3``.
_SPREAD_BINS = tuple((u, v) for v in range(4) for u in range(-3, 4) if max(abs(u), v) >= 1 and not (v == 0 and u < 0))


def _side_rings(strips: Tensor, sides_first: bool) -> Tensor:
    """Mean power of each side's inner ring and of the rings beyond, ``(B, G, 2, 2)``, from gathered strips.

    ``strips`` is ``(B, G, S)`` in the gather order of :func:`_grid_layout`: offsets ``-2 .. -D, 2 .. D``
    along the strip's axis times ``-1, 0, 1`` across it (``sides_first``), or the transpose.
    """
    batch, bins, count = strips.shape
    rings = count // 6
    if sides_first:
        strips = strips.view(batch, bins, 2, rings, 3)
    else:
        strips = strips.view(batch, bins, 3, 2, rings).permute(0, 1, 3, 4, 2)
    inner = strips[:, :, :, 0].mean(-1)
    # One ring only (images of 4 * 2**levels pixels): nothing to measure a bend with, marked by -inner.
    outer = strips[:, :, :, 1:].mean((-2, -1)) if rings > 1 else -inner
    return torch.stack([inner, outer], dim=-1)


def _checkerboard_statistics(
    images: Tensor, levels: int | None = None, *, cells: int | None = None
) -> CheckerboardStatistics:
    """Unchecked core of :func:`checkerboard_statistics`, for callers that validated already.

    The grid has period ``2**levels``, or ``cells`` for any period ``P`` (give one of them).
    """
    cells = _grid_cells(levels, cells)
    height, width = images.shape[-2:]
    spectrum, pixel_variance = _windowed_spectrum(images)
    power = _power(spectrum).flatten(1)
    block, strips_u, strips_v = _grid_layout(height, width, cells, power.device)
    num_bins = block.shape[0]
    # One index_select for all three index sets instead of three advanced-indexing copies.
    gathered = power.index_select(1, torch.cat([block.flatten(), strips_u.flatten(), strips_v.flatten()]))
    peak, along_u, along_v = gathered.split([block.numel(), strips_u.numel(), strips_v.numel()], dim=1)
    peak = peak.view(-1, num_bins, block.shape[1]).sum(-1)
    along_u = along_u.view(-1, num_bins, strips_u.shape[1])
    along_v = along_v.view(-1, num_bins, strips_v.shape[1])
    background = torch.cat([_side_rings(along_u, True), _side_rings(along_v, False)], dim=2)
    # 9 * max of the per-bin means: the reference for a 9-bin block.
    reference = 9.0 * torch.maximum(along_u.mean(-1), along_v.mean(-1))
    window_energy = height * width * (height * width * (3.0 / 8.0) ** 2)
    rows = torch.tensor([u % height for u, _ in _SPREAD_BINS], device=power.device)
    cols = torch.tensor([v for _, v in _SPREAD_BINS], device=power.device)
    low = spectrum[:, :, rows, cols].mean(dim=1)
    low_power = (low.real.square() + low.imag.square()) / window_energy
    spread = torch.log(low_power.clamp_min(torch.finfo(low_power.dtype).tiny))
    return CheckerboardStatistics(
        peak / window_energy,
        reference / window_energy,
        pixel_variance,
        background / window_energy,
        spread,
        _within_cells(images, cells),
    )


def _variance_of_sum(
    sum_d: Tensor, sum_d_sq: Tensor, n: Tensor, design_effect: Tensor | float, floor: Tensor | None
) -> Tensor:
    """``max(design_effect * (sum d**2 - (sum d)**2 / n), floor)``: the variance of ``sum d`` over images."""
    variance = (sum_d_sq - sum_d.square() / n.clamp_min(1)).clamp_min(0) * design_effect
    return variance if floor is None else torch.maximum(variance, floor)


def checkerboard_energy(
    sum_d: Tensor,
    sum_d_sq: Tensor,
    n: Tensor | float,
    z: float = DEFAULT_Z,
    *,
    design_effect: Tensor | float = 1.0,
    floor: Tensor | None = None,
    cap: Tensor | None = None,
) -> Tensor:
    """Energy of the grid bins that stand above their own noise: ``E(p) = sum d`` if ``sum d > z * sqrt(V)``.

    ``V`` is the variance of the sum ``sum d`` over images: ``n * Var d = sum d**2 - (sum d)**2 / n``
    for independent images, times ``design_effect`` for images that share content
    (:func:`near_duplicate_correlation`), and at least ``floor``. A bin counts only when its sum stands
    ``z`` standard deviations above zero; that margin is what keeps natural photos at 0, where a per-bin
    ``max(0, .)`` alone would count their noise.

    The margin is a detection threshold, not a subtraction: ``max(0, sum d - z * sqrt(V))`` would bias
    every detected bin low by ``z`` standard errors, and a pattern adds to ``Var d`` itself (through
    its cross term with the image content). A detected bin is counted in full, an undetected one not
    at all.

    Args:
        sum_d: ``sum_i d_i(p)`` with ``d = B - kappa * R`` from :func:`checkerboard_statistics`.
        sum_d_sq: ``sum_i d_i(p)**2``.
        n: number of images summed.
        z: detection margin in standard errors (3 by default).
        design_effect: how much shared content inflates the variance of the sum (1 for independent images).
        floor: smallest variance of the sum, per bin (``None``: no floor).
        cap: the images' summed energy inside their ``2**l`` cells, ``(L,)``
            (:attr:`CheckerboardStatistics.within`): the detected energy on the bins of periods up to
            ``2**l`` is scaled down to it where it claims more (``None``: no cap). On a grid of any
            period ``P`` (``G = P**2 - 1`` bins) one entry per divisor ``d > 1`` of ``P``, capping the
            bins whose period divides ``d``.

    Shape:
        - Input: ``(G,)`` each; ``n`` scalar.
        - Output: ``(G,)``.

    Example:
        >>> checkerboard_energy(torch.tensor([4.0, 4.0]), torch.tensor([4.0, 16.0]), 4)
        tensor([4., 0.])
    """
    n = torch.as_tensor(n, dtype=sum_d.dtype, device=sum_d.device)
    variance_of_sum = _variance_of_sum(sum_d, sum_d_sq, n, design_effect, floor)
    detected = (sum_d > z * variance_of_sum.sqrt()) & (sum_d > 0)
    energy = torch.where(detected, sum_d, torch.zeros_like(sum_d))
    if cap is None:
        return energy
    cells = math.isqrt(energy.shape[-1] + 1)
    if cells * cells != energy.shape[-1] + 1:
        raise ValueError(f"`sum_d` must hold P**2 - 1 grid bins for a cap, got {energy.shape[-1]}")
    return _cap_by_cells(energy[None], cap.to(energy.dtype)[None], _grid_periods(cells))[0]


def checkerboard_score_from_sums(
    sum_d: Tensor,
    sum_d_sq: Tensor,
    n: Tensor | float,
    z: float = DEFAULT_Z,
    scale: float = 255.0,
    *,
    design_effect: Tensor | float = 1.0,
    floor: Tensor | None = None,
    cap: Tensor | None = None,
) -> Tensor:
    """The checkerboard score ``A = sqrt(sum_p E(p) / n) * scale`` from summed per-image statistics.

    With the per-image normalisation of :func:`checkerboard_statistics` this is
    ``sqrt(sum E / (n * H * W * sum w**2)) * 255`` over unnormalised spectra: the RMS amplitude of the
    grid pattern in 8-bit levels. Returns 0 when ``n == 0``. ``design_effect``, ``floor`` and ``cap`` are
    those of :func:`checkerboard_energy`.

    Args:
        sum_d: ``sum_i d_i(p)``.
        sum_d_sq: ``sum_i d_i(p)**2``.
        n: number of images.
        z: margin in standard errors.
        scale: 255 for 8-bit levels; 1 for a fraction of the [0, 1] range.
        design_effect: variance inflation of the sums for images that share content.
        floor: smallest variance of each sum.
        cap: the images' summed within-cell energy per level, ``(L,)``.

    Shape:
        - Input: ``(G,)`` each.
        - Output: scalar.

    Example:
        >>> d = torch.tensor([[1e-4, 0.0], [1e-4, 0.0]])  # 2 images, 2 bins, pattern of mean square 1e-4
        >>> checkerboard_score_from_sums(d.sum(0), (d**2).sum(0), 2, scale=1.0)
        tensor(0.0100)
    """
    energy = checkerboard_energy(sum_d, sum_d_sq, n, z, design_effect=design_effect, floor=floor, cap=cap)
    n = torch.as_tensor(n, dtype=energy.dtype, device=energy.device).clamp_min(1)
    return (energy.sum() / n).sqrt() * scale


class CheckerboardSums(NamedTuple):
    """Sums over images of the per-image statistics: what the score and its diagnostics are made of.

    Attributes:
        peak: ``sum_i B_i(p)``, ``(G,)``.
        reference: ``sum_i R_i(p)``, ``(G,)``.
        d_squared: ``sum_i d_i(p)**2`` with ``d = B - kappa * R``, ``(G,)``.
        pixel_variance: ``sum_i`` of the per-image pixel variance, scalar.
        num_images: ``n``.
        peak_squared: ``sum_i B_i(p)**2``, ``(G,)``.
        peak_reference: ``sum_i B_i(p) R_i(p)``, ``(G,)``.
        reference_squared: ``sum_i R_i(p)**2``, ``(G,)``.
        background: ``sum_i`` of :attr:`CheckerboardStatistics.background`, ``(G, 4, 2)``.
        spread: ``sum_i`` of :attr:`CheckerboardStatistics.spread`, ``(24,)``.
        spread_squared: ``sum_i`` of its square, ``(24,)``.
        within: ``sum_i`` of :attr:`CheckerboardStatistics.within`, ``(L,)`` (one entry per divisor
            ``d > 1`` of the grid period): what the images hold inside their cells, the most pattern
            energy they can hold at periods up to ``2**l`` (dividing ``d``).
    """

    peak: Tensor
    reference: Tensor
    d_squared: Tensor
    pixel_variance: Tensor
    num_images: Tensor | int
    peak_squared: Tensor
    peak_reference: Tensor
    reference_squared: Tensor
    background: Tensor
    spread: Tensor
    spread_squared: Tensor
    within: Tensor


def _peak_excess(peak: Tensor, reference: Tensor, kappa: float) -> Tensor:
    """``d = B - kappa * R``, per image or, being linear, on the sums: the one place it is formed."""
    return peak - kappa * reference


def _checkerboard_score_update(
    images: Tensor, levels: int | None, kappa: float, *, cells: int | None = None
) -> CheckerboardSums:
    """The :class:`CheckerboardSums` of one batch its caller has checked and prepared (no range check here).

    The grid has period ``2**levels``, or ``cells`` for any period (pass ``levels=None`` then). ``sum d``
    needs no sum of its own: it is ``_peak_excess`` of the peak and reference sums.
    """
    stats = _checkerboard_statistics(images, levels, cells=cells)
    d = _peak_excess(stats.peak, stats.reference, kappa)
    return CheckerboardSums(
        stats.peak.sum(0),
        stats.reference.sum(0),
        d.square().sum(0),
        stats.pixel_variance.sum(),
        d.shape[0],
        stats.peak.square().sum(0),
        (stats.peak * stats.reference).sum(0),
        stats.reference.square().sum(0),
        stats.background.sum(0),
        stats.spread.sum(0),
        stats.spread.square().sum(0),
        stats.within.sum(0),
    )


def _checkerboard_score_compute(sums: CheckerboardSums, kappa: float, z: float, scale: float = 255.0) -> Tensor:
    """The score (:func:`checkerboard_score_from_sums`) of accumulated :class:`CheckerboardSums`."""
    sum_d = _peak_excess(sums.peak, sums.reference, kappa)
    noise = _noise(sums, z)
    return checkerboard_score_from_sums(
        sum_d, sums.d_squared, sums.num_images, z, scale,
        design_effect=noise.design_effect, floor=noise.floor, cap=sums.within,
    )


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

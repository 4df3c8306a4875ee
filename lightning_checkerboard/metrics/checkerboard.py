"""Checkerboard score of images and of gradients, as torchmetrics Metrics.

The math lives in :mod:`lightning_checkerboard.functional.checkerboard` and
:mod:`lightning_checkerboard.functional.checkerboard_diagnostics`: ``update`` adds the batch sums of
``_checkerboard_score_update`` to the states (exact under DDP: every state is a sum), ``compute`` is
``_checkerboard_score_compute`` of them, the same pair that
:func:`~lightning_checkerboard.functional.checkerboard_score` uses for one batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_checkerboard._validation import check_number
from lightning_checkerboard.functional._validation import check_image_batch, check_levels, to_unit_range
from lightning_checkerboard.functional.checkerboard import (
    DEFAULT_ALPHA,
    DEFAULT_Z,
    _SPREAD_BINS,
    CheckerboardSums,
    _checkerboard_score_compute,
    _checkerboard_score_update,
    _grid_cells,
)
from lightning_checkerboard.functional.checkerboard_noise import _cell_divisors
from lightning_checkerboard.functional.checkerboard_diagnostics import _checkerboard_diagnostics_compute
from lightning_checkerboard.functional.gradients import normalize_gradient

__all__ = ["CheckerboardScore", "GradientCheckerboardScore"]

#: The metric's state for each field of CheckerboardSums, in field order.
_STATE_NAMES = (
    "sum_peak",
    "sum_reference",
    "sum_d_squared",
    "sum_pixel_variance",
    "num_images",
    "sum_peak_squared",
    "sum_peak_reference",
    "sum_reference_squared",
    "sum_background",
    "sum_spread",
    "sum_spread_squared",
    "sum_within",
)


def _state_shapes(levels: int | None = None, *, cells: int | None = None) -> dict[str, tuple[int, ...]]:
    """Shape of each state at ``levels`` (``4**levels - 1`` grid bins), or on the grid of any period ``cells``
    (``cells**2 - 1`` bins, one within-cell energy per divisor ``> 1`` of ``cells``)."""
    cells = _grid_cells(levels, cells)
    num_bins = cells**2 - 1
    num_cells = len(_cell_divisors(cells))
    shapes = [(num_bins,), (num_bins,), (num_bins,), (), (), (num_bins,), (num_bins,), (num_bins,),
              (num_bins, 4, 2), (len(_SPREAD_BINS),), (len(_SPREAD_BINS),), (num_cells,)]
    return dict(zip(_STATE_NAMES, shapes))


class CheckerboardScore(Metric):
    """RMS amplitude, in 8-bit levels, of the grid pattern that stacked stride-2 upsamplings leave.

    Measures the patterns of periods 2, 4, ..., ``2**levels`` (Odena et al., Distill 2016) in a
    Hann-windowed power spectrum: per image the energy of the 3x3 block on each grid bin, minus
    ``kappa`` times a local reference from neighbouring strips, capped by the energy the image holds
    inside its cells (so equal-phase blocks, nearest upsampling, read 0); a bin counts once its sum
    over the dataset stands ``z`` standard errors above zero. Images that share content
    (near-duplicates, copies, a mode-collapsed generator) count as fewer images. A pattern of RMS
    ``a / 255`` reads ``a``; natural photographs and nearest- or bilinear-upsampled ones read 0. See
    :func:`~lightning_checkerboard.functional.checkerboard_statistics` for the definition.

    ``compute()`` returns the score (a scalar, so ``self.log("cb", metric)`` works).
    :meth:`diagnostics` returns everything, synchronised like ``compute()``:

    - ``score``: the same as ``compute()``;
    - ``upper``: the largest RMS amplitude, in the same unit, that the measurement cannot rule out at
      ``1 - alpha`` (95 % by default), from the same sums: "0.00 (< 0.41)" reads "no grid pattern
      above 0.41 levels"; ``upper_period_{P}`` splits it by period. It allows for a reference that
      over-predicts where the spectrum bends towards the grid bin
      (:func:`~lightning_checkerboard.functional.checkerboard_diagnostics.reference_bend`);
    - ``effective_images``: how many independent images the set is worth (``n`` for independent ones,
      about 1 for near-duplicates of one scene, 0 for copies);
    - ``ratio``: contrast-free ratio ``score / (255 * pixel std)``, the pattern's RMS as a fraction of
      the content's (a low-contrast generator hides its pattern from ``score``, not from this);
    - ``amplitude_period_{P}``: the score restricted to the period-``P`` bins (their squares add up to
      ``score**2``), e.g. "deconv only in the last layer" lights period 2 but not 4;
    - ``pnr_db_period_{P}``: peak-to-reference ratio in dB on the period-``P`` bins, for plots.

    Known limits: the period-``2**levels`` bins next to DC sit on the steep spectrum of natural images;
    the reference over-predicts the photo there, so a weak long-period pattern reads low and the bound
    is widest there. A texture one bin off the grid can be counted at small sizes: compare a generator
    with its training data. The noise margin shrinks as more images are seen, so compare scores over
    equal numbers of images.

    Args:
        levels: number of stride-2 stages ``L``; images need ``H, W`` divisible by ``2**L`` and at least
            ``4 * 2**L``. They are never resized (resizing makes or destroys grid patterns): crop them.
        kappa: weight of the local reference in ``d = B - kappa * R``.
        z: detection margin in standard errors of the summed statistic.
        alpha: error rate of the upper bound in :meth:`diagnostics` (0.05: a 95 % bound).
        kwargs: passed to :class:`torchmetrics.Metric`.

    Shape:
        - ``update(images)``: ``(B, C, H, W)``, float in [0, 1] or uint8 (scaled by 1/255).
        - ``compute()``: scalar.

    Raises:
        ValueError: on a bad ``levels``, ``kappa``, ``z`` or ``alpha``; in ``update`` on a wrong rank, a size the grid
            does not fit, NaN/inf, or floats outside [0, 1].
        TypeError: in ``update`` if the images are neither float nor uint8.

    Example:
        >>> import torch
        >>> from lightning_checkerboard.metrics import CheckerboardScore
        >>> g = torch.Generator().manual_seed(0)
        >>> smooth = torch.nn.functional.avg_pool2d(torch.rand(32, 3, 66, 66, generator=g), 3, 1)
        >>> images = 0.1 + 0.8 * smooth  # a smooth random texture in [0.1, 0.9]
        >>> checker = (-1.0) ** (torch.arange(64)[:, None] + torch.arange(64)[None, :])
        >>> metric = CheckerboardScore(levels=3)
        >>> metric.update(images[:16])
        >>> metric.update(images[16:])
        >>> float(metric.compute())
        0.0
        >>> 0.0 < float(metric.diagnostics()["upper"]) < 5.0  # what 32 images cannot rule out
        True
        >>> metric.reset()
        >>> metric.update(images + 2 / 255 * checker)  # a checkerboard of RMS 2 levels
        >>> diagnostics = metric.diagnostics()
        >>> round(float(diagnostics["score"]), 1), round(float(diagnostics["amplitude_period_2"]), 1)
        (2.0, 2.0)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0

    sum_peak: Tensor
    sum_reference: Tensor
    sum_d_squared: Tensor
    sum_pixel_variance: Tensor
    num_images: Tensor
    sum_peak_squared: Tensor
    sum_peak_reference: Tensor
    sum_reference_squared: Tensor
    sum_background: Tensor
    sum_spread: Tensor
    sum_spread_squared: Tensor
    sum_within: Tensor

    #: Multiplies the amplitude: 255 gives 8-bit levels of a [0, 1] image.
    _scale = 255.0

    def __init__(
        self, levels: int = 3, kappa: float = 1.0, z: float = DEFAULT_Z, alpha: float = DEFAULT_ALPHA, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.levels = check_levels(levels)
        self.kappa = check_number(kappa, "kappa", minimum=0.0)
        self.z = check_number(z, "z", minimum=0.0)
        self.alpha = check_number(alpha, "alpha", minimum=0.0, maximum=1.0, strict_minimum=True, strict_maximum=True)
        # One state per field of CheckerboardSums, every one a sum (exact under DDP). d = B - kappa R is
        # linear, so sum d = sum B - kappa sum R needs no state of its own; the sums of B and R also give
        # the PNR diagnostic, and the second moments the bound's d with a bent reference.
        for name, shape in _state_shapes(self.levels).items():
            self.add_state(name, torch.zeros(shape), dist_reduce_fx="sum")

    def _prepare(self, images: Tensor) -> Tensor:
        check_image_batch(images, self.levels)
        return to_unit_range(images.detach())

    def update(self, images: Tensor) -> None:
        """Add a batch of images ``(B, C, H, W)``: float in [0, 1] or uint8."""
        batch = _checkerboard_score_update(self._prepare(images), self.levels, self.kappa)
        dtype = self.sum_peak.dtype
        for name, value in zip(_STATE_NAMES, batch):
            getattr(self, name).add_(value.to(dtype) if isinstance(value, Tensor) else value)

    def _sums(self) -> CheckerboardSums:
        return CheckerboardSums(*(getattr(self, name) for name in _STATE_NAMES))

    def compute(self) -> Tensor:
        """The score in 8-bit levels (0 before any update)."""
        return _checkerboard_score_compute(self._sums(), self.kappa, self.z, self._scale)

    def diagnostics(self) -> dict[str, Tensor]:
        """Score, contrast-free ratio, per-period amplitudes and PNR (dB), synchronised across processes.

        Keys: ``score``, ``upper``, ``ratio``, ``amplitude_period_{2..2**L}``, ``upper_period_{2..2**L}``,
        ``pnr_db_period_{2..2**L}``; scalar tensors, ready for ``self.log_dict``.
        """
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync
        ):
            diagnostics = _checkerboard_diagnostics_compute(
                self._sums(), self.levels, self.kappa, self.z, self.alpha, self._scale
            )
            return {key: value.clone() for key, value in diagnostics.items()}


class GradientCheckerboardScore(CheckerboardScore):
    """Checkerboard score of gradients: the share of their RMS in grid patterns (0 to 1).

    The article's "artifacts in gradients": feed the gradient of a discriminator's loss with respect to
    its input images. Each gradient is normalised per image to zero mean and unit RMS
    (:func:`~lightning_checkerboard.functional.normalize_gradient`), so the loss scale does not
    matter, and scored on a scale of 1 instead of 255: ``compute()`` returns the RMS of the grid pattern
    as a fraction of the gradient's RMS (1 for a pure checkerboard, about 0 for a stride-1 first layer).
    Gradients are not range-checked; rank, size and finiteness are.

    Args:
        levels: number of stride-2 stages whose periods are measured.
        kappa: weight of the local reference.
        z: detection margin in standard errors.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> import torch
        >>> from lightning_checkerboard.metrics import GradientCheckerboardScore
        >>> checker = (-1.0) ** (torch.arange(32)[:, None] + torch.arange(32)[None, :])
        >>> metric = GradientCheckerboardScore(levels=2)
        >>> metric.update(checker.expand(4, 3, 32, 32) * 1e-5)  # a pure checkerboard, tiny scale
        >>> round(float(metric.compute()), 3)
        1.0
    """

    _scale = 1.0

    def _prepare(self, gradient: Tensor) -> Tensor:
        check_image_batch(gradient, self.levels, name="gradient")
        return normalize_gradient(gradient.detach())

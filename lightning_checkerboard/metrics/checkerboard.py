"""Checkerboard score of images and of gradients, as torchmetrics Metrics.

The math lives in :mod:`lightning_checkerboard.functional.spectral`; these classes hold the summed
states (exact under DDP: every state is a sum) and turn them into the score.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_checkerboard.functional._validation import (
    check_image_batch,
    check_kappa,
    check_levels,
    check_non_negative,
    to_unit_range,
)
from lightning_checkerboard.functional.spectral import (
    DEFAULT_ALPHA,
    DEFAULT_Z,
    checkerboard_score_from_sums,
    checkerboard_upper_bound_from_sums,
    _checkerboard_statistics,
    contrast_free_ratio,
    normalize_gradient,
    peak_to_reference_db,
    period_amplitudes,
)

__all__ = ["CheckerboardScore", "GradientCheckerboardScore"]


class CheckerboardScore(Metric):
    """RMS amplitude, in 8-bit levels, of the grid pattern that stacked stride-2 upsamplings leave.

    Measures the patterns of periods 2, 4, ..., ``2**levels`` (Odena et al., Distill 2016) in a
    Hann-windowed power spectrum: per image the energy of the 3x3 block on each grid bin, minus
    ``kappa`` times a local reference from neighbouring strips; a bin counts once its sum over the
    dataset stands ``z`` standard errors above zero. A pattern of RMS ``a / 255`` reads ``a``; natural
    photographs and nearest- or bilinear-upsampled ones read 0. See
    :func:`~lightning_checkerboard.functional.spectral.checkerboard_statistics` for the definition.

    ``compute()`` returns the score (a scalar, so ``self.log("cb", metric)`` works).
    :meth:`diagnostics` returns everything, synchronised like ``compute()``:

    - ``score``: the same as ``compute()``;
    - ``upper``: the largest RMS amplitude, in the same unit, that the measurement cannot rule out at
      ``1 - alpha`` (95 % by default), from the same sums: "0.00 (< 0.41)" reads "no grid pattern
      above 0.41 levels"; ``upper_period_{P}`` splits it by period;
    - ``ratio``: contrast-free ratio ``score / (255 * pixel std)``, the pattern's RMS as a fraction of
      the content's (a low-contrast generator hides its pattern from ``score``, not from this);
    - ``amplitude_period_{P}``: the score restricted to the period-``P`` bins (their squares add up to
      ``score**2``), e.g. "deconv only in the last layer" lights period 2 but not 4;
    - ``pnr_db_period_{P}``: peak-to-reference ratio in dB on the period-``P`` bins, for plots.

    Known limits: the period-``2**levels`` bins next to DC sit on the steep spectrum of natural images;
    the reference over-predicts the photo there, so part of a long-period pattern goes unseen (a random
    period-8 tile of 1 level reads ~0.74 on 64 crops of 128 x 128; 4 levels read 3.8). A texture one
    bin off the grid can be counted at small sizes: compare a generator with its training data. The
    noise margin shrinks as more images are seen, so compare scores over equal numbers of images.

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

    #: Multiplies the amplitude: 255 gives 8-bit levels of a [0, 1] image.
    _scale = 255.0

    def __init__(
        self, levels: int = 3, kappa: float = 1.0, z: float = DEFAULT_Z, alpha: float = DEFAULT_ALPHA, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.levels = check_levels(levels)
        self.kappa = check_kappa(kappa)
        self.z = check_non_negative(z, "z")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be a number in (0, 1); got {alpha!r}.")
        self.alpha = float(alpha)
        num_bins = 4**self.levels - 1
        # d = B - kappa R is linear, so sum d = sum B - kappa sum R needs no state of its own; the sums of
        # B and R also give the PNR diagnostic.
        self.add_state("sum_peak", torch.zeros(num_bins), dist_reduce_fx="sum")
        self.add_state("sum_reference", torch.zeros(num_bins), dist_reduce_fx="sum")
        self.add_state("sum_d_squared", torch.zeros(num_bins), dist_reduce_fx="sum")
        self.add_state("sum_pixel_variance", torch.zeros(()), dist_reduce_fx="sum")
        self.add_state("num_images", torch.zeros(()), dist_reduce_fx="sum")

    def _prepare(self, images: Tensor) -> Tensor:
        check_image_batch(images, self.levels)
        return to_unit_range(images.detach())

    def update(self, images: Tensor) -> None:
        """Add a batch of images ``(B, C, H, W)``: float in [0, 1] or uint8."""
        stats = _checkerboard_statistics(self._prepare(images), self.levels)
        d = stats.peak - self.kappa * stats.reference
        dtype = self.sum_peak.dtype
        self.sum_peak += stats.peak.sum(0).to(dtype)
        self.sum_reference += stats.reference.sum(0).to(dtype)
        self.sum_d_squared += d.square().sum(0).to(dtype)
        self.sum_pixel_variance += stats.pixel_variance.sum().to(dtype)
        self.num_images += d.shape[0]

    def _sum_d(self) -> Tensor:
        return self.sum_peak - self.kappa * self.sum_reference

    def compute(self) -> Tensor:
        """The score in 8-bit levels (0 before any update)."""
        return checkerboard_score_from_sums(self._sum_d(), self.sum_d_squared, self.num_images, self.z, self._scale)

    def _diagnostics(self) -> dict[str, Tensor]:
        sum_d = self._sum_d()
        score = checkerboard_score_from_sums(sum_d, self.sum_d_squared, self.num_images, self.z, self._scale)
        pixel_std = (self.sum_pixel_variance / self.num_images.clamp_min(1)).sqrt()
        upper = checkerboard_upper_bound_from_sums(sum_d, self.sum_d_squared, self.num_images, self.alpha, self._scale)
        out = {"score": score, "upper": upper, "ratio": contrast_free_ratio(score, pixel_std, self._scale)}
        per_period = {
            "amplitude_period": period_amplitudes(
                sum_d, self.sum_d_squared, self.num_images, self.levels, self.z, self._scale
            ),
            "upper_period": checkerboard_upper_bound_from_sums(
                sum_d, self.sum_d_squared, self.num_images, self.alpha, self._scale, levels=self.levels
            ),
            "pnr_db_period": peak_to_reference_db(self.sum_peak, self.sum_reference, self.levels),
        }
        for name, values in per_period.items():
            for level in range(self.levels):
                out[f"{name}_{2 ** (level + 1)}"] = values[level]
        return out

    def diagnostics(self) -> dict[str, Tensor]:
        """Score, contrast-free ratio, per-period amplitudes and PNR (dB), synchronised across processes.

        Keys: ``score``, ``upper``, ``ratio``, ``amplitude_period_{2..2**L}``, ``upper_period_{2..2**L}``,
        ``pnr_db_period_{2..2**L}``; scalar tensors, ready for ``self.log_dict``.
        """
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync
        ):
            return {key: value.clone() for key, value in self._diagnostics().items()}


class GradientCheckerboardScore(CheckerboardScore):
    """Checkerboard score of gradients: the share of their RMS in grid patterns (0 to 1).

    The article's "artifacts in gradients": feed the gradient of a discriminator's loss with respect to
    its input images. Each gradient is normalised per image to zero mean and unit RMS
    (:func:`~lightning_checkerboard.functional.spectral.normalize_gradient`), so the loss scale does not
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

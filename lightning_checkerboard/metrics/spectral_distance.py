"""Spectral distance between generated and real images, as a torchmetrics Metric.

The math lives in :mod:`lightning_checkerboard.functional.spectral_distance`: ``update`` adds
``_spectral_distance_update`` of a batch to the real or the generated sums, ``compute`` is
``_spectral_distance_compute`` of them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_checkerboard._validation import check_int
from lightning_checkerboard.functional._validation import check_image_batch, to_unit_range
from lightning_checkerboard.functional.spectral_distance import _spectral_distance_compute, _spectral_distance_update

__all__ = ["SpectralDistance"]


class SpectralDistance(Metric):
    """Broadband spectral error of generated images against real ones (0 = same spectrum, at most 1).

    Accumulates the azimuthally averaged, Hann-windowed power spectrum of real and of generated images
    (:func:`~lightning_checkerboard.functional.radial_power_spectrum`); ``compute()`` returns
    the mean ``|clamp(mean_gen / mean_real - 1, -1, 1)|`` over the upper half of the frequencies
    (:func:`~lightning_checkerboard.functional.spectral_distance`). Blurry generators read
    high (missing power), so do noisy or checkerboarded ones (extra power). :meth:`spectra` returns
    both mean spectra, e.g. for :func:`~lightning_checkerboard.functional.plots.plot_spectra`.

    Args:
        num_bins: radial bins from DC to Nyquist. ``None`` (default) takes ``min(H, W) // 2 + 1`` from
            the first batch; set it explicitly to mix image sizes, or under DDP if a process may see no
            batch (states of a never-updated process have no bins to sum with).
        kwargs: passed to :class:`torchmetrics.Metric`.

    Shape:
        - ``update(images, real)``: ``(B, C, H, W)``, float in [0, 1] or uint8.
        - ``compute()``: scalar.

    Raises:
        ValueError: in ``update`` on a wrong rank, NaN/inf, floats outside [0, 1], or images too small for
            ``num_bins``; in ``compute`` if either set is empty.
        TypeError: if ``real`` is not a bool, or the images are neither float nor uint8.

    Example:
        >>> import torch
        >>> from lightning_checkerboard.metrics import SpectralDistance
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.rand(8, 3, 32, 32, generator=g)
        >>> blurred = torch.nn.functional.avg_pool2d(real, 3, 1, 1, count_include_pad=False)
        >>> metric = SpectralDistance()
        >>> metric.update(real, real=True)
        >>> metric.update(real, real=False)
        >>> float(metric.compute())
        0.0
        >>> metric.reset()
        >>> metric.update(real, real=True)
        >>> metric.update(blurred, real=False)
        >>> 0.5 < float(metric.compute()) <= 1.0
        True
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    real_sum: Tensor
    generated_sum: Tensor
    real_count: Tensor
    generated_count: Tensor

    def __init__(self, num_bins: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_bins is not None:
            check_int(num_bins, "num_bins", minimum=2)
        self.num_bins = num_bins
        size = 0 if num_bins is None else num_bins
        self.add_state("real_sum", torch.zeros(size), dist_reduce_fx="sum")
        self.add_state("generated_sum", torch.zeros(size), dist_reduce_fx="sum")
        self.add_state("real_count", torch.zeros(()), dist_reduce_fx="sum")
        self.add_state("generated_count", torch.zeros(()), dist_reduce_fx="sum")

    def update(self, images: Tensor, real: bool) -> None:
        """Add a batch of real (``real=True``) or generated (``real=False``) images."""
        if not isinstance(real, bool):
            raise TypeError(f"`real` must be a bool (True for real images), got {type(real).__name__}")
        check_image_batch(images)
        x = to_unit_range(images.detach())
        num_bins = self.num_bins if self.num_bins is not None else self.real_sum.numel() or None
        spectra = _spectral_distance_update(x, num_bins)
        if self.real_sum.numel() == 0:
            # First batch fixes the number of bins: the states grow once, from empty.
            self.real_sum = torch.zeros_like(spectra, dtype=self.real_sum.dtype)
            self.generated_sum = torch.zeros_like(spectra, dtype=self.generated_sum.dtype)
        if real:
            self.real_sum += spectra.to(self.real_sum.dtype)
            self.real_count += x.shape[0]
        else:
            self.generated_sum += spectra.to(self.generated_sum.dtype)
            self.generated_count += x.shape[0]

    def spectra(self) -> tuple[Tensor, Tensor]:
        """Mean radial spectra ``(generated, real)``, each ``(num_bins,)``, on the local process's data."""
        return self.generated_sum / self.generated_count, self.real_sum / self.real_count

    def compute(self) -> Tensor:
        """The spectral distance in [0, 1]."""
        distance = _spectral_distance_compute(self.generated_sum, self.real_sum, self.generated_count, self.real_count)
        return distance.float()

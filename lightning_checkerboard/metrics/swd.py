"""Multi-scale sliced Wasserstein distance (ProGAN's SWD) as a torchmetrics Metric.

The math lives in :mod:`lightning_checkerboard.functional.swd`; this class keeps the patch
descriptors of real and generated images and hands them to the same computation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from lightning_checkerboard.functional.swd import PATCH_SIZE, _check_options, _compute, _update

__all__ = ["SlicedWassersteinDistance"]


class SlicedWassersteinDistance(Metric):
    """Multi-scale sliced Wasserstein distance (x 1e3) between generated and real images; lower is better.

    ProGAN's quality metric (Karras et al., ICLR 2018), with no pretrained network: 7 x 7 patch
    descriptors from every level of each image's Laplacian pyramid (down to 16 pixels), normalised per
    level and channel, compared level by level through ``num_projections`` random 1-D projections.
    ``compute()`` returns the mean over levels in the paper's unit (distance x 1e3); :meth:`per_level`
    returns one value per level, finest first. See
    :func:`~lightning_checkerboard.functional.swd.sliced_wasserstein_distance` for the definition,
    which this metric computes over everything passed to :meth:`update`.

    Batches and processes: an image's patch positions are drawn from ``seed`` and a hash of its 8-bit
    pixel values, and the states are the descriptors themselves, concatenated across processes
    (``dist_reduce_fx="cat"``). So the value does not depend on how images are batched, ordered or
    spread over processes. Under DDP every process must update both sets at least once (an empty
    state has no shape to gather with).

    Memory: the metric keeps every descriptor, per set
    ``N x levels x patches_per_image x C x 49`` values (4 bytes each for float32 and uint8 input,
    8 for float64), on the device of the images. ``levels`` is 1 + the number of halvings that keep
    the shorter side >= 16: 2 at 32 px, 3 at 64 px, 4 at 128 px. Example: 1024 RGB images of
    64 x 64 with the default 128 patches keep ``1024 * 3 * 128 * 147 * 4`` bytes = 231 MB per set
    (2.3 GB for 10,000 images); memory scales linearly with ``patches_per_image``. ``compute()``
    sorts ``2 * num_projections`` projections of ``N * patches_per_image`` values per level, and
    holds one normalised copy of a level's descriptors plus ``N * patches_per_image * 128`` projected
    values at a time.

    Args:
        patches_per_image: 7 x 7 patches cut from every pyramid level of every image (the paper: 128).
        num_projections: random unit directions per level (the paper: 4 repeats x 128 = 512).
        seed: seeds the directions and the patch positions; equal seeds give comparable values.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Shape:
        - ``update(images, real)``: ``(B, C, H, W)``, float in [0, 1] or uint8, ``H, W >= 16``; every
          image, real or generated, must give the same channels and number of pyramid levels.
        - ``compute()``: scalar; :meth:`per_level`: ``(levels,)``.

    Raises:
        ValueError: on a non-positive ``patches_per_image`` or ``num_projections`` or a negative
            ``seed``; in ``update`` on a wrong rank, NaN/inf, floats outside [0, 1], images smaller
            than 16 x 16, or images whose channels or pyramid levels differ from earlier ones; in
            ``compute`` if either set is empty.
        TypeError: in ``update`` if ``real`` is not a bool, or the images are neither float nor uint8.

    Example:
        >>> import torch
        >>> from lightning_checkerboard.metrics import SlicedWassersteinDistance
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.rand(8, 3, 32, 32, generator=g)
        >>> metric = SlicedWassersteinDistance()
        >>> metric.update(real, real=True)
        >>> metric.update(real[4:], real=False)  # the same images, in other batches, give the same patches
        >>> metric.update(real[:4], real=False)
        >>> float(metric.compute())
        0.0
        >>> metric.reset()
        >>> metric.update(real, real=True)
        >>> metric.update(torch.nn.functional.avg_pool2d(real, 3, 1, 1, count_include_pad=False), real=False)
        >>> per_level = metric.per_level()  # blurred: finest level first, each above 0
        >>> per_level.shape, bool((per_level > 0).all())
        (torch.Size([2]), True)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0

    real_descriptors: list[Tensor] | Tensor
    generated_descriptors: list[Tensor] | Tensor

    def __init__(
        self, patches_per_image: int = 128, num_projections: int = 512, seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _check_options(patches_per_image, num_projections, seed)
        self.patches_per_image = patches_per_image
        self.num_projections = num_projections
        self.seed = seed
        self.add_state("real_descriptors", [], dist_reduce_fx="cat")
        self.add_state("generated_descriptors", [], dist_reduce_fx="cat")

    def _descriptor_form(self) -> tuple[int, ...] | None:
        for state in (self.real_descriptors, self.generated_descriptors):
            if isinstance(state, Tensor):
                return tuple(state.shape[1:])
            if state:
                return tuple(state[0].shape[1:])
        return None

    def update(self, images: Tensor, real: bool) -> None:
        """Add a batch of real (``real=True``) or generated (``real=False``) images."""
        if not isinstance(real, bool):
            raise TypeError(f"`real` must be a bool (True for real images), got {type(real).__name__}")
        descriptors = _update(images, self.patches_per_image, self.seed)
        seen = self._descriptor_form()
        if seen is not None and tuple(descriptors.shape[1:]) != seen:
            levels, _, values = seen
            raise ValueError(
                f"`images` must give the same channels and pyramid levels as earlier batches ({values // PATCH_SIZE**2} channels,"
                f" {levels} levels), got {images.shape[1]} channels and {descriptors.shape[1]} levels for shape "
                f"{tuple(images.shape)}"
            )
        (self.real_descriptors if real else self.generated_descriptors).append(descriptors)

    def _per_level(self) -> Tensor:
        generated, real = self.generated_descriptors, self.real_descriptors
        empty = torch.empty(0, 0)
        generated = dim_zero_cat(generated) if isinstance(generated, Tensor) or generated else empty
        real = dim_zero_cat(real) if isinstance(real, Tensor) or real else empty
        return _compute(generated, real, self.num_projections, self.seed).float()

    def per_level(self) -> Tensor:
        """SWD (x 1e3) per pyramid level, finest first, synchronised across processes like ``compute()``."""
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync
        ):
            return self._per_level().clone()

    def compute(self) -> Tensor:
        """The mean SWD (x 1e3) over pyramid levels."""
        return self._per_level().mean()

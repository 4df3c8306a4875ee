"""What the measuring callbacks need from a LightningModule and its datamodule, written as protocols.

A module satisfies a protocol by having the method, whatever its base classes: the package's own
tasks (:class:`~lightning_checkerboard.tasks.GANTask`, :class:`~lightning_checkerboard.tasks.StyleTransferTask`)
do, and any other LightningModule can either add the method or give the callback a
:class:`SampleFn` instead. Each callback checks, in its ``setup`` hook and so before the first
training step, that it has what it needs: a method of the right name that cannot be called with the
protocol's arguments counts as missing, and the ``TypeError`` names what to add.

- :class:`~lightning_checkerboard.callbacks.ArtifactMetrics`: :class:`SupportsMetricSamples` or a
  ``sample_fn``; real images are optional (they add the spectral distance and the gradient score).
- :class:`~lightning_checkerboard.callbacks.FIDCallback`: :class:`SupportsMetricSamples` or a
  ``sample_fn``, and real images (unless ``policy="off"``).
- :class:`~lightning_checkerboard.callbacks.SampleGrid`: :class:`SupportsSampleGrid` or a ``sample_fn``.

Real images come from the callback's ``real_images`` argument or from a datamodule that is
:class:`SupportsHeldoutImages`.

Example:
    >>> import torch
    >>> from lightning_checkerboard.tasks import GANTask
    >>> task = GANTask(image_size=16, latent_dim=8, gen_channels=8, disc_channels=8)
    >>> isinstance(task, SupportsMetricSamples), isinstance(task, SupportsSampleGrid)
    (True, True)
    >>> def sample_fn(num, generator):
    ...     return task.sample(noise=torch.randn(num, 8, generator=generator))
    >>> sample_fn(4, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 3, 16, 16])
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["SampleFn", "SupportsHeldoutImages", "SupportsMetricSamples", "SupportsSampleGrid"]


@runtime_checkable
class SampleFn(Protocol):
    """A function that generates ``num`` images from a seeded random generator.

    The callbacks call it under ``torch.no_grad()`` with the LightningModule in eval mode (its
    training mode is restored afterwards), in batches of at most the callback's ``batch_size``:
    batch ``j`` of a measurement gets a fresh CPU :class:`torch.Generator` seeded from the callback's
    ``seed`` and ``j``, so every measurement sees the same samples.

    Contract:
        - Draw every random number from ``generator`` (for example
          ``torch.randn(num, latent_dim, generator=generator)``), then move it to the model's device:
          the generator lives on the CPU, so the samples do not depend on the device.
        - Return a ``(num, C, H, W)`` float tensor in [0, 1] (or uint8 in [0, 255]) on any device.
          Never clip to hide out-of-range values: out-of-range floats raise.

    Under DDP every process asks only for the batches that overlap its share of the ``num`` images:
    the processes together measure exactly the images one process would, whatever their number.
    """

    def __call__(self, num: int, generator: torch.Generator) -> Tensor: ...


@runtime_checkable
class SupportsMetricSamples(Protocol):
    """A module that makes its own images for the metric callbacks (``ArtifactMetrics``, ``FIDCallback``).

    ``metric_samples`` returns this process's share of ``num`` images in [0, 1], shape
    ``(n, C, H, W)``, the same images every time it is called with the same ``seed``; process
    ``rank`` of ``world_size`` returns a disjoint share, so the shares add up to the ``num`` images.
    ``batch_size`` bounds how many images it generates at once.
    """

    def metric_samples(self, num: int, *, seed: int, batch_size: int, rank: int = 0, world_size: int = 1) -> Tensor: ...


@runtime_checkable
class SupportsSampleGrid(Protocol):
    """A module that shows a fixed batch of images for ``SampleGrid``.

    ``sample()`` returns ``(N, C, H, W)`` images in [0, 1], the same inputs (noise, content) on every
    call, so grids from different steps compare the same samples.
    """

    def sample(self) -> Tensor: ...


@runtime_checkable
class SupportsHeldoutImages(Protocol):
    """A datamodule that gives real images never seen in training, for the metrics that compare with data.

    ``heldout_images()`` returns all of them, ``(N, C, H, W)`` in [0, 1], the same images in the same
    order on every call and every process. A datamodule that also has a ``fingerprint`` string
    (a stable hash of those images) lets :class:`FIDCallback` cache their statistics on disk.
    """

    def heldout_images(self) -> Tensor: ...

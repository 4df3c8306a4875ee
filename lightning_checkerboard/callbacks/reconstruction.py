"""Fidelity of an autoencoder's reconstructions of held-out images: PSNR, SSIM, the residual's checkerboard."""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor
from typing_extensions import override

from lightning_checkerboard._lightning import pl
from lightning_checkerboard.callbacks._logging import log_scalars
from lightning_checkerboard.callbacks._sources import diverging_together, heldout_images, require_finite
from lightning_checkerboard.callbacks.artifacts import default_levels
from lightning_checkerboard.callbacks.fidelity import (
    _QUALITY_KEYS,
    _HeldoutComparison,
    _output_checkerboard,
    fidelity_scores,
)

__all__ = ["ReconstructionMetrics", "SupportsReconstruction"]


@runtime_checkable
class SupportsReconstruction(Protocol):
    """A module that reconstructs images through a latent ``latent_stride`` times smaller per side.

    ``reconstruct(images, batch_size)`` maps ``(N, C, H, W)`` images in [0, 1] to their
    reconstructions in [0, 1] (eval mode, no gradients); :class:`~lightning_checkerboard.tasks.AutoencoderTask`
    has it.
    """

    latent_stride: int

    def reconstruct(self, images: Tensor, batch_size: int = 16) -> Tensor: ...


class ReconstructionMetrics(_HeldoutComparison):
    """Measure an autoencoder on held-out images every ``every_n_steps`` iterations and at the end.

    The first ``num_samples`` held-out images of the trainer's datamodule are encoded and decoded
    (the module's ``reconstruct``) and compared with themselves (:func:`~lightning_checkerboard.callbacks.fidelity.fidelity_scores`,
    no border cropped): ``psnr`` and ``ssim`` (BT.601 luma: the headline numbers), ``psnr_rgb`` and
    ``ssim_rgb``, ``residual_checkerboard`` with ``residual_checkerboard_upper`` (the checkerboard score
    of ``reconstruction − image``, periods ``2 … 2^levels``), and each period's amplitude and bound
    (``residual_amplitude_period_P``, ``residual_upper_period_P``). Quality numbers are logged under ``metrics/``, the residual's under
    ``artifacts/``, and kept in :attr:`latest` for the result record. Before the first step the
    untrained model gets the same measurement plus the checkerboard score of its reconstructions
    (``checkerboard``, ``checkerboard_upper``) as the run's :attr:`baseline`: the reference a trained
    decoder must beat.

    Args:
        every_n_steps: interval in training iterations; 0 measures only at the end.
        num_samples: held-out images per measurement.
        batch_size: images per ``reconstruct`` call.
        levels: checkerboard periods ``2 … 2^levels``; default: ``log2(latent_stride)``, as many as
            the size allows (:func:`~lightning_checkerboard.callbacks.artifacts.default_levels`).

    Raises:
        ValueError: on a bad ``num_samples``, ``batch_size`` or ``levels``; in ``setup``, if
            ``num_samples`` is smaller than the number of processes.
        TypeError: in ``setup``, if the module is not :class:`SupportsReconstruction` or the
            datamodule has no ``heldout_images``.
    """

    _module_protocol = SupportsReconstruction
    _module_needs = "reconstruct(images, batch_size) and latent_stride"

    def _outputs(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> tuple[Tensor, Tensor, int]:
        """The reconstructions, their targets (this process's share), and the checkerboard levels."""
        targets = heldout_images(trainer, None, self.num_samples)[trainer.global_rank :: trainer.world_size]
        targets = targets.to(pl_module.device, torch.float32)
        with diverging_together(pl_module.device, trainer.world_size):
            outputs = require_finite(pl_module.reconstruct(targets, self.batch_size), "the reconstructions")
        levels = self.levels
        if levels is None:
            levels = default_levels(targets.shape[-2], int(math.log2(pl_module.latent_stride)), targets.shape[-1])
        return outputs, targets, levels

    def _scores(self, outputs: Tensor, targets: Tensor, levels: int) -> dict[str, float]:
        return fidelity_scores(outputs, targets, border=0, levels=levels, per_period=True)

    @override
    @torch.no_grad()
    def measure_baseline(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        """The untrained model's scores and the checkerboard score of its reconstructions."""
        outputs, targets, levels = self._outputs(trainer, pl_module)
        return {**self._scores(outputs, targets, levels), **_output_checkerboard(outputs, levels)}

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, final: bool = False) -> dict[str, float]:
        """Measure now; returns (and logs) the scores under ``metrics/`` and ``artifacts/``."""
        outputs, targets, levels = self._outputs(trainer, pl_module)
        self.latest = self._scores(outputs, targets, levels)
        self.protocol = {"fidelity_samples": self.num_samples, "fidelity_border": 0, "residual_levels": levels}
        logged = {f"{'metrics' if key in _QUALITY_KEYS else 'artifacts'}/{key}": value
                  for key, value in self.latest.items()}
        log_scalars(trainer, logged)
        return logged

"""Artifact metrics during training: checkerboard score, per-period PNR, spectral distance, gradients."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from lightning_checkerboard.callbacks._logging import iteration, log_images, log_scalars, run_directory
from lightning_checkerboard.callbacks._periodic import PeriodicCallback
from lightning_checkerboard.functional.gradients import discriminator_input_gradient
from lightning_checkerboard.functional.plots import plot_spectra
from lightning_checkerboard.metrics import CheckerboardScore, GradientCheckerboardScore, SpectralDistance

__all__ = ["ArtifactMetrics", "default_levels"]


def default_levels(image_size: int, stages: int) -> int:
    """Periods to measure: one per stride-2 stage, as many as fit with ``H / 2^L >= 4``."""
    return max(1, min(stages, int(math.log2(image_size // 4))))


def _heldout(trainer: pl.Trainer, count: int) -> Tensor | None:
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is None or not hasattr(datamodule, "heldout_images"):
        return None
    images = datamodule.heldout_images()
    # Each process measures its own share; the metrics sum their states across processes.
    return images[:count][trainer.global_rank :: trainer.world_size]


class ArtifactMetrics(PeriodicCallback):
    """Measure the generator's artifacts every ``every_n_steps`` iterations and at the end of training.

    Logged under ``artifacts/``: ``checkerboard`` (the score in 8-bit levels), ``checkerboard_ratio``
    (contrast-free), ``amplitude_period_P`` and ``pnr_db_period_P`` per period, ``spectral_distance``
    against the datamodule's held-out real images, ``gradient_checkerboard`` (the score of the
    discriminator's input gradient on real images, if the module has a ``discriminator``), and a
    spectra plot (also saved as ``spectra/<step>.png``). The last values are in :attr:`latest` for
    the result record, and the measurement protocol in :attr:`protocol`.

    The module provides the images: ``metric_samples(num, seed=, batch_size=, rank=, world_size=)``
    returns this process's share in [0, 1] (generated images for
    :class:`~lightning_checkerboard.tasks.GANTask`, stylised held-out content for
    :class:`~lightning_checkerboard.tasks.StyleTransferTask`). The trainer's datamodule provides
    ``heldout_images()`` in [0, 1] (without one, only the score is measured).

    Args:
        every_n_steps: interval in training iterations; 0 measures only at the end.
        num_samples: generated images per measurement (and at most as many held-out real ones).
        levels: periods ``2 … 2^levels`` to score; default: one per generator stage.
        batch_size: generation batch size.
        gradient: also score the discriminator's input gradient.
        seed: noise seed, so every measurement scores the same latent points.
    """

    def __init__(
        self,
        every_n_steps: int = 500,
        num_samples: int = 256,
        *,
        levels: int | None = None,
        batch_size: int = 64,
        gradient: bool = True,
        seed: int = 2024,
    ) -> None:
        super().__init__(every_n_steps)
        for name, value in (("num_samples", num_samples), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        self.num_samples, self.levels = num_samples, levels
        self.batch_size, self.gradient, self.seed = batch_size, gradient, seed
        self.latest: dict[str, float] = {}
        self.protocol: dict[str, Any] = {}

    def _levels(self, pl_module: pl.LightningModule, image_size: int) -> int:
        if self.levels is not None:
            return self.levels
        stages = len(getattr(pl_module, "stage_names", [])) or int(math.log2(image_size // 4))
        return default_levels(image_size, stages)

    def _generate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Tensor:
        return pl_module.metric_samples(self.num_samples, seed=self.seed, batch_size=self.batch_size,
                                        rank=trainer.global_rank, world_size=trainer.world_size).cpu()

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, final: bool = False) -> dict[str, float]:
        """Measure now; returns (and logs) the metrics."""
        fake = self._generate(trainer, pl_module)
        size = fake.shape[-1]
        levels = self._levels(pl_module, size)
        score = CheckerboardScore(levels=levels)
        score.update(fake)
        diagnostics = {key: float(value) for key, value in score.diagnostics().items()}
        metrics = {
            "artifacts/checkerboard": diagnostics.pop("score"),
            "artifacts/checkerboard_ratio": diagnostics.pop("ratio"),
            **{f"artifacts/{key}": value for key, value in diagnostics.items()},
        }
        real = _heldout(trainer, self.num_samples)
        figure = None
        if real is not None and len(real):
            distance = SpectralDistance()
            distance.update(real.to(fake.dtype), real=True)
            distance.update(fake, real=False)
            metrics["artifacts/spectral_distance"] = float(distance.compute())
            generated, reference = distance.spectra()
            tag = f"step_{iteration(trainer):06d}"
            if trainer.global_rank == 0:
                figure = plot_spectra(
                    {"real (held out)": reference, "generated": generated},
                    path=run_directory(trainer) / "spectra" / f"{tag}.png",
                    title=f"Power spectrum, step {iteration(trainer)}",
                )
            if self.gradient and hasattr(pl_module, "discriminator"):
                grad_score = GradientCheckerboardScore(levels=levels)
                grad_score.update(discriminator_input_gradient(pl_module.discriminator, real, self.batch_size))
                metrics["artifacts/gradient_checkerboard"] = float(grad_score.compute())
        self.latest = {key.split("/", 1)[1]: value for key, value in metrics.items()}
        self.protocol = {
            "eval_samples": self.num_samples,
            "levels": levels,
            "heldout_samples": 0 if real is None else min(self.num_samples, len(trainer.datamodule.heldout_images())),
        }
        log_scalars(trainer, metrics)
        if figure is not None:
            log_images(trainer, "artifacts/spectra", [np.ascontiguousarray(figure)])
        return metrics


"""Artifact metrics during training: checkerboard score, per-period PNR, spectral distance, gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from typing_extensions import override

from lightning_checkerboard._lightning import pl
from lightning_checkerboard._validation import check_non_negative_int, check_positive_int
from lightning_checkerboard.callbacks._logging import (
    iteration,
    log_images,
    log_scalars,
    save_final_samples,
    trainer_run_directory,
)
from lightning_checkerboard.callbacks._periodic import BaselineState, PeriodicCallback
from lightning_checkerboard.callbacks._sources import (
    check_image_source,
    check_real_images,
    check_sample_fn,
    check_shares,
    heldout_images,
    metric_images,
)
from lightning_checkerboard.callbacks.protocols import SampleFn
from lightning_checkerboard.functional._validation import MIN_BINS_PER_CELL
from lightning_checkerboard.functional.gradients import discriminator_input_gradient
from lightning_checkerboard.functional.plots import plot_spectra
from lightning_checkerboard.functional.swd import MIN_RESOLUTION
from lightning_checkerboard.metrics import (
    CheckerboardScore,
    GradientCheckerboardScore,
    SlicedWassersteinDistance,
    SpectralDistance,
)

__all__ = ["ArtifactMetrics", "default_levels"]


def default_levels(height: int, stages: int | None = None, width: int | None = None) -> int:
    """Periods to measure: one per stride-2 stage, as many as the image size allows (at least one).

    A level ``L`` fits when ``H`` and ``W`` are divisible by ``2^L`` and ``H / 2^L, W / 2^L >= 4``.

    Args:
        height: image height (and width, when ``width`` is not given).
        stages: the generator's stride-2 stages; ``None``: every level that fits.
        width: image width, when it differs from ``height``.

    Example:
        >>> default_levels(64, 3), default_levels(16, 3), default_levels(28), default_levels(24, width=64)
        (3, 2, 2, 2)
    """
    width = height if width is None else width
    fits = 0
    while all(side % 2 ** (fits + 1) == 0 and side // 2 ** (fits + 1) >= MIN_BINS_PER_CELL for side in (height, width)):
        fits += 1
    return max(1, fits if stages is None else min(stages, fits))


class ArtifactMetrics(BaselineState, PeriodicCallback):
    """Measure the generator's artifacts every ``every_n_steps`` iterations and at the end of training.

    Logged under ``artifacts/``: ``checkerboard`` (the score in 8-bit levels), ``checkerboard_upper``
    (its 95 % upper bound: the largest amplitude the measurement cannot rule out),
    ``checkerboard_ratio`` (contrast-free), ``amplitude_period_P``, ``upper_period_P`` and
    ``pnr_db_period_P`` per period, ``spectral_distance`` against held-out real images,
    ``gradient_checkerboard`` (the score of the discriminator's input gradient on real images, if the
    module has a ``discriminator``), and a spectra plot (also saved as ``spectra/<step>.png``). With
    ``quality=True`` it also logs ``metrics/swd``, the sliced Wasserstein distance to the held-out
    images (:class:`~lightning_checkerboard.metrics.SlicedWassersteinDistance`, images of at least
    16 pixels), and measures it once before the first step as the run's baseline (:attr:`baseline`).
    The last values are in :attr:`latest` for the result record (``swd`` and the artifact keys), and
    the measurement protocol in :attr:`protocol`.

    Images come from ``sample_fn(num, generator)`` when given (see
    :class:`~lightning_checkerboard.callbacks.protocols.SampleFn`), else from the module's
    ``metric_samples`` (:class:`~lightning_checkerboard.callbacks.protocols.SupportsMetricSamples`:
    generated images for :class:`~lightning_checkerboard.tasks.GANTask`, stylised held-out content
    for :class:`~lightning_checkerboard.tasks.StyleTransferTask`); ``setup`` raises if there are
    neither. Real images for the spectral distance come from ``real_images`` or from the trainer's
    datamodule's ``heldout_images()`` (:class:`~lightning_checkerboard.callbacks.protocols.SupportsHeldoutImages`);
    without either, the spectral distance and the gradient score are skipped.

    Args:
        every_n_steps: interval in training iterations; 0 measures only at the end.
        num_samples: generated images per measurement (and at most as many held-out real ones).
        levels: periods ``2 … 2^levels`` to score; default: one per entry of the module's
            ``stage_names`` (every level the image size allows when it has none), see :func:`default_levels`.
        batch_size: generation batch size.
        gradient: also score the discriminator's input gradient.
        seed: noise seed, so every measurement scores the same latent points.
        sample_fn: makes the images instead of the module's ``metric_samples``.
        real_images: held-out real images ``(N, C, H, W)`` in [0, 1] instead of the datamodule's.
        quality: also measure SWD to the held-out images (for generators of the data's distribution;
            off for tasks whose outputs should differ from it, like style transfer).
        save_samples: save the images of the final measurement, one by one, as
            ``samples/final_samples.npz`` in the run directory (see :mod:`lightning_checkerboard.run_samples`),
            so that ``lightning-checkerboard score <run dir>`` can score them again.

    Raises:
        ValueError: on a bad ``num_samples``, ``batch_size`` or ``seed``, or ``real_images`` of a wrong shape;
            in ``setup``, if ``num_samples`` is smaller than the number of processes.
        TypeError: if ``sample_fn`` is not callable; in ``setup``, if the module has no
            ``metric_samples`` and there is no ``sample_fn``.
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
        sample_fn: SampleFn | None = None,
        real_images: Tensor | None = None,
        quality: bool = True,
        save_samples: bool = True,
    ) -> None:
        super().__init__(every_n_steps)
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.levels, self.gradient, self.seed = levels, gradient, check_non_negative_int(seed, "seed")
        self.sample_fn = check_sample_fn(sample_fn)
        self.real_images = check_real_images(real_images)
        self.quality = bool(quality)
        self.save_samples = bool(save_samples)
        self.latest: dict[str, float] = {}
        self.protocol: dict[str, Any] = {}

    def _state_settings(self) -> dict[str, Any]:
        return {"every_n_steps": self.every_n_steps, "num_samples": self.num_samples, "seed": self.seed}

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            check_image_source(type(self).__name__, pl_module, self.sample_fn, "metric_samples")
            check_shares(type(self).__name__, self.num_samples, trainer.world_size)

    def _levels(self, pl_module: pl.LightningModule, images: Tensor) -> int:
        if self.levels is not None:
            return self.levels
        stages = len(getattr(pl_module, "stage_names", ())) or None
        return default_levels(images.shape[-2], stages, images.shape[-1])

    def _generate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Tensor:
        return metric_images(pl_module, self.sample_fn, self.num_samples, seed=self.seed, batch_size=self.batch_size,
                             rank=trainer.global_rank, world_size=trainer.world_size).cpu()

    def _real_share(self, trainer: pl.Trainer) -> tuple[Tensor | None, Tensor | None]:
        """All held-out images and this process's share of them (the metrics sum or gather the shares)."""
        heldout = heldout_images(trainer, self.real_images, self.num_samples)
        return heldout, None if heldout is None else heldout[trainer.global_rank :: trainer.world_size]

    def _swd(self, fake: Tensor, real: Tensor | None) -> float | None:
        if not self.quality or real is None or not len(real) or min(fake.shape[-2:]) < MIN_RESOLUTION:
            return None
        swd = SlicedWassersteinDistance()
        swd.update(real.to(fake.dtype), real=True)
        swd.update(fake, real=False)
        return float(swd.compute())

    @override
    @torch.no_grad()
    def measure_baseline(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        """SWD of the model before training (``{}`` when SWD is off or cannot be measured)."""
        real = self._real_share(trainer)[1] if self.quality else None
        if real is None or not len(real):
            return {}
        value = self._swd(self._generate(trainer, pl_module), real)
        return {} if value is None else {"swd": value}

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, final: bool = False) -> dict[str, float]:
        """Measure now; returns (and logs) the metrics."""
        fake = self._generate(trainer, pl_module)
        levels = self._levels(pl_module, fake)
        score = CheckerboardScore(levels=levels)
        score.update(fake)
        diagnostics = {key: float(value) for key, value in score.diagnostics().items()}
        metrics = {
            "artifacts/checkerboard": diagnostics.pop("score"),
            "artifacts/checkerboard_upper": diagnostics.pop("upper"),
            "artifacts/checkerboard_ratio": diagnostics.pop("ratio"),
            **{f"artifacts/{key}": value for key, value in diagnostics.items()},
        }
        heldout, real = self._real_share(trainer)
        swd = self._swd(fake, real)
        if swd is not None:
            metrics["metrics/swd"] = swd
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
                    path=trainer_run_directory(trainer) / "spectra" / f"{tag}.png",
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
            "heldout_samples": 0 if heldout is None else len(heldout),
        }

        log_scalars(trainer, metrics)
        if figure is not None:
            log_images(trainer, "artifacts/spectra", [np.ascontiguousarray(figure)])
        if final and self.save_samples:
            save_final_samples(trainer, fake)
        return metrics


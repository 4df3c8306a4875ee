"""FID at the end of training (and optionally every N iterations), with the offline policy of :class:`FID`."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor
from typing_extensions import override

from lightning_checkerboard._lightning import pl
from lightning_checkerboard._validation import check_int, check_non_negative_int, check_positive_int
from lightning_checkerboard.callbacks._logging import log_scalars
from lightning_checkerboard.callbacks._periodic import BaselineState, PeriodicCallback
from lightning_checkerboard.callbacks._sources import (
    check_image_source,
    check_real_images,
    check_real_source,
    check_sample_fn,
    check_shares,
    heldout_images,
    metric_images,
    missing_real_images_error,
)
from lightning_checkerboard.callbacks.protocols import SampleFn
from lightning_checkerboard.metrics.fid import FID

__all__ = ["FIDCallback"]


class FIDCallback(BaselineState, PeriodicCallback):
    """Fréchet Inception Distance of generated images against held-out real images.

    Generated images come from ``sample_fn(num, generator)`` when given (see
    :class:`~lightning_checkerboard.callbacks.protocols.SampleFn`), else from the module's
    ``metric_samples`` (:class:`~lightning_checkerboard.callbacks.protocols.SupportsMetricSamples`).
    Real images come from ``real_images``, else from the trainer's datamodule's ``heldout_images()``
    (:class:`~lightning_checkerboard.callbacks.protocols.SupportsHeldoutImages`). ``setup`` raises
    when either source is missing (unless ``policy="off"``), before any training.

    Real statistics are computed once per run; when they come from a datamodule with a
    ``fingerprint``, they are also cached on disk, keyed by that fingerprint, the resolution, the
    sample count and the extractor. Next to FID it records KID (mean and std over subsets) and
    Inception-feature precision and recall (k = 3), from torch-fidelity's implementations on the same
    features (see :meth:`~lightning_checkerboard.metrics.FID.diagnostics`). Before the first step it also measures the untrained model's FID
    as the run's :attr:`baseline`. With ``policy="auto"`` and no Inception weights (offline), FID
    is recorded as unavailable with the reason and the run goes on; ``"required"`` raises at
    construction, before any training; ``"off"`` skips it.

    Args:
        policy: ``"auto"``, ``"required"`` or ``"off"``.
        num_samples: generated images (and at most as many held-out real images).
        weights_path: an explicit Inception weights file (``--fid-weights``).
        every_n_steps: also measure every N iterations (0: only at the end; FID is slow on a CPU).
        batch_size: generation and feature-extraction batch size.
        cache_dir: real-statistics cache directory (default: the user cache).
        seed: noise seed for the generated images.
        sample_fn: makes the images instead of the module's ``metric_samples``.
        real_images: held-out real images ``(N, C, H, W)`` in [0, 1] instead of the datamodule's
            (their statistics are not cached on disk).

    Raises:
        RuntimeError: ``policy="required"`` and no weights can be found.
        ValueError: on a bad ``num_samples``, ``batch_size`` or ``seed``, or ``real_images`` of a wrong shape;
            in ``setup``, if ``num_samples`` is smaller than the number of processes.
        TypeError: if ``sample_fn`` is not callable; in ``setup``, if the module has no
            ``metric_samples`` and there is no ``sample_fn``, or there are no real images.
    """

    def __init__(
        self,
        policy: str = "auto",
        num_samples: int = 256,
        *,
        weights_path: str | os.PathLike | None = None,
        every_n_steps: int = 0,
        batch_size: int = 64,
        cache_dir: str | os.PathLike | None = None,
        seed: int = 4242,
        sample_fn: SampleFn | None = None,
        real_images: Tensor | None = None,
    ) -> None:
        super().__init__(every_n_steps)
        # FID needs a covariance: at least two images.
        self.num_samples = check_int(num_samples, "num_samples", minimum=2)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.seed = check_non_negative_int(seed, "seed")
        self.metric = FID(policy, weights_path, cache_dir=cache_dir)
        self.sample_fn = check_sample_fn(sample_fn)
        self.real_images = check_real_images(real_images)
        self.latest: dict[str, Any] = {}
        self.protocol: dict[str, Any] = {"fid_samples": num_samples, **self._info()}
        self._real_ready = False

    def _state_settings(self) -> dict[str, Any]:
        return {"policy": self.metric.policy, "num_samples": self.num_samples, "seed": self.seed}

    def _info(self) -> dict[str, Any]:
        info = self.metric.result_info()
        return {"fid_extractor": info["fid_extractor"], "fid_unavailable_reason": info["fid_unavailable_reason"]}

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.metric.policy == "off":
            return
        check_image_source(type(self).__name__, pl_module, self.sample_fn, "metric_samples")
        check_real_source(type(self).__name__, trainer, self.real_images)
        check_shares(type(self).__name__, self.num_samples, trainer.world_size)

    def _prepare_real(self, trainer: pl.Trainer, device: torch.device) -> int:
        real = heldout_images(trainer, self.real_images, self.num_samples)
        if real is None:
            raise missing_real_images_error(type(self).__name__, trainer)
        count = len(real)
        fingerprint = None if self.real_images is not None else getattr(trainer.datamodule, "fingerprint", None)
        cached = isinstance(fingerprint, str) and count >= 2 and self.metric.use_real_cache(
            fingerprint, int(real.shape[-1]), count)
        if count >= 2 and not cached:
            for chunk in real[trainer.global_rank :: trainer.world_size].split(self.batch_size):
                self.metric.update(chunk.to(device), real=True)
        self._real_ready = True
        return count

    def _fid(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, diagnostics: bool = True) -> dict[str, float]:
        """FID (with ``diagnostics``, and KID and precision/recall when there are enough images) of the samples now."""
        self.metric.to(pl_module.device)
        self.metric.reset()  # keeps the real statistics
        if not self._real_ready:
            real_count = self._prepare_real(trainer, pl_module.device)
            self.protocol["fid_real_samples"] = real_count
        fake = metric_images(pl_module, self.sample_fn, self.num_samples, seed=self.seed, batch_size=self.batch_size,
                             rank=trainer.global_rank, world_size=trainer.world_size)
        for chunk in fake.split(self.batch_size):
            self.metric.update(chunk, real=False)
        # KID and precision/recall need more images than precision/recall's neighbourhood on each side.
        enough = min(self.num_samples, self.protocol["fid_real_samples"]) > max(1, self.metric.prc_neighborhood)
        if diagnostics and enough and self.metric.keep_features:
            return {key: float(value) for key, value in self.metric.diagnostics().items()}
        return {"fid": float(self.metric.compute())}

    @override
    @torch.no_grad()
    def measure_baseline(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """FID of the model before training (``{}`` when FID is unavailable or off)."""
        if not self.metric.available:
            return {}
        return {"fid": self._fid(trainer, pl_module, diagnostics=False)["fid"]}

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, final: bool = False) -> float | None:
        """Measure now; logs ``metrics/fid`` (and ``metrics/kid``, ``kid_std``, ``precision``, ``recall``)."""
        if not self.metric.available:
            self.latest = {"fid": None}
            return None
        values = self._fid(trainer, pl_module)
        self.protocol.update(self._info())
        self.protocol["fid_real_from_cache"] = bool(self.metric.result_info().get("fid_real_from_cache", False))
        self.latest = values
        log_scalars(trainer, {f"metrics/{key}": value for key, value in values.items()})
        return values["fid"]

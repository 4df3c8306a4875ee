"""Fidelity to the held-out high-resolution images: PSNR, SSIM and the residual's checkerboard, against bicubic."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
from typing_extensions import override

from lightning_checkerboard._lightning import pl
from lightning_checkerboard._validation import check_positive_int
from lightning_checkerboard.callbacks._logging import log_scalars
from lightning_checkerboard.callbacks._periodic import BaselineState, PeriodicCallback
from lightning_checkerboard.callbacks._sources import check_shares, diverging_together, heldout_images, require_finite
from lightning_checkerboard.callbacks.artifacts import default_levels
from lightning_checkerboard.functional._validation import MIN_BINS_PER_CELL
from lightning_checkerboard.functional.fidelity import crop_border, rgb_to_y
from lightning_checkerboard.functional.swd import MIN_RESOLUTION
from lightning_checkerboard.metrics.checkerboard import CheckerboardScore
from lightning_checkerboard.metrics.residual_checkerboard import ResidualCheckerboardScore
from lightning_checkerboard.metrics.swd import SlicedWassersteinDistance

__all__ = ["FidelityMetrics", "SupportsSuperResolution", "fidelity_scores", "min_image_size"]

#: Logged under ``metrics/``; the rest of what the callback logs goes under ``artifacts/``.
_QUALITY_KEYS = ("psnr", "ssim", "psnr_rgb", "ssim_rgb", "swd")
#: The smallest side SSIM's 11-pixel window takes: it reflects 5 pixels at every edge.
_SSIM_MIN_SIDE = 6


def min_image_size(scale: int) -> int:
    """The smallest high-resolution side that :func:`fidelity_scores` measures at factor ``scale``.

    A multiple of ``scale`` that leaves SSIM's window room after the border of ``scale`` pixels is
    cropped, and gives the residual's checkerboard score at least one period of
    :data:`~lightning_checkerboard.functional._validation.MIN_BINS_PER_CELL` bins per cell.

    Example:
        >>> min_image_size(2), min_image_size(4), min_image_size(8)
        (10, 16, 24)
    """
    side = max(2 * scale + _SSIM_MIN_SIDE, 2 * MIN_BINS_PER_CELL)
    return -(-side // scale) * scale


@runtime_checkable
class SupportsSuperResolution(Protocol):
    """A module that degrades high-resolution images, super-resolves them and knows the bicubic baseline.

    ``degrade(hr)`` maps ``(N, C, H, W)`` images in [0, 1] to their low-resolution inputs,
    ``super_resolve(lr, batch_size)`` returns the outputs in [0, 1] (eval mode, no gradients),
    ``bicubic(lr)`` the baseline's, and ``scale`` is the factor; :class:`~lightning_checkerboard.tasks.SuperResolutionTask`
    has all four.
    """

    scale: int

    def degrade(self, hr: Tensor) -> Tensor: ...

    def bicubic(self, lr: Tensor) -> Tensor: ...

    def super_resolve(self, lr: Tensor, batch_size: int = 16) -> Tensor: ...


def _as_rgb(images: Tensor) -> Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


@torch.no_grad()
def fidelity_scores(outputs: Tensor, targets: Tensor, *, border: int, levels: int,
                    per_period: bool = False) -> dict[str, float]:
    """PSNR and SSIM on BT.601 luma and on RGB, and the residual's checkerboard score and 95 % bound.

    - ``psnr``, ``ssim``: on the luma ``Y`` (:func:`~lightning_checkerboard.functional.fidelity.rgb_to_y`)
      of both images, ``border`` pixels cropped from every side, with ``data_range=1``;
    - ``psnr_rgb``, ``ssim_rgb``: the same on the RGB channels (same crop);
    - ``residual_checkerboard``, ``residual_checkerboard_upper``: the checkerboard score, in 8-bit
      levels, of ``outputs − targets`` over the whole image (no crop: the grid must keep its cells),
      with its 95 % upper bound (:class:`~lightning_checkerboard.metrics.residual_checkerboard.ResidualCheckerboardScore`);
    - with ``per_period``, also ``residual_amplitude_period_P`` and ``residual_upper_period_P``: the
      residual's amplitude and 95 % bound at each period ``P = 2 … 2^levels``, from the same measurement.

    PSNR is torchmetrics' ``PeakSignalNoiseRatio``: ``10·log10(1 / MSE)`` with the MSE over every
    pixel of every image, not a mean of per-image PSNRs (so one flat crop reproduced exactly cannot
    make it infinite). SSIM is torchmetrics' ``StructuralSimilarityIndexMeasure`` (Gaussian window of
    11 pixels, σ = 1.5, at every pixel with the image reflected at its edges), the mean over images. Grey images count as RGB with equal channels. Inside a
    distributed run the metrics sum every process's share before computing.

    Args:
        outputs: ``(N, C, H, W)`` in [0, 1], ``C`` 1 or 3.
        targets: the same shape, in [0, 1].
        border: pixels cropped from each side for PSNR and SSIM (the literature: the scale).
        levels: checkerboard periods ``2 … 2^levels`` for the residual.
        per_period: add the residual's amplitude and bound per period.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> targets = torch.rand(4, 3, 32, 32, generator=g)
        >>> scores = fidelity_scores((targets + 0.01).clamp(0, 1), targets, border=2, levels=2)
        >>> 38 < scores["psnr_rgb"] < 41, scores["ssim_rgb"] > 0.99
        (True, True)
    """
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs and targets must have one shape; got {tuple(outputs.shape)} and {tuple(targets.shape)}.")
    outputs, targets = _as_rgb(outputs.float()), _as_rgb(targets.float().to(outputs.device))
    device = outputs.device
    scores: dict[str, float] = {}
    views = {"": (rgb_to_y(outputs), rgb_to_y(targets)), "_rgb": (outputs, targets)}
    for suffix, (out, ref) in views.items():
        out, ref = crop_border(out, border), crop_border(ref, border)
        psnr = PeakSignalNoiseRatio(data_range=1.0).to(device)
        ssim = StructuralSimilarityIndexMeasure(data_range=1.0).to(device)
        psnr.update(out, ref)
        ssim.update(out, ref)
        scores[f"psnr{suffix}"] = float(psnr.compute())
        scores[f"ssim{suffix}"] = float(ssim.compute())
    residual = ResidualCheckerboardScore(levels=levels).to(device)
    residual.update(outputs - targets)
    diagnostics = residual.diagnostics()
    scores["residual_checkerboard"] = float(diagnostics["score"])
    scores["residual_checkerboard_upper"] = float(diagnostics["upper"])
    if per_period:
        scores.update({f"residual_{key}": float(value) for key, value in diagnostics.items()
                       if key.startswith(("amplitude_period_", "upper_period_"))})
    return scores


def _output_checkerboard(outputs: Tensor, levels: int) -> dict[str, float]:
    """``checkerboard`` and ``checkerboard_upper`` of images, as :class:`~lightning_checkerboard.callbacks.ArtifactMetrics` scores them."""
    score = CheckerboardScore(levels=levels).to(outputs.device)
    score.update(outputs)
    diagnostics = score.diagnostics()
    return {"checkerboard": float(diagnostics["score"]), "checkerboard_upper": float(diagnostics["upper"])}


class _HeldoutComparison(BaselineState, PeriodicCallback):
    """What the held-out fidelity callbacks share: their settings, state key and the checks of ``setup``.

    Subclasses name the module protocol they need (``_module_protocol``) and how to describe it
    (``_module_needs``, after "needs").
    """

    _module_protocol: type
    _module_needs: str

    def __init__(self, every_n_steps: int = 0, num_samples: int = 64, *, batch_size: int = 16,
                 levels: int | None = None) -> None:
        super().__init__(every_n_steps)
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.levels = None if levels is None else check_positive_int(levels, "levels")
        #: The last measurement, by record key.
        self.latest: dict[str, float] = {}
        self.protocol: dict[str, Any] = {}

    def _state_settings(self) -> dict[str, Any]:
        return {"every_n_steps": self.every_n_steps, "num_samples": self.num_samples, "levels": self.levels}

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        name = type(self).__name__
        if not isinstance(pl_module, self._module_protocol):
            raise TypeError(f"{name} needs {self._module_needs} on {type(pl_module).__name__}.")
        if not hasattr(getattr(trainer, "datamodule", None), "heldout_images"):
            raise TypeError(f"{name} needs a datamodule with heldout_images() -> images in [0, 1].")
        check_shares(name, self.num_samples, trainer.world_size)


class FidelityMetrics(_HeldoutComparison):
    """Measure a super-resolution module on held-out images every ``every_n_steps`` iterations and at the end.

    The first ``num_samples`` held-out images of the trainer's datamodule are the high-resolution
    targets; the module degrades them (``degrade``), super-resolves the result (``super_resolve``) and
    :func:`fidelity_scores` compares the outputs with the targets: ``psnr`` and ``ssim`` (BT.601 luma,
    a border of ``scale`` pixels cropped: the headline numbers), ``psnr_rgb`` and ``ssim_rgb``, and
    ``residual_checkerboard`` with ``residual_checkerboard_upper``. The quality numbers are logged
    under ``metrics/``, the residual's under ``artifacts/``, and kept in :attr:`latest` for the result
    record.

    The bicubic baseline (``bicubic``) gets the same measurement once, when training starts: its
    values are logged and recorded with the suffix ``_bicubic`` (``psnr_bicubic``, ``ssim_bicubic``,
    ``psnr_rgb_bicubic``, ``ssim_rgb_bicubic``, ``residual_checkerboard_bicubic``,
    ``residual_checkerboard_upper_bicubic``), together with the score of its outputs as
    :class:`~lightning_checkerboard.callbacks.ArtifactMetrics` measures a module's
    (``checkerboard_bicubic``, ``checkerboard_upper_bicubic``) and, with ``swd`` and images of at
    least 16 pixels, their SWD to the targets (``swd_bicubic``). Give ``ArtifactMetrics`` the same
    ``num_samples`` (and ``levels``) for the module's own values to compare. Before the first step
    the untrained module is measured too, as the run's :attr:`baseline`: its :func:`fidelity_scores`
    and the checkerboard score of its outputs (``checkerboard``, ``checkerboard_upper``), so a record
    says whether an upsampler's initialisation already paints a pattern.

    Args:
        every_n_steps: interval in training iterations; 0 measures only at the end.
        num_samples: held-out images per measurement.
        batch_size: images per ``super_resolve`` call.
        levels: checkerboard periods ``2 … 2^levels``; default: one per entry of the module's
            ``stage_names``, as many as the size allows (:func:`~lightning_checkerboard.callbacks.artifacts.default_levels`).
        swd: also measure the bicubic baseline's SWD.

    Raises:
        ValueError: on a bad ``num_samples``, ``batch_size`` or ``levels``; in ``setup``, if
            ``num_samples`` is smaller than the number of processes.
        TypeError: in ``setup``, if the module is not :class:`SupportsSuperResolution` or the
            datamodule has no ``heldout_images``.
    """

    _module_protocol = SupportsSuperResolution
    _module_needs = "degrade(hr), bicubic(lr), super_resolve(lr, batch_size) and scale"

    def __init__(self, every_n_steps: int = 0, num_samples: int = 64, *, batch_size: int = 16,
                 levels: int | None = None, swd: bool = True) -> None:
        super().__init__(every_n_steps, num_samples, batch_size=batch_size, levels=levels)
        self.swd = bool(swd)
        #: The bicubic baseline's values (keys ending in ``_bicubic``), measured when training starts.
        self.bicubic: dict[str, float] = {}

    def _targets(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Tensor:
        images = heldout_images(trainer, None, self.num_samples)[trainer.global_rank :: trainer.world_size]
        return images.to(pl_module.device, torch.float32)

    def _levels(self, pl_module: pl.LightningModule, targets: Tensor) -> int:
        if self.levels is not None:
            return self.levels
        stages = len(getattr(pl_module, "stage_names", ())) or None
        return default_levels(targets.shape[-2], stages, targets.shape[-1])

    def _outputs(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *,
                 bicubic: bool = False) -> tuple[Tensor, Tensor, int]:
        """The module's (or the bicubic baseline's) outputs, their targets, and the checkerboard levels."""
        targets = self._targets(trainer, pl_module)
        lr = pl_module.degrade(targets)
        with diverging_together(pl_module.device, trainer.world_size):
            outputs = pl_module.bicubic(lr).float() if bicubic else pl_module.super_resolve(lr, self.batch_size)
            if not bicubic:
                require_finite(outputs, "the super-resolved images")
        return outputs, targets, self._levels(pl_module, targets)

    def _measure_module(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        outputs, targets, levels = self._outputs(trainer, pl_module)
        self.protocol = {"fidelity_samples": self.num_samples, "fidelity_border": pl_module.scale,
                         "residual_levels": levels}
        return fidelity_scores(outputs, targets, border=pl_module.scale, levels=levels)

    @torch.no_grad()
    def measure_bicubic(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        """The bicubic baseline's values, keys suffixed ``_bicubic`` (see the class docstring)."""
        outputs, targets, levels = self._outputs(trainer, pl_module, bicubic=True)
        values = {**fidelity_scores(outputs, targets, border=pl_module.scale, levels=levels),
                  **_output_checkerboard(outputs, levels)}
        if self.swd and min(outputs.shape[-2:]) >= MIN_RESOLUTION:
            swd = SlicedWassersteinDistance().to(outputs.device)
            swd.update(targets, real=True)
            swd.update(outputs, real=False)
            values["swd"] = float(swd.compute())
        return {f"{key}_bicubic": value for key, value in values.items()}

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        if not self.bicubic:
            self.bicubic = self.measure_bicubic(trainer, pl_module)
            self.latest = {**self.latest, **self.bicubic}
            log_scalars(trainer, self._prefixed(self.bicubic))

    @override
    @torch.no_grad()
    def measure_baseline(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        """The untrained module's :func:`fidelity_scores` and the checkerboard score of its outputs."""
        outputs, targets, levels = self._outputs(trainer, pl_module)
        return {**fidelity_scores(outputs, targets, border=pl_module.scale, levels=levels),
                **_output_checkerboard(outputs, levels)}

    @staticmethod
    def _prefixed(values: dict[str, float]) -> dict[str, float]:
        def prefix(key: str) -> str:
            return "metrics" if key.removesuffix("_bicubic") in _QUALITY_KEYS else "artifacts"
        return {f"{prefix(key)}/{key}": value for key, value in values.items()}

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, final: bool = False) -> dict[str, float]:
        """Measure now; returns (and logs) the module's scores under ``metrics/`` and ``artifacts/``."""
        scores = self._measure_module(trainer, pl_module)
        self.latest = {**scores, **self.bicubic}
        logged = self._prefixed(scores)
        log_scalars(trainer, logged)
        return logged

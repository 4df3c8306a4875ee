"""``SuperResolutionTask``: single-image super-resolution with an ESPCN-style network and registry upsamplers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_checkerboard._lightning import pl
from lightning_checkerboard._validation import check_choice, check_positive_int
from lightning_checkerboard.data.degradation import bicubic_upscale, check_hr_size, downscale
from lightning_checkerboard.models.super_resolution import SuperResolutionNet
from lightning_checkerboard.tasks._common import check_positive_float, heldout_images, stop_if_not_finite

__all__ = ["SR_LOSSES", "SuperResolutionTask"]

#: Pixel losses: mean absolute error (``l1``, as EDSR) or mean squared error (``l2``, as ESPCN).
SR_LOSSES = ("l1", "l2")


class SuperResolutionTask(pl.LightningModule):
    """Train a :class:`~lightning_checkerboard.models.SuperResolutionNet` on images degraded on the fly.

    Every training batch from :class:`~lightning_checkerboard.data.ImageDataModule` (``(B, C, S, S)`` in
    [-1, 1]) is mapped to [0, 1] as the high-resolution target ``hr``; its input is
    :meth:`degrade` ``(hr)``, the antialiased bicubic downsampling of
    :mod:`~lightning_checkerboard.data.degradation`, so no low-resolution copy of the data is stored
    and ``S`` must be divisible by ``scale`` (checked when training starts). The loss between the
    network's unclamped output and ``hr`` is logged as ``loss/l1`` or ``loss/l2``; a non-finite loss
    stops training and sets :attr:`diverged`.

    What the callbacks use: :meth:`super_resolve` (clamped outputs in eval mode), :meth:`degrade`,
    :meth:`bicubic` and :attr:`scale` (:class:`~lightning_checkerboard.callbacks.FidelityMetrics`);
    :meth:`metric_samples`, the super-resolved held-out images
    (:class:`~lightning_checkerboard.callbacks.ArtifactMetrics`); :meth:`sample`, ``bicubic | output |
    target`` triplets (:class:`~lightning_checkerboard.callbacks.SampleGrid`); :attr:`stage_names`.
    Held-out images come from the trainer's datamodule's ``heldout_images()``.

    Args:
        upsampler: one registered upsampler for every stage, or one per stage, coarse stage first.
        scale: 2, 4 or 8 (one upsampling stage per doubling).
        channels: image channels.
        features: width of the 5×5 feature layer (ESPCN: 64).
        hidden_channels: width of the 3×3 layer and between stages (ESPCN: 32).
        activation: ``"tanh"`` (ESPCN) or ``"relu"``.
        residual: the network adds a correction to the bicubic interpolation of its input.
        loss: ``"l1"`` or ``"l2"``.
        lr: Adam learning rate.
        num_fixed_samples: held-out images in the sample grids.
        upsampler_options: options for every stage (e.g. ``{"padding": "reflect"}``).

    Raises:
        ValueError: an unknown upsampler, activation or loss, an unsupported scale, non-positive
            widths or rate; in ``on_fit_start``, training images whose side is not divisible by
            ``scale`` or whose channels differ from ``channels``.

    Example:
        >>> task = SuperResolutionTask("pixel_shuffle_icnr", scale=2, features=8, hidden_channels=4)
        >>> hr = torch.rand(2, 3, 16, 16)
        >>> task.super_resolve(task.degrade(hr)).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        upsampler: str | Sequence[str] = "pixel_shuffle",
        *,
        scale: int = 2,
        channels: int = 3,
        features: int = 64,
        hidden_channels: int = 32,
        activation: str = "tanh",
        residual: bool = True,
        loss: str = "l1",
        lr: float = 1e-3,
        num_fixed_samples: int = 8,
        upsampler_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_choice(loss, "loss", SR_LOSSES)
        check_positive_float("lr", lr)
        check_positive_int(num_fixed_samples, "num_fixed_samples")
        if isinstance(upsampler, (list, tuple)):
            upsampler = ",".join(upsampler)  # a string keeps the saved hyperparameters readable
        self.save_hyperparameters()
        self.net = SuperResolutionNet(
            upsampler, scale=scale, channels=channels, features=features, hidden_channels=hidden_channels,
            activation=activation, residual=residual, upsampler_options=upsampler_options,
        )
        #: Why training stopped early, when the loss went non-finite; ``None`` otherwise.
        self.diverged: str | None = None
        #: Set by :class:`~lightning_checkerboard.callbacks.RunCheckpoint` when a signal stopped the run.
        self.interrupted: str | None = None

    @property
    def stage_names(self) -> list[str]:
        return self.net.stage_names

    @property
    def scale(self) -> int:
        """The super-resolution factor."""
        return self.net.scale

    def forward(self, lr: Tensor) -> Tensor:
        return self.net(lr)

    def degrade(self, hr: Tensor) -> Tensor:
        """Low-resolution inputs for high-resolution images in [0, 1] (:func:`~lightning_checkerboard.data.degradation.downscale`)."""
        return downscale(hr, self.scale)

    def bicubic(self, lr: Tensor) -> Tensor:
        """The bicubic baseline's output for ``lr`` (:func:`~lightning_checkerboard.data.degradation.bicubic_upscale`)."""
        return bicubic_upscale(lr, self.scale)

    @torch.no_grad()
    def super_resolve(self, lr: Tensor, batch_size: int = 16) -> Tensor:
        """Super-resolved images in [0, 1] (clamped), network in eval mode, in chunks of ``batch_size``.

        Shape:
            - Input: ``(N, C, h, w)`` in [0, 1], on any device.
            - Output: ``(N, C, scale·h, scale·w)`` float32 on the task's device.
        """
        was_training = self.net.training
        self.net.eval()
        try:
            dtype = next(self.net.parameters()).dtype
            out = [self.net(chunk.to(self.device, dtype)).float().clamp(0, 1) for chunk in lr.split(batch_size)]
        finally:
            self.net.train(was_training)
        return torch.cat(out)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The training loss between an (unclamped) output and its target."""
        return F.l1_loss(output, target) if self.hparams.loss == "l1" else F.mse_loss(output, target)

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        size, channels = getattr(datamodule, "image_size", None), getattr(datamodule, "channels", None)
        if isinstance(size, int):
            check_hr_size(size, size, self.scale)
        if isinstance(channels, int) and channels != self.hparams.channels:
            raise ValueError(f"the task has {self.hparams.channels} channels but the data has {channels}; "
                             f"build SuperResolutionTask(channels={channels}).")

    def training_step(self, batch: Tensor | Sequence[Tensor], batch_idx: int) -> Tensor | None:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        hr = ((images.float() + 1) / 2).clamp(0, 1)  # the data module serves [-1, 1]
        with torch.no_grad():
            lr = self.degrade(hr)
        loss = self.loss(self.net(lr.to(images.dtype)).float(), hr)
        if not stop_if_not_finite(self, "super-resolution loss", loss.detach()):
            return None  # Lightning skips the step: the weights stay those of the last good step
        self.log(f"loss/{self.hparams.loss}", loss.detach(), prog_bar=True)
        return loss

    def sample(self, hr: Tensor | None = None) -> Tensor:
        """``bicubic | output | target`` triplets, interleaved ``(3N, C, H, W)`` in [0, 1], for sample grids.

        Args:
            hr: ``(N, C, H, W)`` targets in [0, 1]; default: the first ``num_fixed_samples`` held-out
                images of the trainer's datamodule.
        """
        if hr is None:
            hr = heldout_images(self, self.hparams.num_fixed_samples)
        hr = hr.to(self.device, torch.float32)
        lr = self.degrade(hr)
        return torch.stack([self.bicubic(lr), self.super_resolve(lr), hr], dim=1).flatten(0, 1)

    def metric_samples(self, num: int, *, seed: int, batch_size: int, rank: int = 0, world_size: int = 1) -> Tensor:
        """This process's share of the first ``num`` held-out images, degraded and super-resolved (``seed`` unused)."""
        hr = heldout_images(self, num)[rank::world_size]
        return self.super_resolve(self.degrade(hr), batch_size)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)

"""The task's own loss on held-out images, as the quality metric of tasks without a reference set."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor
from typing_extensions import override

from lightning_checkerboard._lightning import pl
from lightning_checkerboard._validation import check_positive_int
from lightning_checkerboard.callbacks._logging import log_scalars
from lightning_checkerboard.callbacks._periodic import BaselineState, PeriodicCallback
from lightning_checkerboard.callbacks._sources import check_shares, diverging_together, heldout_images, require_finite

__all__ = ["HeldoutLoss", "SupportsLosses"]


@runtime_checkable
class SupportsLosses(Protocol):
    """A module whose loss terms on a batch of inputs in [0, 1] come as a mapping with a ``"total"``."""

    def losses(self, inputs: Tensor) -> dict[str, Tensor]: ...


class HeldoutLoss(BaselineState, PeriodicCallback):
    """Measure the module's loss on held-out images every ``every_n_steps`` iterations and at the end.

    For tasks whose outputs should differ from every reference image — style transfer keeps a photo's
    content and takes a painting's texture — the objective itself, on images the task never trained
    on, is the quality number (Johnson et al. 2016 report it so). Logged under ``metrics/``:
    ``heldout_loss`` (the total) and ``heldout_<term>`` for every other term; recorded as the same
    keys, ``heldout_loss`` being a quality metric that the leaderboard ranks by (lower is better).
    Before the first step it measures the untrained model the same way, as the run's
    :attr:`baseline`.

    The module provides ``losses(inputs) -> {"total": …, <term>: …}``
    (:class:`SupportsLosses`); the trainer's datamodule provides ``heldout_images()``. The first
    ``num_samples`` held-out images are measured in batches of ``batch_size`` with the module in eval
    mode; every term is averaged over batches weighted by their size, and processes sum their shares.
    Terms that normalise over a batch therefore depend on ``batch_size``: compare runs measured alike
    (the recipe records ``eval_samples``).

    Args:
        every_n_steps: interval in training iterations; 0 measures only at the end.
        num_samples: held-out images per measurement.
        batch_size: images per loss evaluation.

    Raises:
        ValueError: on a bad ``num_samples`` or ``batch_size``.
        TypeError: in ``setup``, if the module has no ``losses`` or the datamodule no ``heldout_images``.
    """

    def __init__(self, every_n_steps: int = 0, num_samples: int = 64, *, batch_size: int = 16) -> None:
        super().__init__(every_n_steps)
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.latest: dict[str, float] = {}

    def _state_settings(self) -> dict[str, Any]:
        return {"every_n_steps": self.every_n_steps, "num_samples": self.num_samples, "batch_size": self.batch_size}

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        name = type(self).__name__
        if not isinstance(pl_module, SupportsLosses):
            raise TypeError(f"{name} needs losses(inputs) -> {{'total': ..., ...}} on {type(pl_module).__name__}.")
        if not hasattr(getattr(trainer, "datamodule", None), "heldout_images"):
            raise TypeError(f"{name} needs a datamodule with heldout_images() -> images in [0, 1].")
        check_shares(name, self.num_samples, trainer.world_size)

    @torch.no_grad()
    def _losses(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        images = heldout_images(trainer, None, self.num_samples)[trainer.global_rank :: trainer.world_size]
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        sums: dict[str, Tensor] = {}
        was_training = pl_module.training
        pl_module.eval()
        try:
            with diverging_together(pl_module.device, trainer.world_size):
                for chunk in images.split(self.batch_size):
                    for key, value in pl_module.losses(chunk.to(pl_module.device, torch.float32)).items():
                        require_finite(value.detach(), f"the held-out {key} loss")
                        sums[key] = sums.get(key, 0.0) + value.detach().double() * len(chunk)
        finally:
            pl_module.train(was_training)
        count = torch.tensor(float(len(images)), dtype=torch.float64, device=pl_module.device)
        keys = sorted(sums)
        totals = torch.stack([sums[key].to(pl_module.device) for key in keys] + [count])
        totals = trainer.strategy.reduce(totals, reduce_op="sum")
        return {("heldout_loss" if key == "total" else f"heldout_{key}"): float(value / totals[-1])
                for key, value in zip(keys, totals[:-1])}

    @override
    def measure_baseline(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """The untrained model's held-out total loss."""
        return {"heldout_loss": self._losses(trainer, pl_module)["heldout_loss"]}

    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, final: bool = False) -> dict[str, float]:
        """Measure now; returns (and logs under ``metrics/``) the held-out loss terms."""
        self.latest = self._losses(trainer, pl_module)
        log_scalars(trainer, {f"metrics/{key}": value for key, value in self.latest.items()})
        return self.latest

"""Sample grids from a fixed noise batch: PNG files in the run directory and logged images."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torchvision.utils import make_grid, save_image

from lightning_checkerboard.callbacks._logging import iteration, log_images, run_directory
from lightning_checkerboard.callbacks._periodic import PeriodicCallback

__all__ = ["SampleGrid"]


class SampleGrid(PeriodicCallback):
    """Every ``every_n_steps`` steps and at the end, save and log a grid of samples from fixed noise.

    The module must have ``sample()`` returning images in [0, 1] from its fixed noise batch
    (:class:`~lightning_checkerboard.tasks.GANTask` does). Files: ``samples/step_000500.png`` and
    ``samples/final.png`` in the run directory (rank zero only).

    Args:
        every_n_steps: interval in training iterations (batches); 0 logs only at the end.
        nrow: images per grid row.
    """

    def __init__(self, every_n_steps: int = 500, nrow: int = 8) -> None:
        super().__init__(every_n_steps)
        if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
            raise ValueError(f"nrow must be a positive integer; got {nrow!r}.")
        self.nrow = nrow
        self.saved: list[str] = []

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, tag: str) -> None:
        if trainer.global_rank != 0:
            return
        images = pl_module.sample().cpu()
        grid = make_grid(images, nrow=self.nrow, padding=2, pad_value=1.0)
        path = run_directory(trainer) / "samples" / f"{tag}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        self.saved.append(str(path))
        array = (grid.permute(1, 2, 0).mul(255).round().clamp(0, 255).to(torch.uint8).numpy())
        log_images(trainer, "samples", [np.ascontiguousarray(array)], captions=[f"step {iteration(trainer)}"])

    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, final: bool = False) -> None:
        self._write(trainer, pl_module, "final" if final else f"step_{iteration(trainer):06d}")

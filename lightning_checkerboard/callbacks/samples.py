"""Sample grids from a fixed noise batch: PNG files in the run directory and logged images."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.utils import make_grid, save_image
from typing_extensions import override

from lightning_checkerboard._lightning import pl
from lightning_checkerboard._validation import check_non_negative_int, check_positive_int
from lightning_checkerboard.callbacks._logging import iteration, log_images, trainer_run_directory
from lightning_checkerboard.callbacks._periodic import PeriodicCallback
from lightning_checkerboard.callbacks._sources import check_image_source, check_sample_fn, draw_samples, require_finite
from lightning_checkerboard.callbacks.protocols import SampleFn

__all__ = ["SampleGrid"]


class SampleGrid(PeriodicCallback):
    """Every ``every_n_steps`` steps and at the end, save and log a grid of samples from fixed noise.

    The images come from ``sample_fn(num_samples, generator)`` with a generator seeded by ``seed``
    (see :class:`~lightning_checkerboard.callbacks.protocols.SampleFn`), else from the module's
    ``sample()`` over its fixed noise batch
    (:class:`~lightning_checkerboard.callbacks.protocols.SupportsSampleGrid`;
    :class:`~lightning_checkerboard.tasks.GANTask` has one); ``setup`` raises if there are neither.
    Files: ``samples/step_000500.png`` and ``samples/final.png`` in the run directory (rank zero only).

    Args:
        every_n_steps: interval in training iterations (batches); 0 logs only at the end.
        nrow: images per grid row.
        sample_fn: makes the images instead of the module's ``sample()``.
        num_samples: images per grid when ``sample_fn`` makes them.
        seed: the seed of ``sample_fn``'s generator, the same for every grid.

    Raises:
        ValueError: on a bad ``nrow``, ``num_samples`` or ``seed``.
        TypeError: if ``sample_fn`` is not callable; in ``setup``, if the module has no ``sample()``
            and there is no ``sample_fn``.
    """

    def __init__(
        self,
        every_n_steps: int = 500,
        nrow: int = 8,
        *,
        sample_fn: SampleFn | None = None,
        num_samples: int = 64,
        seed: int = 1234,
    ) -> None:
        super().__init__(every_n_steps)
        self.nrow = check_positive_int(nrow, "nrow")
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.seed = check_non_negative_int(seed, "seed")
        self.sample_fn = check_sample_fn(sample_fn)
        self.saved: list[str] = []

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            check_image_source(type(self).__name__, pl_module, self.sample_fn, "sample")

    def _images(self, pl_module: pl.LightningModule) -> torch.Tensor:
        if self.sample_fn is None:
            return require_finite(pl_module.sample(), "the sampled images")
        return draw_samples(self.sample_fn, self.num_samples, seed=self.seed, batch_size=self.num_samples,
                            module=pl_module)

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, tag: str) -> None:
        if trainer.global_rank != 0:
            return
        images = self._images(pl_module).cpu()
        grid = make_grid(images, nrow=self.nrow, padding=2, pad_value=1.0)
        path = trainer_run_directory(trainer) / "samples" / f"{tag}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        self.saved.append(str(path))
        array = (grid.permute(1, 2, 0).mul(255).round().clamp(0, 255).to(torch.uint8).numpy())
        log_images(trainer, "samples", [np.ascontiguousarray(array)], captions=[f"step {iteration(trainer)}"])

    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, final: bool = False) -> None:
        self._write(trainer, pl_module, "final" if final else f"step_{iteration(trainer):06d}")

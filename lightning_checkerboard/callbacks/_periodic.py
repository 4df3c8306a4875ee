"""The shared schedule of the measuring callbacks: every N iterations and once at the end."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from typing_extensions import override

from lightning_checkerboard._progress import training_iteration

__all__ = ["PeriodicCallback", "sync_buffers_from_rank_zero"]


def sync_buffers_from_rank_zero(trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
    """Give every process rank zero's buffers (BatchNorm running statistics).

    DDP broadcasts buffers before each training forward, but every process then updates its own
    from its own batch; a measurement in eval mode would use slightly different statistics on each
    process. After this, all processes measure the model that rank zero checkpoints.
    """
    if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        for buffer in pl_module.buffers():
            torch.distributed.broadcast(buffer.data, src=0)


class PeriodicCallback(Callback):
    """Calls :meth:`measure` every ``every_n_steps`` training iterations (0: never) and at the end.

    Before each call, every process takes rank zero's buffers (:func:`sync_buffers_from_rank_zero`).
    """

    def __init__(self, every_n_steps: int) -> None:
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 0:
            raise ValueError(f"every_n_steps must be a non-negative integer; got {every_n_steps!r}.")
        self.every_n_steps = every_n_steps

    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, final: bool = False) -> object:
        """Measure now; ``final`` is true for the call at the end of training."""
        raise NotImplementedError

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = training_iteration(trainer)
        last = trainer.max_steps is not None and 0 < trainer.max_steps <= trainer.global_step
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0 and not last:
            sync_buffers_from_rank_zero(trainer, pl_module)
            self.measure(trainer, pl_module)  # the last step is measured once, by on_train_end

    @override
    def on_train_end(self, trainer, pl_module) -> None:
        sync_buffers_from_rank_zero(trainer, pl_module)
        self.measure(trainer, pl_module, final=True)

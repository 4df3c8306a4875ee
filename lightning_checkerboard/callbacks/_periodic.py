"""The shared schedule of the measuring callbacks: every N iterations and once at the end."""

from __future__ import annotations

from typing import Any

import torch
from typing_extensions import override

from lightning_checkerboard._lightning import Callback, pl
from lightning_checkerboard._progress import activity, training_iteration
from lightning_checkerboard._validation import check_non_negative_int
from lightning_checkerboard.callbacks._sources import ModelDiverged

__all__ = ["BaselineState", "PeriodicCallback", "mark_diverged", "sync_buffers_from_rank_zero"]


def sync_buffers_from_rank_zero(trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
    """Give every process rank zero's buffers (BatchNorm running statistics).

    DDP broadcasts buffers before each training forward, but every process then updates its own
    from its own batch; a measurement in eval mode would use slightly different statistics on each
    process. After this, all processes measure the model that rank zero checkpoints.
    """
    if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        for buffer in pl_module.buffers():
            torch.distributed.broadcast(buffer.data, src=0)


def mark_diverged(trainer: pl.Trainer, pl_module: pl.LightningModule, reason: ModelDiverged) -> None:
    """Stop the run as ``diverged`` (set the module's ``diverged``, which the record reads; keep an earlier one)."""
    if not getattr(pl_module, "diverged", None):
        pl_module.diverged = f"{reason} at iteration {training_iteration(trainer)}"
    trainer.should_stop = True


class PeriodicCallback(Callback):
    """Calls :meth:`measure` every ``every_n_steps`` training iterations (0: never) and at the end.

    Before each call, every process takes rank zero's buffers (:func:`sync_buffers_from_rank_zero`).
    When training starts from iteration 0, :meth:`measure_baseline` measures the model before its
    first step; the result stays in :attr:`baseline` for the result record, which the leaderboard
    compares the final numbers with. Subclasses that measure one keep it in checkpoints through
    :class:`BaselineState`, so a resumed run keeps it.

    A measurement that finds the model's output non-finite
    (:class:`~lightning_checkerboard.callbacks._sources.ModelDiverged`, e.g. after a learning rate of
    1e308 sent the weights to ±1e308) is skipped, and the run stops as ``diverged``
    (:func:`mark_diverged`) rather than failing; the last checkpoint is then not overwritten.
    """

    def __init__(self, every_n_steps: int) -> None:
        self.every_n_steps = check_non_negative_int(every_n_steps, "every_n_steps")
        #: Quality metrics of the model before training, by record key; empty until measured.
        self.baseline: dict[str, Any] = {}

    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *, final: bool = False) -> object:
        """Measure now; ``final`` is true for the call at the end of training."""
        raise NotImplementedError

    def _activity_name(self) -> str:
        """How progress lines name this callback's measurement: ``"ArtifactMetrics measurement (256 samples)"``."""
        count = getattr(self, "num_samples", None)
        return f"{type(self).__name__} measurement" + (f" ({count} samples)" if isinstance(count, int) else "")

    def measure_baseline(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """Quality metrics of the untrained model, without logging them; none by default."""
        return {}

    @override
    def on_train_start(self, trainer, pl_module) -> None:
        if training_iteration(trainer) == 0 and not self.baseline:
            sync_buffers_from_rank_zero(trainer, pl_module)
            try:
                with activity(f"{self._activity_name()} of the untrained model"):
                    self.baseline = self.measure_baseline(trainer, pl_module)
            except ModelDiverged as reason:
                mark_diverged(trainer, pl_module, reason)

    def _measure_unless_diverged(self, trainer: pl.Trainer, pl_module: pl.LightningModule, final: bool) -> None:
        sync_buffers_from_rank_zero(trainer, pl_module)
        try:
            with activity(f"{'final ' if final else ''}{self._activity_name()}"):
                self.measure(trainer, pl_module, final=final)
        except ModelDiverged as reason:
            mark_diverged(trainer, pl_module, reason)

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = training_iteration(trainer)
        last = trainer.max_steps is not None and 0 < trainer.max_steps <= trainer.global_step
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0 and not last:
            self._measure_unless_diverged(trainer, pl_module, final=False)  # the last step: on_train_end

    @override
    def on_train_end(self, trainer, pl_module) -> None:
        self._measure_unless_diverged(trainer, pl_module, final=True)



class BaselineState:
    """Mixin: save :attr:`PeriodicCallback.baseline` in checkpoints under a key made of the settings.

    Lightning keys a stateful callback's checkpoint entry by :attr:`state_key`; keying by the
    settings in :meth:`_state_settings` lets a trainer hold two such callbacks measured differently.
    """

    baseline: dict[str, Any]

    def _state_settings(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def state_key(self) -> str:
        return self._generate_state_key(**self._state_settings())  # type: ignore[attr-defined]

    def state_dict(self) -> dict[str, Any]:
        return {"baseline": dict(self.baseline)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.baseline = dict(state_dict.get("baseline", {}))

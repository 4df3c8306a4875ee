"""A resumable ``last.ckpt``: saved atomically every N iterations, at the end, and on SIGINT/SIGTERM."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info
from typing_extensions import override

from lightning_checkerboard._progress import training_iteration

__all__ = ["RunCheckpoint"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunCheckpoint(Callback):
    """Keep ``<dirpath>/last.ckpt`` resumable, and turn Ctrl-C / SIGTERM into a clean stop.

    The checkpoint is written to a temporary file and renamed, so a kill during the write leaves
    the previous checkpoint intact. It is saved every ``every_n_steps`` iterations and when
    training ends normally — not when it diverges, so the last good weights survive.

    On the first SIGINT or SIGTERM the run finishes the current iteration, saves the checkpoint,
    sets ``pl_module.interrupted`` (which the result record reports as ``interrupted``) and stops;
    a second signal stops at once. Because the data stream and the training noise are functions of
    the iteration, resuming from that checkpoint continues the run bit for bit.

    Args:
        dirpath: directory of ``last.ckpt``.
        every_n_steps: save interval in iterations (0: only at the end and on interrupt).
    """

    def __init__(self, dirpath: str | os.PathLike, every_n_steps: int = 0) -> None:
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 0:
            raise ValueError(f"every_n_steps must be a non-negative integer; got {every_n_steps!r}.")
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def save(self, trainer: pl.Trainer) -> None:
        """Write ``last.ckpt`` atomically (every rank calls it; Lightning writes on rank zero)."""
        tmp = self.dirpath / ".last.ckpt.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # optimiser and loop state too: resumable
        if trainer.global_rank == 0:
            os.replace(tmp, self.last_path)
        trainer.strategy.barrier("run_checkpoint")

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.requested is not None:  # second signal: the user means it
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        rank_zero_info(f"{self.requested} received: stopping after this iteration and saving a checkpoint "
                       "(send it again to stop at once).")

    @override
    def on_train_start(self, trainer, pl_module) -> None:
        # Installed here, after Lightning has set up its own signal handling (which would turn
        # SIGTERM into an abrupt exit), and undone in on_train_end before Lightning restores its own.
        self.dirpath.mkdir(parents=True, exist_ok=True)
        self.requested = None
        try:
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: keep the default handlers
            self._previous.clear()

    def _restore_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = training_iteration(trainer)
        stop = self.requested is not None
        if trainer.world_size > 1:  # a signal that reached one process stops them all, at one step
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            self.save(trainer)
            pl_module.interrupted = f"{self.requested or 'signal'} at iteration {step}; resume with --resume"
            trainer.should_stop = True
        elif self.every_n_steps and step % self.every_n_steps == 0 and not getattr(pl_module, "diverged", None):
            self.save(trainer)

    @override
    def on_train_end(self, trainer, pl_module) -> None:
        if not getattr(pl_module, "diverged", None) and not getattr(pl_module, "interrupted", None):
            self.save(trainer)
        self._restore_handlers()

    @override
    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore_handlers()

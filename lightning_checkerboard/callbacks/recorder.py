"""The result record of a run: written when training starts, finishes, fails or is interrupted."""

from __future__ import annotations

import time
from typing import Any

from typing_extensions import override

from lightning_checkerboard._lightning import Callback, WandbLogger, pl, rank_zero_warn
from lightning_checkerboard.callbacks._logging import iteration, trainer_run_directory
from lightning_checkerboard.records import ResultRecord, utc_now, write_record

__all__ = ["ResultRecorder"]


#: What the baseline of a record is: the metric callbacks measure the model before its first step.
BASELINE_KIND = "model before training"


class ResultRecorder(Callback):
    """Keep ``result.json`` in the run directory up to date, and mirror the final numbers to W&B.

    The record is written with status ``running`` when training starts, so even a run killed
    without warning leaves one; at the end it gets ``finished`` (or ``diverged`` when the module
    set ``diverged``), on an exception ``failed`` or, for Ctrl-C / SIGTERM, ``interrupted``, with
    the message. Metrics and protocol come from the other callbacks' ``latest`` and ``protocol``
    attributes (:class:`ArtifactMetrics`, :class:`FIDCallback`), so adding a metric callback adds
    its numbers to the record; their ``baseline`` (the same quality metrics before the first step)
    becomes the record's ``baseline``. Only rank zero writes.

    Args:
        record: the record to keep, filled in by the recipe with what it knows before training
            (task, dataset, upsampler, seed, config…).
        batch_size: images per training batch, for throughput.
    """

    def __init__(self, record: ResultRecord, batch_size: int) -> None:
        self.record = record
        self.batch_size = batch_size
        self._train_seconds = 0.0
        self._batch_start: float | None = None
        self._wall_start = time.perf_counter()
        self.path = None

    def _collect(self, trainer: pl.Trainer) -> None:
        record = self.record
        record.steps = iteration(trainer)
        for callback in trainer.callbacks:
            if callback is self:
                continue
            record.metrics.update(getattr(callback, "latest", None) or {})
            record.protocol.update(getattr(callback, "protocol", None) or {})
            record.baseline.update(getattr(callback, "baseline", None) or {})
        if record.baseline:
            record.baseline.setdefault("kind", BASELINE_KIND)
        wall = time.perf_counter() - self._wall_start
        record.throughput = {
            "train_seconds": round(self._train_seconds, 3),
            "wall_seconds": round(wall, 3),
            "images_per_second": round(record.steps * self.batch_size / self._train_seconds, 2)
            if self._train_seconds > 0
            else None,
        }

    def _write(self, trainer: pl.Trainer) -> None:
        if trainer.global_rank != 0:
            return
        try:
            self.path = write_record(self.record, trainer_run_directory(trainer))
        except OSError as err:  # losing the record is bad; crashing the run on top of it is worse
            rank_zero_warn(f"could not write the result record to {trainer_run_directory(trainer)}: {err}")

    def _finish(self, trainer: pl.Trainer, status: str, message: str = "") -> None:
        self._collect(trainer)
        self.record.status, self.record.message, self.record.finished_at = status, message, utc_now()
        self._write(trainer)
        if trainer.global_rank == 0:
            self._mirror_to_wandb(trainer)

    def _mirror_to_wandb(self, trainer: pl.Trainer) -> None:
        summary: dict[str, Any] = {f"final/{k}": v for k, v in self.record.metrics.items() if v is not None}
        summary.update({"status": self.record.status, "steps": self.record.steps})
        summary.update({f"throughput/{k}": v for k, v in self.record.throughput.items() if v is not None})
        summary.update({f"protocol/{k}": v for k, v in self.record.protocol.items() if v is not None})
        summary.update({f"baseline/{k}": v for k, v in self.record.baseline.items() if v is not None})
        for logger in trainer.loggers:
            if not isinstance(logger, WandbLogger):
                continue
            try:
                logger.experiment.summary.update(summary)
            except Exception as err:  # W&B trouble must not lose the local record (already written)
                rank_zero_warn(f"could not update the W&B summary ({err}); the local record has the numbers.")

    @override
    def on_fit_start(self, trainer, pl_module) -> None:
        self.record.status = "running"
        self._write(trainer)

    @override
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_start = time.perf_counter()

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._batch_start is not None:
            self._train_seconds += time.perf_counter() - self._batch_start
            self._batch_start = None

    @override
    def on_train_end(self, trainer, pl_module) -> None:
        # Runs after the metric callbacks' on_train_end: the recipe puts this callback last.
        diverged = getattr(pl_module, "diverged", None)
        interrupted = getattr(pl_module, "interrupted", None)
        if diverged:
            self._finish(trainer, "diverged", diverged)
        elif interrupted:
            self._finish(trainer, "interrupted", interrupted)
        else:
            self._finish(trainer, "finished")

    @override
    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) or type(exception).__name__ == "SIGTERMException":
            self._finish(trainer, "interrupted", "interrupted (Ctrl-C or SIGTERM)")
        else:
            self._finish(trainer, "failed", f"{type(exception).__name__}: {exception}")

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"train_seconds": self._train_seconds}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._train_seconds = state_dict.get("train_seconds", 0.0)

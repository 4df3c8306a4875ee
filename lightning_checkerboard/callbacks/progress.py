"""Progress lines for training runs whose output is not a terminal (a log file, a pipe, a batch job)."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from typing_extensions import override

from lightning_checkerboard._lightning import Callback, pl
from lightning_checkerboard._progress import ProgressLines, format_duration, progress_seconds, training_iteration
from lightning_checkerboard._validation import check_positive_int

__all__ = ["TrainingProgress"]

# The measured numbers a line shows, in this order, when some callback has them in its ``latest``.
_SHOWN = ("checkerboard", "swd", "fid", "psnr", "heldout_loss")


class TrainingProgress(Callback):
    """Every ``seconds`` of wall time, print one line: iteration, images/s, time left, the latest numbers.

    Lightning's progress bar shows only on a terminal; with output in a file or a pipe a run would
    say nothing between its headline and its end. This callback prints, on rank zero only,
    ``progress: iteration 120/400 (30 %), 85 images/s, about 2 min 10 s left; loss/generator 0.93, …``
    to stdout. While a measurement runs for longer than the interval (thousands of evaluation
    samples, the final FID), the line names it and says how long it has run.

    Args:
        batch_size: images per iteration on each process (for images/s).
        max_iterations: the run's length in iterations, for the percentage and the time left.
        seconds: the interval; default ``$LIGHTNING_CHECKERBOARD_PROGRESS_SECONDS`` or 60 (0: no lines).
        enabled: print lines at all; default: when stderr is not a terminal (where the bar is off).
        stream: where lines go (default stdout).

    Raises:
        ValueError: a bad ``batch_size``, ``max_iterations`` or ``seconds`` (or environment variable).
    """

    def __init__(self, batch_size: int, max_iterations: int | None = None, *, seconds: float | None = None,
                 enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.max_iterations = None if max_iterations is None else check_positive_int(max_iterations, "max_iterations")
        seconds = progress_seconds() if seconds is None else seconds
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                or seconds < 0:
            raise ValueError(f"seconds must be a number >= 0 (0: no progress lines); got {seconds!r}.")
        self.seconds = float(seconds)
        self.enabled = (not sys.stderr.isatty()) if enabled is None else bool(enabled)
        self.stream = stream
        self._lines: ProgressLines | None = None
        self._numbers: dict[str, float] = {}
        self._iteration = self._first = self._previous = 0
        self._start = self._previous_time = 0.0
        self._world = 1

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Before every callback's on_train_start: the untrained model's measurements are reported too.
        if not self.enabled or self.seconds <= 0 or trainer.global_rank != 0:
            return
        self._world = trainer.world_size
        self._restart(trainer)
        self._lines = ProgressLines(self._describe, self.seconds, stream=self.stream)
        self._lines.start()

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._lines is not None:
            self._restart(trainer)  # a resumed run's iteration is known now; rates leave the baseline out

    def _restart(self, trainer: pl.Trainer) -> None:
        self._iteration = self._first = self._previous = training_iteration(trainer)
        self._start = self._previous_time = time.monotonic()

    @override
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._lines is None:
            return
        self._iteration = training_iteration(trainer)
        if self._lines.due():
            self._numbers = _latest_numbers(trainer)  # read on this thread: a metric may be a GPU tensor
            self._lines.update()

    def _describe(self) -> str:
        now, done = time.monotonic(), self._iteration
        window = now - self._previous_time
        rate = (done - self._previous) * self.batch_size * self._world / window if window > 0 else 0.0
        self._previous, self._previous_time = done, now
        parts = [f"iteration {done}" + (f"/{self.max_iterations} ({100 * done / self.max_iterations:.0f} %)"
                                        if self.max_iterations else ""), f"{rate:.1f} images/s"]
        if self.max_iterations and done > self._first:
            per_iteration = (now - self._start) / (done - self._first)
            parts.append(f"about {format_duration(per_iteration * max(self.max_iterations - done, 0))} left")
        numbers = ", ".join(f"{key} {value:.4g}" for key, value in self._numbers.items())
        return ", ".join(parts) + (f"; {numbers}" if numbers else "")

    def _stop(self) -> None:
        if self._lines is not None:
            self._lines.stop()
            self._lines = None

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop()

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._stop()

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._stop()


def _latest_numbers(trainer: pl.Trainer) -> dict[str, float]:
    """The losses the module logged and the latest measured numbers of the callbacks, as finite floats."""
    numbers: dict[str, float] = {}
    for key, value in sorted(trainer.callback_metrics.items()):
        if key.startswith("loss/"):
            numbers[key] = float(value)
    for callback in trainer.callbacks:
        latest = getattr(callback, "latest", None)
        if isinstance(latest, dict):
            numbers.update({key: float(latest[key]) for key in _SHOWN if isinstance(latest.get(key), (int, float))})
    return {key: value for key, value in numbers.items() if math.isfinite(value)}

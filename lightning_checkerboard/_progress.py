"""Progress: training iterations whatever the number of optimisers, and progress lines for logs.

Lightning's progress bar and ``tqdm`` show only on a terminal. When output goes to a file or a pipe,
long work prints one line at a fixed interval of wall time instead (:class:`ProgressLines`), so a log
shows signs of life: iterations or images done, the rate, the time left, the latest numbers. The
interval is ``$LIGHTNING_CHECKERBOARD_PROGRESS_SECONDS`` (default 60 s; 0 turns the lines off).

Work that runs for a while inside a step (a measurement of thousands of samples, the final FID) is
marked with :func:`activity`; a training run's progress lines name it while it runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

__all__ = [
    "DEFAULT_PROGRESS_SECONDS",
    "PROGRESS_ENV",
    "ProgressLines",
    "activity",
    "current_activity",
    "format_duration",
    "progress_seconds",
    "training_iteration",
]

#: The environment variable that sets the interval between progress lines, in seconds.
PROGRESS_ENV = "LIGHTNING_CHECKERBOARD_PROGRESS_SECONDS"
#: The interval without it.
DEFAULT_PROGRESS_SECONDS = 60.0


def training_iteration(trainer) -> int:
    """Training iterations (batches) completed by ``trainer``.

    Lightning's ``global_step`` counts optimiser steps, two per batch for a GAN; a module declares
    how many it takes per batch with ``optimizer_steps_per_iteration`` (default 1).
    """
    module = getattr(trainer, "lightning_module", None)
    per = getattr(module, "optimizer_steps_per_iteration", 1)
    return trainer.global_step // per


def progress_seconds() -> float:
    """Seconds between progress lines: ``$LIGHTNING_CHECKERBOARD_PROGRESS_SECONDS``, else 60; 0 means none.

    Raises:
        ValueError: the variable is set to something other than a non-negative number.
    """
    text = os.environ.get(PROGRESS_ENV, "").strip()
    if not text:
        return DEFAULT_PROGRESS_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{PROGRESS_ENV} must be a number of seconds >= 0 (0: no progress lines); got {text[:40]!r}.")
    return value


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"3 min 20 s"``, ``"2 h 05 min"``.

    Example:
        >>> format_duration(4.4), format_duration(200), format_duration(7500)
        ('4 s', '3 min 20 s', '2 h 05 min')
    """
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


_activities: list[tuple[str, float]] = []
_activities_lock = threading.Lock()


@contextlib.contextmanager
def activity(label: str) -> Iterator[None]:
    """Mark the work inside as ``label`` (``"measuring ArtifactMetrics (4096 samples)"``) for progress lines."""
    entry = (label, time.monotonic())
    with _activities_lock:
        _activities.append(entry)
    try:
        yield
    finally:
        with _activities_lock:
            _activities.remove(entry)


def current_activity() -> tuple[str, float] | None:
    """The innermost :func:`activity` running now and its ``time.monotonic()`` start, else ``None``."""
    with _activities_lock:
        return _activities[-1] if _activities else None


class ProgressLines:
    """Print a line at most every ``seconds`` of wall time, from :meth:`update` and, while work is in an
    :func:`activity`, from a background thread that says what is running and for how long.

    Args:
        describe: makes the line (without the leading ``"progress: "``); called with the lock held.
        seconds: the interval; 0 prints nothing.
        stream: where lines go (default: ``sys.stdout`` at the time of printing).
    """

    def __init__(self, describe: Callable[[], str], seconds: float, *, stream: TextIO | None = None) -> None:
        self.describe, self.seconds, self.stream = describe, float(seconds), stream
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _print(self, text: str) -> None:
        print(f"progress: {text}", file=self.stream or sys.stdout, flush=True)
        self._last = time.monotonic()

    def due(self) -> bool:
        """Whether the next :meth:`update` prints (``seconds`` have passed since the last line)."""
        return self.seconds > 0 and time.monotonic() - self._last >= self.seconds

    def update(self) -> None:
        """Print a line if ``seconds`` have passed since the last one (call it often; it is cheap)."""
        if self.due():
            with self._lock:
                self._print(self.describe())

    def start(self) -> None:
        """Start the interval now, and the thread that reports long :func:`activity` work."""
        self._last = time.monotonic()
        if self.seconds > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="progress-lines", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(min(self.seconds, 1.0)):
            running = current_activity()
            if running is None or time.monotonic() - self._last < self.seconds:
                continue
            label, started = running
            with self._lock:
                if not self._stop.is_set():
                    self._print(f"{self.describe()}; {label} for {format_duration(time.monotonic() - started)}")

"""Decode many images on every available core, skipping or stopping on unreadable ones.

A source hands out *chunks* (:class:`~.folder.FileChunk`, :class:`~.hub.HubChunk`): picklable
groups of undecoded images that a worker opens, decodes and resizes by itself, so only small
``uint8`` arrays travel back. Worker processes are forked where the platform allows it (a fresh
interpreter would have to import torch first); elsewhere threads do the work, since PIL releases
the GIL while it decodes and resamples.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from lightning_checkerboard.data.errors import DatasetError
from lightning_checkerboard._progress import DEFAULT_PROGRESS_SECONDS, ProgressLines, format_duration, progress_seconds
from lightning_checkerboard._untrusted import UntrustedFileError
from lightning_checkerboard._validation import check_int
from lightning_checkerboard.data.images import RESIZE_MAX_PIXELS, decode_native, max_pixels_for, resize_square

__all__ = [
    "CORRUPT_POLICIES",
    "POOLS",
    "ChunkResult",
    "DecodeReport",
    "available_workers",
    "check_workers",
    "decode_chunk",
    "max_workers",
    "decode_into",
    "unreadable_error",
    "warn_skipped",
]

#: Values of the ``corrupt`` argument.
CORRUPT_POLICIES = ("skip", "error")
#: Ways to run the decoders in parallel: ``"process"`` (forked workers) or ``"thread"``.
POOLS = ("process", "thread")
# PIL raises OSError for truncated/unknown data, ValueError/SyntaxError for some malformed headers.
READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


@dataclass
class DecodeReport:
    """What a decoding pass skipped: the names of unreadable images (files or row numbers)."""

    skipped: list[str] = field(default_factory=list)


@dataclass
class ChunkResult:
    """One decoded chunk.

    Attributes:
        images: ``uint8`` ``(n, C, S, S)``; ``C`` is 3 if any image of the chunk is colour (greyscale
            ones repeated), else 1. Rows of unreadable images are zero.
        failures: ``(position in the chunk, "ErrorType: first line of the message")`` per unreadable image.
    """

    images: np.ndarray
    failures: list[tuple[int, str]]


def available_workers() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: Workers allowed on any machine, however few its cores (a small CI runner can still test two).
MIN_WORKER_CAP = 4


def max_workers() -> int:
    """The most parallel workers a data pass may start: the machine's CPU count, or 4 when it has fewer."""
    return max(MIN_WORKER_CAP, os.cpu_count() or 1)


def check_workers(value: object, name: str, minimum: int = 0) -> int:
    """``value`` if it is an integer from ``minimum`` to :func:`max_workers`, else a one-line ``ValueError``.

    More workers than cores only adds processes: ``100000`` once started hundreds before the machine
    refused more.
    """
    cap = max_workers()
    try:
        return check_int(value, name, minimum=minimum, maximum=cap)
    except ValueError:
        raise ValueError(f"{name} must be an integer from {minimum} to {cap} (the CPU count, at least "
                         f"{MIN_WORKER_CAP}); got {value!r}.") from None


def decode_chunk(chunk, image_size: int) -> ChunkResult:
    """Decode, center-crop and resize every image of ``chunk`` (see :func:`~.images.resize_square`).

    An image whose header claims more than :func:`~.images.max_pixels_for` ``(image_size,
    RESIZE_MAX_PIXELS)`` pixels is unreadable here (a failure, under the ``corrupt`` policy): it is
    refused from its header, before any pixel is decoded.

    Args:
        chunk: a source's chunk: ``labels`` and ``open(k)`` returning a PIL image (not yet decoded).
        image_size: output side in pixels.
    """
    arrays, failures = [], []
    limit = max_pixels_for(image_size, RESIZE_MAX_PIXELS)
    for k in range(len(chunk.labels)):
        try:
            with chunk.open(k) as image:
                width, height = image.size
                if width * height > limit:
                    raise UntrustedFileError(f"{width}×{height} pixels, more than the {limit} allowed")
                arrays.append(resize_square(decode_native(image), image_size))
        except READ_ERRORS as exc:
            failures.append((k, _describe(exc, chunk.labels[k])))
            arrays.append(None)
    channels = max((a.shape[0] for a in arrays if a is not None), default=1)
    images = np.zeros((len(arrays), channels, image_size, image_size), dtype=np.uint8)
    for k, array in enumerate(arrays):
        if array is not None:
            images[k] = array  # broadcasts a greyscale image over three channels
    return ChunkResult(images, failures)


# In a forked worker: the caller's ``out`` when it is a writable memory map. The worker inherits the
# map, so it writes its rows straight into it and only the failures travel back.
_SHARED_OUT: np.ndarray | None = None


def _share(out: np.ndarray | None) -> None:
    global _SHARED_OUT
    _SHARED_OUT = out


def _decode_rows(chunk, image_size: int, start: int | None) -> ChunkResult:
    result = decode_chunk(chunk, image_size)
    if start is None or _SHARED_OUT is None:
        return result
    _SHARED_OUT[start : start + len(result.images)] = result.images
    return ChunkResult(result.images[:, :, :0, :0], result.failures)  # written: count and channels only


def _pool(kind: str, workers: int, out: np.ndarray) -> tuple[Executor, bool]:
    """The executor, and whether its workers write into ``out`` themselves."""
    if kind == "process" and "fork" in multiprocessing.get_all_start_methods():
        shared = isinstance(out, np.memmap) and out.mode in ("r+", "w+")
        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_share,
                                       initargs=(out if shared else None,))
        return executor, shared
    return ThreadPoolExecutor(workers), False


def decode_into(
    source,
    indices: Sequence[int],
    image_size: int,
    out: np.ndarray,
    *,
    stop_at: Callable[[int], bool] = lambda position: False,
    workers: int | None = None,
    pool: str = "process",
) -> tuple[bool, list[tuple[int, str, str]]]:
    """Decode the images ``indices`` of ``source`` into the rows of ``out``, in parallel.

    Args:
        source: has ``chunk(indices)`` and ``dataset`` (the name, for messages).
        indices: which images, in the order of ``out``'s rows.
        image_size: output side in pixels.
        out: ``uint8`` ``(len(indices), 3, S, S)`` to fill (a memory map or an array); greyscale
            images are repeated over the three channels, unreadable ones left as they are. Worker
            processes write into a writable memory map directly; other arrays are filled here.
        stop_at: called with the row of each unreadable image; ``True`` raises at once (and cancels
            the pending work) instead of going on.
        workers: parallel decoders, at most :func:`max_workers`; default :func:`available_workers`. 1
            decodes in this thread.
        pool: ``"process"`` or ``"thread"``, see :data:`POOLS`.

    Returns:
        Whether any image is colour, and ``(row, label, reason)`` for every unreadable image.

    Raises:
        DatasetError: for the first unreadable image for which ``stop_at`` says so.
        ValueError: ``workers`` outside 1 .. :func:`max_workers`.
    """
    workers = available_workers() if workers is None else check_workers(workers, "decode_workers", 1)
    size = max(16, min(256, len(indices) // (workers * 8) or 1))
    starts = range(0, len(indices), size)
    chunks = (source.chunk(indices[start : start + size]) for start in starts)
    progress = _Progress(len(indices), f"Decoding {source.dataset}")
    colour, failures = False, []

    def take(start: int, chunk, result: ChunkResult) -> None:
        nonlocal colour
        if result.images.shape[-1]:  # not written by the worker already
            out[start : start + len(result.images)] = result.images
        colour = colour or result.images.shape[1] == 3
        for k, reason in result.failures:
            failures.append((start + k, chunk.labels[k], reason))
            if stop_at(start + k):
                raise unreadable_error(source.dataset, chunk.labels[k], reason)
        progress.update(len(result.images))

    if workers == 1 or len(starts) < 2:
        for start, chunk in zip(starts, chunks):
            take(start, chunk, decode_chunk(chunk, image_size))
    else:
        executor, shared = _pool(pool, min(workers, len(starts)), out)
        with executor:
            # A bounded window of chunks in flight: the pending inputs never hold the whole dataset.
            window, pending = 4 * workers, []
            try:
                for start, chunk in zip(starts, chunks):
                    task = executor.submit(_decode_rows, chunk, image_size, start if shared else None)
                    pending.append((start, chunk, task))
                    if len(pending) >= window:
                        take(*_finish(pending.pop(0)))
                while pending:
                    take(*_finish(pending.pop(0)))
            except BaseException:
                for *_, future in pending:
                    future.cancel()
                raise
    progress.close(workers if len(starts) > 1 else 1, pool)
    return colour, failures


def _finish(item):
    start, chunk, future = item
    return start, chunk, future.result()


class _Progress:
    """A bar when stderr is a terminal, else a progress line every ``$LIGHTNING_CHECKERBOARD_PROGRESS_SECONDS``;
    one summary line at the end either way."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.start = total, label, time.perf_counter()
        self.done = 0
        self.bar = self.lines = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=label, unit="img", leave=False)
        else:
            try:
                seconds = progress_seconds()
            except ValueError:
                seconds = DEFAULT_PROGRESS_SECONDS  # the run that reads this variable says what is wrong with it
            self.lines = ProgressLines(self._describe, seconds, stream=sys.stderr)

    def _describe(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = f", about {format_duration((self.total - self.done) / rate)} left" if rate > 0 else ""
        return f"{self.label}: {self.done} of {self.total} images, {rate:.0f} images/s{left}"

    def update(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
        if self.lines is not None:
            self.lines.update()

    def close(self, workers: int, pool: str) -> None:
        if self.bar is not None:
            self.bar.close()
        seconds = time.perf_counter() - self.start
        how = f"{workers} {pool} workers" if workers > 1 else "1 worker"
        print(f"{self.label}: {self.total} images in {seconds:.1f} s "
              f"({self.total / max(seconds, 1e-9):.0f} images/s, {how})", file=sys.stderr)


def unreadable_error(dataset: str, label: str, reason: str) -> DatasetError:
    """The error for an unreadable image under ``corrupt="error"``."""
    return DatasetError(
        f"Dataset {dataset!r}: cannot read image {label} ({reason}); remove or repair it, or pass "
        "corrupt='skip' to skip unreadable images."
    )


def warn_skipped(dataset: str, report: DecodeReport) -> None:
    """Warn once about the images that were skipped."""
    if report.skipped:
        shown = ", ".join(report.skipped[:3]) + (", ..." if len(report.skipped) > 3 else "")
        warnings.warn(
            f"Dataset {dataset!r}: skipped {len(report.skipped)} unreadable image(s) ({shown}); "
            "pass corrupt='error' to stop on them instead.",
            UserWarning,
            stacklevel=3,
        )


def _describe(exc: BaseException, label: str) -> str:
    """``"ErrorType: first line"``; a refusal of the trust checks is its reason alone, without the path."""
    if isinstance(exc, UntrustedFileError):
        return _first_line(exc).removeprefix(f"{label}: ").rstrip(".")
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"

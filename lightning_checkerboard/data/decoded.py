"""Folder and Hub sources: decoded once into the cache, into memory, or on demand (streaming).

With the data cache (the default), every image of each split used is decoded once, in parallel,
into a memory-mapped file (:mod:`~.cache`), and training reads batches from it; the held-out images
are copied into memory. Without the cache, the selected images are decoded in parallel into memory,
or, when they would take more than a quarter of the machine's memory (or ``streaming=True``), the
held-out images are decoded and training images are decoded batch by batch (:class:`~.rows.LazyRows`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lightning_checkerboard.data.cache import CachedImages, ensure_cached
from lightning_checkerboard.data.decode import DecodeReport, decode_into, unreadable_error, warn_skipped
from lightning_checkerboard.data.errors import DatasetError
from lightning_checkerboard.data.images import convert_channels
from lightning_checkerboard.data.rows import ImageRows, LazyRows, MappedRows, TensorRows

__all__ = ["DecodeOptions", "MEMORY_FRACTION", "fits_in_memory", "load_decoded"]

#: Decoded data above this share of the machine's memory is streamed when the cache is off.
MEMORY_FRACTION = 0.25


@dataclass(frozen=True)
class DecodeOptions:
    """How a folder or Hub source is decoded and served.

    Attributes:
        image_size: side of the square images.
        corrupt: ``"skip"`` or ``"error"``.
        cache_dir: where the data cache lives.
        data_cache: use the prepared-once cache.
        streaming: without the cache, decode training images per batch (``None``: when they do not
            fit in :data:`MEMORY_FRACTION` of the memory).
        workers: parallel decoders (``None``: every available core).
        local_rank, global_rank: this process's ranks (local rank 0 builds the cache, rank 0 reports it).
    """

    image_size: int
    corrupt: str
    cache_dir: Path
    data_cache: bool = True
    streaming: bool | None = None
    workers: int | None = None
    local_rank: int = 0
    global_rank: int = 0


def fits_in_memory(count: int, image_size: int, channels: int = 3) -> bool:
    """Whether ``count`` decoded images take at most :data:`MEMORY_FRACTION` of the physical memory."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on POSIX: assume it fits, as before streaming existed
        return True
    return count * channels * image_size * image_size <= MEMORY_FRACTION * memory


def _decode(source, indices: np.ndarray, options: DecodeOptions) -> tuple[np.ndarray, bool, list]:
    size = options.image_size
    out = np.zeros((len(indices), 3, size, size), dtype=np.uint8)
    colour, failures = decode_into(source, indices, size, out, stop_at=lambda row: options.corrupt == "error",
                                   workers=options.workers)
    return out, colour, failures


def _keep(indices: np.ndarray, failures: dict[int, tuple[str, str]], options: DecodeOptions, dataset: str,
          report: DecodeReport) -> np.ndarray:
    """``indices`` without the unreadable ones (recorded in ``report``), or the error for the first."""
    bad = [i for i in indices.tolist() if i in failures]
    if bad and options.corrupt == "error":
        raise unreadable_error(dataset, *failures[bad[0]])
    report.skipped.extend(failures[i][0] for i in bad)
    return np.setdiff1d(indices, bad) if bad else indices


def _cached(source, selected: np.ndarray, options: DecodeOptions) -> CachedImages:
    wanted = np.zeros(len(source), dtype=bool)
    wanted[selected] = True

    def fill(out: np.ndarray):
        return decode_into(source, np.arange(len(source)), options.image_size, out, workers=options.workers,
                           stop_at=lambda row: options.corrupt == "error" and bool(wanted[row]))

    return ensure_cached(options.cache_dir, dataset=source.dataset, split=source.split, image_size=options.image_size,
                         fingerprint=source.fingerprint(), count=len(source), fill=fill, local_rank=options.local_rank)


def _readable(images: np.ndarray, colour: bool, failures: list) -> torch.Tensor:
    """The decoded rows without the unreadable ones, with three channels if any is colour, else one."""
    keep = np.setdiff1d(np.arange(len(images)), [row for row, _, _ in failures])
    return torch.from_numpy(np.ascontiguousarray(images[keep, : 3 if colour else 1]))


def _none_readable(dataset: str, split: str, report: DecodeReport) -> DatasetError:
    return DatasetError(
        f"Dataset {dataset!r}: none of the {split} images could be read ({len(report.skipped)} skipped); "
        "check the files, or train on the embedded 'photos' dataset."
    )


def _report_cache(dataset: str, entries: list[CachedImages]) -> None:
    sizes = ", ".join(f"{e.path.name} {e.nbytes / 1e6:.1f} MB {'built' if e.built else 'reused'}" for e in entries)
    print(f"Data cache of {dataset!r} in {entries[0].path.parent}: {sizes}", file=sys.stderr)


def load_decoded(train_source, train_idx: np.ndarray, heldout_source, held_idx: np.ndarray,
                 options: DecodeOptions, native_hint: int | None = None):
    """Decode (or open from the cache) the training and held-out images of a folder or Hub source.

    Args:
        train_source: the split training images come from.
        train_idx: their indices in it.
        heldout_source: the split held-out images come from (may be ``train_source``).
        held_idx: their indices in it, disjoint from ``train_idx`` when the sources are the same.
        options: see :class:`DecodeOptions`.
        native_hint: the source's channel count where known in advance (streaming uses it).

    Returns:
        ``(train rows, held-out uint8 tensor, skipped labels)``; both in the source's channel count:
        3 if any image of the data is colour (greyscale ones repeated), else 1.

    Raises:
        DatasetError: for an unreadable image under ``corrupt="error"``, or when no image of a split
            can be read.
    """
    dataset, report = train_source.dataset, DecodeReport()
    same = heldout_source is train_source
    for source in (train_source, heldout_source):
        if len(source) == 0:
            raise DatasetError(
                f"Dataset {dataset!r}: the split {source.split!r} holds no images; choose another split."
            )
    if options.data_cache:
        train_entry = _cached(train_source, np.concatenate([train_idx, held_idx]) if same else train_idx, options)
        held_entry = train_entry if same else _cached(heldout_source, held_idx, options)
        train_idx = _keep(train_idx, train_entry.failures, options, dataset, report)
        held_idx = _keep(held_idx, held_entry.failures, options, dataset, report)
        if options.global_rank == 0:
            _report_cache(dataset, [train_entry] if same else [train_entry, held_entry])
        channels = max(train_entry.images.shape[1], held_entry.images.shape[1])
        train: ImageRows = MappedRows(train_entry.images, train_entry.path, train_idx).with_channels(channels)
        heldout = torch.from_numpy(np.ascontiguousarray(held_entry.images[held_idx]))
    else:
        streaming = options.streaming
        if streaming is None:
            streaming = not fits_in_memory(len(train_idx), options.image_size)
        if not streaming:
            images, train_colour, train_failures = _decode(train_source, train_idx, options)
            report.skipped.extend(label for _, label, _ in train_failures)
        held, held_colour, held_failures = _decode(heldout_source, held_idx, options)
        report.skipped.extend(label for _, label, _ in held_failures)
        heldout = _readable(held, held_colour, held_failures)
        if streaming:
            # Training images are never all decoded, so their channel count cannot be read off them.
            channels = native_hint or heldout.shape[1]
            train = LazyRows(train_source, train_idx, options.image_size, channels, options.corrupt)
        else:
            channels = 3 if train_colour or held_colour else 1
            train = TensorRows(_readable(images, train_colour, train_failures)).with_channels(channels)
            del images
    for split, size in (("training", len(train)), ("held-out", len(heldout))):
        if size == 0:
            raise _none_readable(dataset, split, report)
    warn_skipped(dataset, report)
    return train, convert_channels(heldout, channels), report.skipped

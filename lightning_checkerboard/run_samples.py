"""A run's final evaluation samples, saved one by one so that they can be scored again.

The sample grids of ``samples/`` (``final.png``) are for looking at: 8 × 8 images with white gutters,
whose spectrum is the grid's, not the generator's. The images the run's final measurement scored
are saved apart, as one array: ``samples/final_samples.npz`` in the run directory, member
``images``, ``(N, H, W, C)`` uint8 (``C`` 1 or 3): the images in the order the run made them (under
DDP, each process's share in turn: rank 0's images, then rank 1's, …).
``lightning-checkerboard score <run dir>`` finds that file and scores those images; the result
agrees with the run's recorded checkerboard score within its bound (the saved images are rounded
to 8 bits, the run scored them before rounding).

The file is written atomically, uncompressed members in a zip archive (NumPy's ``.npz``), so
``score`` reads it an image at a time. A received run directory is untrusted: ``score`` reads the
array's header first (no pickles), and only when the file is a regular file inside the run directory.

Example:
    >>> import tempfile, numpy as np
    >>> run = Path(tempfile.mkdtemp())
    >>> path = write_final_samples(run, np.zeros((4, 8, 8, 3), dtype=np.uint8))
    >>> path.relative_to(run).as_posix(), find_final_samples(run) == path
    ('samples/final_samples.npz', True)
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from lightning_checkerboard._io import atomic_write_bytes

__all__ = ["FINAL_SAMPLES", "FINAL_SAMPLES_KEY", "find_final_samples", "write_final_samples"]

#: Where a run keeps its final evaluation samples, relative to the run directory.
FINAL_SAMPLES = "samples/final_samples.npz"
#: The array's name inside the file.
FINAL_SAMPLES_KEY = "images"


def write_final_samples(run_dir: str | os.PathLike, images: np.ndarray) -> Path:
    """Save ``images`` as the run's final evaluation samples; returns the file written.

    Args:
        run_dir: the run directory.
        images: ``(N, H, W, C)`` uint8 with ``C`` 1 or 3.

    Raises:
        ValueError: ``images`` of another shape or dtype.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3) or not len(images):
        raise ValueError(f"images must be (N, H, W, C) uint8 with N >= 1 and C 1 or 3; got {images.dtype} "
                         f"of shape {images.shape}.")
    buffer = io.BytesIO()
    np.savez(buffer, **{FINAL_SAMPLES_KEY: np.ascontiguousarray(images)})
    path = Path(run_dir, *FINAL_SAMPLES.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def find_final_samples(folder: str | os.PathLike) -> Path | None:
    """``folder``'s final evaluation samples when ``folder`` is a run directory that has them, else ``None``.

    Only the name is looked at (a link counts, so that the reader can refuse it with its reason).
    """
    path = Path(folder, *FINAL_SAMPLES.split("/"))
    return path if os.path.lexists(path) else None

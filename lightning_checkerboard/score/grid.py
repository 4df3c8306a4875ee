"""Whether an image looks like a grid of images: gutters of one colour at a fixed pitch.

A sample grid (``torchvision.utils.make_grid``: 8 × 8 samples, 2-pixel white gutters) is scored as
one picture: its gutters are a periodic pattern of their own, so the spectral distance and SWD
measure the grid, and the checkerboard score measures the grid's samples together with their
seams. ``score`` warns when it is given such pictures.

A gutter is a run of rows (or columns) that are each one colour from end to end, all the same
colour. An image looks like a grid along an axis when at least three such runs, all of one width,
start at equal spacing (the pitch), the width is at most a quarter of the pitch, and the content
before the first and after the last is at most one pitch: the runs split the axis into tiles.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grid_pitch"]

#: The fewest gutters that make a grid along an axis (two tiles between three gutters).
MIN_GUTTERS = 3
#: The smallest pitch looked for, in pixels.
MIN_PITCH = 6
#: The largest spread, in 8-bit levels, of a line still counted as one colour (lossy formats blur the gutters).
TOLERANCE = 2.0


def _uniform_lines(image: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per line along ``axis`` (1: rows, 2: columns of a ``(C, H, W)`` image): is it one colour, and which."""
    other = 2 if axis == 1 else 1
    spread = (image.max(axis=other) - image.min(axis=other)).max(axis=0)
    return spread <= TOLERANCE, image.mean(axis=other)


def _axis_pitch(uniform: np.ndarray, colour: np.ndarray) -> int | None:
    length = len(uniform)
    candidates = np.flatnonzero(uniform)
    if len(candidates) < MIN_GUTTERS:
        return None
    # The gutter colour: that of the most lines that are one colour (rounded, so a blurred gutter still counts).
    keys = [tuple(np.round(colour[:, i] / (2 * TOLERANCE + 1)).astype(int)) for i in candidates]
    values, counts = np.unique(np.array(keys), axis=0, return_counts=True)
    gutter = values[np.argmax(counts)]
    mask = np.zeros(length, dtype=bool)
    mask[candidates[[key == tuple(gutter) for key in keys]]] = True
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    starts, stops = edges[0::2], edges[1::2]
    widths = stops - starts
    if len(starts) < MIN_GUTTERS or not (widths == widths[0]).all():
        return None
    gaps = np.diff(starts)
    pitch = int(gaps[0])
    if not (gaps == pitch).all() or pitch < MIN_PITCH or 4 * widths[0] > pitch:
        return None
    if starts[0] > pitch or length - stops[-1] > pitch:
        return None
    return pitch


def grid_pitch(image: np.ndarray) -> int | None:
    """The pitch in pixels of the gutters of ``image`` when it looks like a grid of images, else ``None``.

    Args:
        image: ``(C, H, W)``, uint8 or float in [0, 1].

    Example:
        >>> tiles = np.random.default_rng(0).integers(0, 200, (1, 3, 3, 8, 8))
        >>> grid = np.full((1, 3 * 10 + 2, 3 * 10 + 2), 255, dtype=np.uint8)
        >>> for i in range(3):
        ...     for j in range(3):
        ...         grid[:, 2 + 10 * i : 10 + 10 * i, 2 + 10 * j : 10 + 10 * j] = tiles[:, i, j]
        >>> grid_pitch(grid), grid_pitch(tiles[:, 0, 0].astype(np.uint8))
        (10, None)
    """
    array = np.asarray(image)
    pixels = array.astype(np.float32) * (1.0 if array.dtype == np.uint8 else 255.0)
    found = [_axis_pitch(*_uniform_lines(pixels, axis)) for axis in (1, 2)]
    pitches = [p for p in found if p is not None]
    return min(pitches) if pitches else None

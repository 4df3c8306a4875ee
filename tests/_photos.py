"""Seeded random crops of the package's photographs (bundled with scikit-image), and synthetic grid patterns.

Shared by the metric tests: every claim about the checkerboard score is checked on real photographs,
whose steep, edge-laden spectra are what makes a grid-peak detector hard, not on synthetic noise.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from lightning_checkerboard.data.photos import PHOTO_NAMES, _load_photos

__all__ = ["PHOTO_NAMES", "grid_pattern", "load_photos", "photo_crops"]


@lru_cache(maxsize=None)
def load_photos() -> tuple[np.ndarray, ...]:
    """The package's photographs (:data:`~lightning_checkerboard.data.photos.PHOTO_NAMES`) as float64
    ``(H, W, 3)`` arrays in [0, 1]."""
    return tuple(photo.astype(np.float64) / 255.0 for photo in _load_photos())


def photo_crops(count: int, size: int, seed: int = 0, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """``count`` random ``size x size`` crops, cycling through the photos, as float64 ``(count, 3, size, size)``.

    Values are mapped linearly from [0, 1] to [low, high], which leaves head-room to add a pattern
    without clipping (clipping would change the pattern's amplitude).
    """
    rng = np.random.default_rng(seed)
    photos = load_photos()
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        top = rng.integers(0, photo.shape[0] - size + 1)
        left = rng.integers(0, photo.shape[1] - size + 1)
        crops.append(photo[top : top + size, left : left + size].transpose(2, 0, 1))
    return torch.from_numpy(low + (high - low) * np.stack(crops))


def grid_pattern(period: int, size: int, rms_levels: float, seed: int = 0, channels: int = 3) -> torch.Tensor:
    """A zero-mean pattern repeating every ``period`` pixels, with RMS ``rms_levels / 255``.

    Period 2 is the classic checkerboard ``(-1)**(x + y)``; longer periods tile a random fixed
    ``period x period`` block (the same in every channel), like the uneven overlap of stacked stride-2
    deconvolutions. Shape ``(channels, size, size)``, float64.
    """
    if period == 2:
        tile = np.array([[1.0, -1.0], [-1.0, 1.0]])
    else:
        tile = np.random.default_rng(1000 + seed).standard_normal((period, period))
        tile -= tile.mean()
        tile /= np.sqrt(np.mean(tile**2))
    reps = size // period
    pattern = np.tile(tile, (reps, reps)) * rms_levels / 255.0
    return torch.from_numpy(np.broadcast_to(pattern, (channels, size, size)).copy())

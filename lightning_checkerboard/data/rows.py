"""Training images served by index, a whole batch per call: from memory, from the memory-mapped
cache, or decoded from the source on demand (streaming).

All three are map-style datasets, so the batch order stays the sampler's (a pure function of seed,
iteration and rank) whichever one serves the pixels. Each returns ``uint8`` ``(B, C, S, S)`` batches
in the channel count it was asked for (see :func:`~.images.convert_channels`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_checkerboard.data.decode import decode_chunk, unreadable_error
from lightning_checkerboard.data.images import convert_channels

__all__ = ["ImageRows", "LazyRows", "MappedRows", "TensorRows"]


class ImageRows(Dataset):
    """Base: ``len`` images of ``native_channels`` channels, served with ``channels``.

    ``__getitems__`` makes a DataLoader ask for a whole batch at once, so a batch costs one gather.
    """

    native_channels: int

    def __init__(self, native_channels: int):
        self.native_channels = native_channels
        self.channels = native_channels

    def with_channels(self, channels: int) -> ImageRows:
        """Serve ``channels`` (1 or 3) from now on; returns ``self``."""
        self.channels = channels
        return self

    def _gather(self, indices: list[int]) -> torch.Tensor:
        raise NotImplementedError

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        return convert_channels(self._gather(list(indices)), self.channels)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.__getitems__([index])[0]


class TensorRows(ImageRows):
    """Images held in memory as one ``uint8`` tensor ``(N, C, S, S)``."""

    def __init__(self, images: torch.Tensor):
        super().__init__(images.shape[1])
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def _gather(self, indices: list[int]) -> torch.Tensor:
        return self.images[torch.as_tensor(indices)]


class MappedRows(ImageRows):
    """Some rows of a cached ``.npy`` file, read through a memory map.

    The map stays valid when the cache entry is rebuilt meanwhile (the old file lives on while it is
    mapped); forked DataLoader workers share it, and a pickled copy (spawned workers) maps the file
    again by its path.

    Args:
        images: the read-only map of the file (``numpy.load(path, mmap_mode="r")``).
        path: the file.
        rows: which of its rows, in the order served.
    """

    def __init__(self, images: np.ndarray, path: Path, rows: np.ndarray):
        super().__init__(images.shape[1])
        self.path, self.rows = Path(path), np.asarray(rows, dtype=np.int64)
        self._images = images

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_images": None}

    def _gather(self, indices: list[int]) -> torch.Tensor:
        if self._images is None:
            self._images = np.load(self.path, mmap_mode="r")
        return torch.from_numpy(self._images[self.rows[indices]])

    def materialize(self) -> torch.Tensor:
        """All the rows as one in-memory tensor (for small held-out sets)."""
        return self.__getitems__(list(range(len(self))))


class LazyRows(ImageRows):
    """Images decoded from the source when a batch asks for them, never all held at once.

    An unreadable image is replaced by the next readable one of the list (with a warning), so the
    batch stays the same for the same indices, or raises under ``corrupt="error"``.

    Args:
        source: a folder or Hub split (has ``chunk(indices)`` and ``dataset``).
        indices: which of its images, in the order served.
        image_size: side of the served images.
        native_channels: the channel count the images are brought to before ``channels`` applies.
        corrupt: ``"skip"`` or ``"error"``.
    """

    def __init__(self, source, indices: np.ndarray, image_size: int, native_channels: int, corrupt: str):
        super().__init__(native_channels)
        self.source, self.indices = source, np.asarray(indices, dtype=np.int64)
        self.image_size, self.corrupt = image_size, corrupt
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.indices)

    def _gather(self, indices: list[int]) -> torch.Tensor:
        chunk = self.source.chunk(self.indices[indices])
        result = decode_chunk(chunk, self.image_size)
        images = torch.from_numpy(result.images)
        images = convert_channels(images, self.native_channels) if images.shape[1] != self.native_channels else images
        for k, reason in result.failures:
            images[k] = self._replacement(indices[k], chunk.labels[k], reason)
        return images

    def _replacement(self, index: int, label: str, reason: str) -> torch.Tensor:
        if self.corrupt == "error":
            raise unreadable_error(self.source.dataset, label, reason)
        if label not in self._warned:
            self._warned.add(label)
            warnings.warn(f"Dataset {self.source.dataset!r}: cannot read image {label} ({reason}); serving the next "
                          "readable image in its place.", UserWarning, stacklevel=2)
        for step in range(1, len(self)):
            candidate = (index + step) % len(self)
            result = decode_chunk(self.source.chunk(self.indices[[candidate]]), self.image_size)
            if not result.failures:
                return convert_channels(torch.from_numpy(result.images), self.native_channels)[0]
        raise unreadable_error(self.source.dataset, label, reason)

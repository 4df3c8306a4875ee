"""``photos`` split by photograph: training crops from some photographs, held-out crops from others.

:class:`~lightning_checkerboard.data.ImageDataModule`'s ``photos`` holds out a strip of every
photograph, so its held-out crops are new pixels of photographs seen in training. A task measured
against exact references (super-resolution) can ask for more: photographs never seen at all.
:class:`HeldoutPhotosDataModule` trains on crops of every bundled photograph but ``heldout_photos``
and measures on crops of those.

Both sets are cut by the ``photos`` recipe (:mod:`~lightning_checkerboard.data.photos`) from the
part of a photograph it trains on (the rows above the reserved strip), so held-out crops have the
same scale distribution as training crops: the training crops from a build seeded by ``seed``, the
held-out crops from a build seeded by ``split_seed`` (so runs with different seeds are scored against
the same images). Each build is cached like ``photos``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from typing_extensions import override

from lightning_checkerboard.data.datamodule import ImageDataModule
from lightning_checkerboard.data.photos import PHOTO_NAMES, default_train_samples, ensure_photo_cache, load_photo_cache
from lightning_checkerboard.data.rows import TensorRows
from lightning_checkerboard.data.sources import SourceData

__all__ = ["DEFAULT_HELDOUT_PHOTOS", "HeldoutPhotosDataModule", "check_heldout_photos"]

#: Two detailed natural photographs: a portrait with a flag and fabric, and a motorcycle in a workshop.
DEFAULT_HELDOUT_PHOTOS = ("astronaut", "stereo_motorcycle")
#: Crops of the unused split of each build (the photos recipe cuts both splits; one is enough here).
_UNUSED = len(PHOTO_NAMES)


def check_heldout_photos(names: Sequence[str] | str, name: str = "heldout_photos") -> tuple[str, ...]:
    """``names`` as a tuple if they are distinct bundled photographs, at least one and not all.

    Raises:
        ValueError: an unknown or repeated name, none or all of them.

    Example:
        >>> check_heldout_photos("astronaut")
        ('astronaut',)
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    unknown = [photo for photo in names if photo not in PHOTO_NAMES]
    if unknown or not names or len(set(names)) != len(names) or len(names) >= len(PHOTO_NAMES):
        raise ValueError(f"{name} must be distinct names from {', '.join(PHOTO_NAMES)}, at least one and not all; "
                         f"got {list(names)!r}.")
    return names


class HeldoutPhotosDataModule(ImageDataModule):
    """``photos`` whose held-out images come from photographs that training never sees.

    Everything else is :class:`~lightning_checkerboard.data.ImageDataModule`'s: batches in [-1, 1],
    ``heldout_images()`` in [0, 1], resumable shuffling, the fingerprint (which differs from
    ``photos``'s, since the held-out pixels do). ``describe()["heldout_from"]`` names the photographs.

    Args:
        image_size, batch_size, seed, num_workers, cache_dir, split_seed: as for ``ImageDataModule``.
        heldout_photos: names from :data:`~lightning_checkerboard.data.photos.PHOTO_NAMES`, at least
            one, not all.
        train_samples: training crops (default as ``photos``: 2048 up to 64 px, fewer above).
        heldout_samples: held-out crops, balanced over ``heldout_photos``.

    Raises:
        ValueError: an unknown or repeated photograph name, none or all of them, or an argument
            ``ImageDataModule`` rejects.

    Example:
        >>> dm = HeldoutPhotosDataModule(image_size=16, batch_size=4, train_samples=12, heldout_samples=4)
        >>> dm.heldout_photos
        ('astronaut', 'stereo_motorcycle')
    """

    def __init__(
        self,
        image_size: int = 64,
        batch_size: int = 64,
        seed: int = 0,
        *,
        heldout_photos: Sequence[str] = DEFAULT_HELDOUT_PHOTOS,
        train_samples: int | None = None,
        heldout_samples: int = 256,
        num_workers: int = 0,
        cache_dir: str | os.PathLike | None = None,
        split_seed: int = 0,
    ) -> None:
        super().__init__("photos", image_size=image_size, batch_size=batch_size, seed=seed, num_workers=num_workers,
                         train_samples=train_samples, heldout_samples=heldout_samples, cache_dir=cache_dir,
                         split_seed=split_seed)
        self.heldout_photos = check_heldout_photos(heldout_photos)

    def _builds(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """``(crops, unused, seed)`` of the training build and of the held-out build."""
        total, held = len(PHOTO_NAMES), len(self.heldout_photos)
        train = self.train_samples or default_train_samples(self.image_size)
        # The recipe balances crops over photographs: this many per photograph leaves enough of each kind.
        return ((total * math.ceil(train / (total - held)), _UNUSED, self.seed),
                (total * math.ceil(self.heldout_samples / held), _UNUSED, self.split_seed))

    def _ensure(self, build: tuple[int, int, int]):
        crops, unused, seed = build
        return ensure_photo_cache(self.cache_dir, self.image_size, crops, unused, seed, self.split_seed)

    @override
    def prepare_data(self) -> None:
        """Build (or find) both caches."""
        for build in self._builds():
            self._ensure(build)

    @override
    def setup(self, stage: str | None = None) -> None:
        """Load both builds and keep the crops of the right photographs (once; later calls do nothing)."""
        if self._data is not None:
            return
        train_build, heldout_build = self._builds()
        train_crops = load_photo_cache(self._ensure(train_build), self.image_size)["train"]
        heldout_crops = load_photo_cache(self._ensure(heldout_build), self.image_size)["train"]
        keep_train = [i for i, name in enumerate(train_crops.photo) if name not in self.heldout_photos]
        keep_heldout = [i for i, name in enumerate(heldout_crops.photo) if name in self.heldout_photos]
        train_count = self.train_samples or default_train_samples(self.image_size)
        self._data = SourceData(
            train=TensorRows(train_crops.images[keep_train[:train_count]]),
            heldout=heldout_crops.images[keep_heldout[: self.heldout_samples]],
            heldout_from=f"photographs never trained on: {', '.join(self.heldout_photos)}",
        )
        self._native_channels = 3
        self._fingerprint = self._compute_fingerprint()

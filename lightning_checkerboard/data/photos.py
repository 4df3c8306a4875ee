"""``photos``: seeded random crops of the colour photographs bundled with scikit-image.

The embedded default dataset: it needs no network and no download, so every recipe and CI job can
run on it. Each photograph is split by rows: the top part feeds training crops, a reserved strip at
the bottom feeds held-out crops, so the two splits share no pixel (the crop region is sliced out
before resampling, so not even a filter tap reaches across the boundary).

Crops vary in scale: each crop takes a square box of the photograph whose side is drawn
log-uniformly between the crop size and up to four times it, then shrinks it to the crop size with
an antialiased filter. Where a photograph is smaller than the crop (256-pixel crops of
``chelsea``), the box is as large as the region allows and is enlarged instead. Within a photograph
both splits draw box sizes from the same range, so held-out images are distributed like training
images at the same scale.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = [
    "PHOTO_NAMES",
    "PHOTOS_VERSION",
    "PhotoCrops",
    "build_photo_crops",
    "default_train_samples",
    "ensure_photo_cache",
    "heldout_strip_rows",
    "load_photo_cache",
    "photo_cache_path",
    "report_photo_cache",
]

#: The scikit-image photographs used, all RGB and bundled with the package (no ``pooch`` needed).
PHOTO_NAMES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
)

#: Bump when the crop recipe changes, so caches built by an older recipe are not reused.
PHOTOS_VERSION = 1

_HELDOUT_FRACTION = 0.25
_MAX_DOWNSCALE = 4


@dataclass(frozen=True)
class PhotoCrops:
    """One split of the photo crops.

    Attributes:
        images: ``uint8`` tensor ``(N, 3, S, S)``.
        photo: name of the source photograph of each crop.
        top, left, box: the square region ``[top, top+box) x [left, left+box)`` of the photograph
            that was resampled into each crop.
        flip: whether each crop was mirrored left-right.
    """

    images: torch.Tensor
    photo: list[str]
    top: list[int]
    left: list[int]
    box: list[int]
    flip: list[bool]


@lru_cache(maxsize=1)
def _load_photos() -> tuple[np.ndarray, ...]:
    import skimage.data

    photos = []
    for name in PHOTO_NAMES:
        photo = getattr(skimage.data, name)()
        if isinstance(photo, tuple):  # stereo_motorcycle: (left, right, disparity); the views overlap
            photo = photo[0]
        photos.append(np.ascontiguousarray(photo[..., :3]))
    return tuple(photos)


def default_train_samples(image_size: int) -> int:
    """Training crops built when none are asked for: 2048 up to 64 px, fewer above (~25-100 MB)."""
    return 2048 if image_size <= 64 else 1024 if image_size <= 128 else 512


def heldout_strip_rows(height: int, size: int) -> int:
    """Rows at the bottom of a photograph reserved for held-out crops.

    A quarter of the rows, raised to ``size`` where that fits in half the photograph, so large crops
    need no more enlarging in one split than in the other.

    Args:
        height: the photograph's height in pixels.
        size: the crop side in pixels.
    """
    return min(max(math.ceil(_HELDOUT_FRACTION * height), size), height // 2)


def _crop_split(count: int, size: int, rng: np.random.Generator, heldout: bool) -> PhotoCrops:
    photos = _load_photos()
    # Balanced over photographs (not over pixels), in a seeded order: the large retina and Hubble
    # images would otherwise dominate.
    which = rng.permutation(np.resize(np.arange(len(photos)), count))
    uniforms = rng.random((count, 4))
    images = np.empty((count, 3, size, size), dtype=np.uint8)
    tops, lefts, boxes, flips = [], [], [], []
    for i, p in enumerate(which):
        photo = photos[p]
        height, width = photo.shape[:2]
        strip = heldout_strip_rows(height, size)
        row0, rows = (height - strip, strip) if heldout else (0, height - strip)
        # The same box range for both splits of a photograph (see the module docstring).
        hi = min(height - strip, strip, width, _MAX_DOWNSCALE * size)
        lo = min(size, hi)
        box = int(round(math.exp(math.log(lo) + uniforms[i, 0] * (math.log(hi) - math.log(lo)))))
        top = row0 + int(uniforms[i, 1] * (rows - box + 1))
        left = int(uniforms[i, 2] * (width - box + 1))
        flip = bool(uniforms[i, 3] < 0.5)
        # Slice first, then resample: the filter only ever sees pixels of this split's region.
        region = Image.fromarray(photo[top : top + box, left : left + box])
        crop = np.asarray(region.resize((size, size), Image.Resampling.BILINEAR) if box != size else region)
        if flip:
            crop = crop[:, ::-1]
        images[i] = crop.transpose(2, 0, 1)
        tops.append(top)
        lefts.append(left)
        boxes.append(box)
        flips.append(flip)
    names = [PHOTO_NAMES[p] for p in which]
    return PhotoCrops(torch.from_numpy(images), names, tops, lefts, boxes, flips)


def build_photo_crops(
    image_size: int, train_samples: int, heldout_samples: int, seed: int, split_seed: int
) -> dict[str, PhotoCrops]:
    """Cut the training and held-out crops.

    Args:
        image_size: crop side in pixels.
        train_samples: number of training crops.
        heldout_samples: number of held-out crops.
        seed: seeds the training crops.
        split_seed: seeds the held-out crops, kept apart from ``seed`` so runs with different seeds
            are scored against the same held-out images.

    Returns:
        ``{"train": PhotoCrops, "heldout": PhotoCrops}``.
    """
    return {
        "train": _crop_split(train_samples, image_size, np.random.default_rng([seed, 0]), heldout=False),
        "heldout": _crop_split(heldout_samples, image_size, np.random.default_rng([split_seed, 1]), heldout=True),
    }


def photo_cache_path(
    cache_dir: Path, image_size: int, train_samples: int, heldout_samples: int, seed: int, split_seed: int
) -> Path:
    """Where the crops built with these parameters are cached."""
    params = {
        "version": PHOTOS_VERSION,
        "photos": PHOTO_NAMES,
        "image_size": image_size,
        "train_samples": train_samples,
        "heldout_samples": heldout_samples,
        "seed": seed,
        "split_seed": split_seed,
    }
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / f"photos-v{PHOTOS_VERSION}-{image_size}px-{digest}"


def _to_dataset(split: PhotoCrops):
    from datasets import Dataset, Features, Value

    features = Features(
        {
            "pixels": Value("binary"),
            "photo": Value("string"),
            "top": Value("int32"),
            "left": Value("int32"),
            "box": Value("int32"),
            "flip": Value("bool"),
        }
    )
    # Raw bytes, not an Image feature: loading is a single buffer copy instead of a PNG decode per crop.
    return Dataset.from_dict(
        {
            "pixels": [image.numpy().tobytes() for image in split.images],
            "photo": split.photo,
            "top": split.top,
            "left": split.left,
            "box": split.box,
            "flip": split.flip,
        },
        features=features,
    )


def _from_dataset(dataset, image_size: int) -> PhotoCrops:
    table = dataset.with_format("arrow")[:]
    raw = b"".join(table.column("pixels").to_pylist())
    images = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).copy().reshape(-1, 3, image_size, image_size))
    return PhotoCrops(
        images,
        table.column("photo").to_pylist(),
        table.column("top").to_pylist(),
        table.column("left").to_pylist(),
        table.column("box").to_pylist(),
        table.column("flip").to_pylist(),
    )


def ensure_photo_cache(
    cache_dir: Path, image_size: int, train_samples: int, heldout_samples: int, seed: int, split_seed: int
) -> Path:
    """Build and cache the crops unless a cache for these parameters exists; return its path.

    The cache is a ``DatasetDict`` written with ``save_to_disk`` to a temporary directory and renamed
    into place, so a killed build never leaves a half-written cache behind and concurrent builders
    (DDP ranks, parallel runs) do not corrupt each other's.

    Args:
        cache_dir: root directory of the dataset caches.
        image_size, train_samples, heldout_samples, seed, split_seed: as in :func:`build_photo_crops`.
    """
    path = photo_cache_path(cache_dir, image_size, train_samples, heldout_samples, seed, split_seed)
    if path.is_dir():
        return path
    import datasets

    crops = build_photo_crops(image_size, train_samples, heldout_samples, seed, split_seed)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=cache_dir))
    try:
        with _quiet_datasets():
            datasets.DatasetDict({k: _to_dataset(v) for k, v in crops.items()}).save_to_disk(str(staging))
        os.replace(staging, path)
    except OSError:
        if not path.is_dir():  # a real failure, not a lost race with another builder
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def report_photo_cache(path: Path, built: bool) -> None:
    """Say on stderr which cache entry of the crops a run uses, its size and whether it was built or reused,
    as the folder and Hub datasets say of theirs (the crops are a ``datasets`` folder, not one ``.npy`` file)."""
    size = sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())
    print(f"Data cache of 'photos' in {path.parent}: {path.name}/ (a datasets folder) {size / 1e6:.1f} MB "
          f"{'built' if built else 'reused'}", file=sys.stderr)


def load_photo_cache(path: Path, image_size: int) -> dict[str, PhotoCrops]:
    """Read crops written by :func:`ensure_photo_cache`.

    Returns:
        ``{"train": PhotoCrops, "heldout": PhotoCrops}``.
    """
    import datasets

    with _quiet_datasets():
        stored = datasets.load_from_disk(str(path))
    return {k: _from_dataset(stored[k], image_size) for k in ("train", "heldout")}


@contextmanager
def _quiet_datasets():
    # Progress bars for a one-second save are noise in a training log; restore the user's setting.
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()

"""Dataset names: parse what the user typed, then load it as training rows and held-out images.

Every source ends in the same form, ``uint8`` images resized to ``image_size``: training images
served by index (from memory, the memory-mapped data cache, or decoded on demand; see
:mod:`~.decoded`) and held-out images in memory. Resizing training data is fine; the metrics never
resize (they compare generated images with held-out images of the same size).
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lightning_checkerboard.data.decoded import DecodeOptions, load_decoded
from lightning_checkerboard.data.digits import load_digit_images
from lightning_checkerboard.data.errors import DatasetError
from lightning_checkerboard.data.folder import folder_images
from lightning_checkerboard.data.hub import HUB_SHORTHANDS, HubSpec, load_hub_images
from lightning_checkerboard.data.photos import default_train_samples, ensure_photo_cache, load_photo_cache
from lightning_checkerboard.data.rows import ImageRows, TensorRows

__all__ = [
    "DATASET_FORMS", "DatasetSpec", "DecodeOptions", "SourceData", "load_source", "parse_dataset", "seeded_split",
]

#: What ``dataset=`` accepts, as shown in error messages.
DATASET_FORMS = "photos, digits, " + ", ".join(HUB_SHORTHANDS) + ", hf:<owner/repo>[:split], folder:<path>"

_SHORT_NAMES = ("photos", "digits", *HUB_SHORTHANDS)
_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SPLIT_RE = re.compile(r"^[\w.-]+$")
# Without a test split, a fifth of the images at most go to the held-out split, so a small folder
# still leaves most of its images for training.
_MAX_HELDOUT_FRACTION = 5


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed ``dataset=`` value.

    Attributes:
        kind: ``"photos"``, ``"digits"``, ``"hub"`` or ``"folder"``.
        name: canonical name (``"photos"``, ``"cifar10"``, ``"hf:owner/repo:train"``, ``"folder:/abs/path"``).
        channels: the images' own channel count where known before loading, else ``None``.
        path: the folder, for ``kind="folder"``.
        hub: the Hub dataset, for ``kind="hub"``.
    """

    kind: str
    name: str
    channels: int | None = None
    path: Path | None = None
    hub: HubSpec | None = None


def _unknown(value: str, detail: str = "") -> DatasetError:
    close = difflib.get_close_matches(value.lower(), _SHORT_NAMES, n=1, cutoff=0.5)
    suggestion = f" Did you mean {close[0]!r}?" if close else ""
    return DatasetError(f"Unknown dataset {value!r}{detail}; valid forms: {DATASET_FORMS}.{suggestion}")


def parse_dataset(value: str) -> DatasetSpec:
    """Turn a ``dataset=`` string into a :class:`DatasetSpec` (no I/O beyond resolving a folder path).

    Args:
        value: ``photos``, ``digits``, a Hub shorthand, ``hf:<owner/repo>[:split]`` or ``folder:<path>``.

    Raises:
        DatasetError: for any other value, naming the valid forms and the closest name.

    Example:
        >>> parse_dataset("photos").channels
        3
        >>> parse_dataset("hf:ylecun/mnist").name
        'hf:ylecun/mnist:train'
    """
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"Dataset must be a non-empty string; got {value!r}. Valid forms: {DATASET_FORMS}.")
    value = value.strip()
    if value.startswith("folder:"):
        raw = value[len("folder:") :]
        if not raw:
            raise DatasetError(f"Dataset {value!r} names no folder; write folder:<path to a directory of images>.")
        path = Path(raw).expanduser().resolve()
        return DatasetSpec("folder", f"folder:{path}", path=path)
    if value.startswith("hf:"):
        repo, _, split = value[len("hf:") :].partition(":")
        split = split or "train"
        if not _REPO_RE.match(repo) or not _SPLIT_RE.match(split):
            raise DatasetError(
                f"Dataset {value!r} is not a valid Hub reference; write hf:<owner/repo> or hf:<owner/repo>:<split>."
            )
        return DatasetSpec("hub", f"hf:{repo}:{split}", hub=HubSpec(f"hf:{repo}:{split}", repo, split))
    key = value.lower().replace("-", "_")
    if key == "photos":
        return DatasetSpec("photos", "photos", channels=3)
    if key == "digits":
        return DatasetSpec("digits", "digits", channels=1)
    if key in HUB_SHORTHANDS:
        hub = HUB_SHORTHANDS[key]
        return DatasetSpec("hub", hub.name, channels=hub.channels, hub=hub)
    if key in ("folder", "hf"):
        raise _unknown(value, f" (write {key}:<...>)")
    raise _unknown(value)


@dataclass
class SourceData:
    """A loaded dataset: training and held-out images in the dataset's own channel count.

    Attributes:
        train: ``N`` training images served by index as ``uint8`` ``(B, C, S, S)`` batches.
        heldout: ``uint8`` ``(M, C, S, S)``, disjoint from ``train``.
        heldout_from: how the held-out split was made, for the run record.
        skipped: labels of unreadable images that were skipped.
    """

    train: ImageRows
    heldout: torch.Tensor
    heldout_from: str
    skipped: list[str] = field(default_factory=list)


def seeded_split(
    total: int, heldout_samples: int, train_samples: int | None, split_seed: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint ``(train, held-out)`` index arrays over ``range(total)``, each sorted.

    The held-out part is ``heldout_samples`` images but at most a fifth of ``total`` (with a
    warning when that cuts it); training takes the rest, or ``train_samples`` of it.

    Args:
        total: number of images.
        heldout_samples: wanted held-out size.
        train_samples: cap on the training size, or ``None`` for all the rest.
        split_seed: seeds the permutation.
        name: dataset name, for messages.

    Raises:
        DatasetError: if ``total`` is too small to hold out even one image.
    """
    held = min(heldout_samples, total // _MAX_HELDOUT_FRACTION)
    if held < 1:
        raise DatasetError(
            f"Dataset {name!r} has only {total} image(s); at least {_MAX_HELDOUT_FRACTION} are needed to hold some "
            "out for the metrics. Add images, or train on the embedded 'photos' dataset."
        )
    if held < heldout_samples:
        warnings.warn(
            f"Dataset {name!r}: holding out {held} of {total} images for the metrics instead of "
            f"heldout_samples={heldout_samples} (at most 1/{_MAX_HELDOUT_FRACTION} of the data).",
            UserWarning,
            stacklevel=2,
        )
    order = np.random.default_rng([split_seed, 2]).permutation(total)
    rest = order[held:] if train_samples is None else order[held : held + train_samples]
    return np.sort(rest), np.sort(order[:held])


def _subset(total: int, count: int | None, split_seed: int, stream: int) -> np.ndarray:
    if count is None or count >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng([split_seed, stream]).permutation(total)[:count])


def load_source(
    spec: DatasetSpec,
    *,
    train_samples: int | None,
    heldout_samples: int,
    seed: int,
    split_seed: int,
    options: DecodeOptions,
) -> SourceData:
    """Load ``spec`` as :class:`SourceData`, building the ``photos`` cache if it is missing.

    Args:
        spec: from :func:`parse_dataset`.
        train_samples: training size (``photos``: crops to cut, default by size; others: a cap).
        heldout_samples: held-out size.
        seed: seeds the ``photos`` training crops.
        split_seed: seeds the held-out selection.
        options: image size, ``corrupt`` policy, cache and streaming settings (see :class:`DecodeOptions`).

    Raises:
        DatasetError: if the data cannot be found, read or split.
    """
    image_size = options.image_size
    if spec.kind == "photos":
        count = train_samples or default_train_samples(image_size)
        path = ensure_photo_cache(options.cache_dir, image_size, count, heldout_samples, seed, split_seed)
        crops = load_photo_cache(path, image_size)
        return SourceData(
            TensorRows(crops["train"].images), crops["heldout"].images, "reserved bottom strip of each photo"
        )
    if spec.kind == "digits":
        images = load_digit_images(image_size)
        train_idx, held_idx = seeded_split(len(images), heldout_samples, train_samples, split_seed, spec.name)
        return SourceData(TensorRows(images[train_idx]), images[held_idx], "seeded subset")
    if spec.kind == "folder":
        source = folder_images(spec.path, spec.name)
        train_idx, held_idx = seeded_split(len(source), heldout_samples, train_samples, split_seed, spec.name)
        train, heldout, skipped = load_decoded(source, train_idx, source, held_idx, options)
        return SourceData(train, heldout, "seeded subset", skipped)
    train_rows, test_rows = load_hub_images(spec.hub)
    if test_rows is not None:
        train_idx = _subset(len(train_rows), train_samples, split_seed, 3)
        held_idx = _subset(len(test_rows), heldout_samples, split_seed, 4)
        heldout_rows, heldout_from = test_rows, "test split"
    else:
        train_idx, held_idx = seeded_split(len(train_rows), heldout_samples, train_samples, split_seed, spec.name)
        heldout_rows, heldout_from = train_rows, "seeded subset"
    train, heldout, skipped = load_decoded(train_rows, train_idx, heldout_rows, held_idx, options, spec.channels)
    return SourceData(train, heldout, heldout_from, skipped)

"""Where the images to score come from: folders, globs, image files, arrays, Hub splits, the embedded photos.

Every source is read in two passes. :func:`survey` opens each image's header only (size and colour
mode, no pixels) so that sizes can be grouped, the grid levels chosen and every size mistake
reported before any pixel is decoded; :meth:`ImageSource.load` then decodes one image at a time, so
memory holds a batch, never the whole set. Files are decoded by the data layer
(:func:`~lightning_checkerboard.data.images.decode_native`): alpha dropped, 16-bit and float
greyscale rescaled to 8 bits, everything else converted to 8-bit RGB.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from lightning_checkerboard.data.decode import CORRUPT_POLICIES
from lightning_checkerboard.data.folder import list_image_files
from lightning_checkerboard.data.images import decode_native

__all__ = [
    "CORRUPT_POLICIES",
    "IMAGE_EXTENSIONS",
    "SOURCE_FORMS",
    "ArrayImages",
    "Entry",
    "FileImages",
    "HubRows",
    "ImageSource",
    "PhotosSource",
    "ScoreError",
    "SkipReport",
    "load_checked",
    "open_source",
    "survey",
    "unreadable",
]

#: File name endings read from folders and globs (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")

#: What a source may be, as error messages list it.
SOURCE_FORMS = "a folder, an image file, a glob pattern, a .npy/.npz array, hf:<owner/repo>[:split] or photos"

# The errors PIL raises for unreadable data: OSError for truncated or unknown files, ValueError and
# SyntaxError for some malformed headers.
_UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
_GLOB_CHARS = re.compile(r"[*?\[]")


class ScoreError(ValueError):
    """A source or option that cannot be scored as asked; the message is one line that says how to fix it."""


@dataclass(frozen=True)
class Entry:
    """One image of a source, as its header describes it.

    Attributes:
        index: position in the source, for :meth:`ImageSource.load`.
        label: the file path or row that names the image in messages.
        height, width: size in pixels.
        channels: 1 for greyscale sources, 3 for colour (alpha is never counted).
    """

    index: int
    label: str
    height: int
    width: int
    channels: int


@dataclass
class SkipReport:
    """Labels of the images a pass left out, by reason."""

    unreadable: list[str] = field(default_factory=list)
    too_small: list[str] = field(default_factory=list)


def _channels_of(mode: str) -> int:
    # getmodebase maps every PIL mode to "L" or "RGB" ("LA", "I;16", "F" -> L; "P", "RGBA", "CMYK" -> RGB),
    # which is how decode_native converts them.
    try:
        return 1 if Image.getmodebase(mode) == "L" else 3
    except KeyError:
        return 3


def _to_chw(array: np.ndarray) -> np.ndarray:
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


class ImageSource:
    """A sequence of images with cheap headers: ``len``, :meth:`probe` and :meth:`load` by index.

    Attributes:
        text: the source as the user gave it.
        kind: ``"files"``, ``"array"`` or ``"hub"``.
    """

    kind = "files"

    def __init__(self, text: str) -> None:
        self.text = text

    def __len__(self) -> int:
        raise NotImplementedError

    def label(self, index: int) -> str:
        """How image ``index`` is named in messages."""
        raise NotImplementedError

    def probe(self, index: int) -> tuple[int, int, int]:
        """``(height, width, channels)`` of image ``index`` without decoding it; raises on unreadable data."""
        raise NotImplementedError

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as ``(C, H, W)``: uint8, or float32 in [0, 1] for float arrays."""
        raise NotImplementedError


class FileImages(ImageSource):
    """Image files read with PIL: a folder's, a glob's matches, or one file."""

    def __init__(self, text: str, paths: list[Path]) -> None:
        super().__init__(text)
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def label(self, index: int) -> str:
        return str(self.paths[index])

    def _open(self, index: int) -> Image.Image:
        return Image.open(self.paths[index])

    def probe(self, index: int) -> tuple[int, int, int]:
        with self._open(index) as image:
            width, height = image.size
            return height, width, _channels_of(image.mode)

    def load(self, index: int) -> np.ndarray:
        with self._open(index) as image:
            return _to_chw(np.asarray(decode_native(image), dtype=np.uint8))


class HubRows(FileImages):
    """The rows of one split of a Hub dataset (``hf:<repo>[:split]``), read a chunk of rows at a time."""

    kind = "hub"
    _CHUNK = 256

    def __init__(self, text: str, rows) -> None:
        super().__init__(text, [])
        self.rows = rows
        self._chunk: tuple[int, object] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _row(self, index: int) -> tuple[object, int]:
        start = index - index % self._CHUNK
        if self._chunk is None or self._chunk[0] != start:
            self._chunk = (start, self.rows.chunk(range(start, min(start + self._CHUNK, len(self.rows)))))
        return self._chunk[1], index - start

    def label(self, index: int) -> str:
        chunk, k = self._row(index)
        return chunk.labels[k]

    def _open(self, index: int) -> Image.Image:
        chunk, k = self._row(index)
        return chunk.open(k)


class ArrayImages(ImageSource):
    """An ``(N, H, W, C)`` or ``(N, H, W)`` array of uint8, or of floats in [0, 1]; alpha (C = 4) is dropped."""

    kind = "array"

    def __init__(self, text: str, array: np.ndarray, name: str) -> None:
        super().__init__(text)
        if array.ndim == 3:
            array = array[..., None]
        if array.ndim == 4 and array.shape[1] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
            raise ScoreError(
                f"{text}: the array looks like N x C x H x W (shape {tuple(array.shape)}); images are read as "
                "N x H x W x C: save array.transpose(0, 2, 3, 1)."
            )
        if array.ndim != 4 or array.shape[-1] not in (1, 3, 4) or array.shape[0] == 0:
            raise ScoreError(
                f"{text}: the array must be N x H x W x C with C 1, 3 or 4 (or N x H x W) and N >= 1; "
                f"got shape {tuple(array.shape)}."
            )
        if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
            raise ScoreError(f"{text}: the array must be uint8, or float in [0, 1]; got dtype {array.dtype}.")
        self.array = array
        self.name = name

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def label(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def probe(self, index: int) -> tuple[int, int, int]:
        _, height, width, channels = self.array.shape
        return int(height), int(width), 1 if channels == 1 else 3

    def load(self, index: int) -> np.ndarray:
        image = np.asarray(self.array[index])[..., :3]
        if image.dtype != np.uint8:
            image = image.astype(np.float32)
            if not np.isfinite(image).all():
                raise ScoreError(f"{self.label(index)}: float images must lie in [0, 1]; this one holds NaN or inf.")
            if image.min() < 0.0 or image.max() > 1.0:
                raise ScoreError(
                    f"{self.label(index)}: float images must lie in [0, 1] (got values in "
                    f"[{float(image.min()):.4g}, {float(image.max()):.4g}]); pass uint8 for 0..255 data."
                )
        return image.transpose(2, 0, 1)


class PhotosSource:
    """The embedded ``photos`` as a reference: held-out crops of the bundled photographs, at any size.

    Crops are cut at the size of the images they are compared with (square crops of the longer side,
    centre-cropped to the group's size), a batch at a time, each batch from its own seed, so any
    number of them costs one batch of memory.
    """

    kind = "photos"
    text = "photos"

    def batches(self, height: int, width: int, count: int, batch_size: int) -> Iterator[np.ndarray]:
        """``(B, 3, height, width)`` uint8 batches adding up to ``count`` crops."""
        from lightning_checkerboard.data.photos import build_photo_crops

        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        for chunk, start in enumerate(range(0, count, batch_size)):
            size = min(batch_size, count - start)
            crops = build_photo_crops(side, 0, size, seed=0, split_seed=chunk)["heldout"].images.numpy()
            yield crops[:, :, top : top + height, left : left + width]


def _image_files(paths) -> list[Path]:
    return [p for p in paths if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]


def _open_array(text: str, path: Path, npz_key: str | None) -> ArrayImages:
    """A ``.npy`` is memory-mapped (read as it is scored); an ``.npz`` member is loaded whole, since
    numpy cannot map archive members."""
    try:
        if path.suffix.lower() == ".npy":
            if npz_key is not None:
                raise ScoreError(f"--npz-key applies to .npz files; {text} is a .npy array.")
            # Memory-mapped: images are read from disk as they are scored.
            return ArrayImages(text, np.load(path, mmap_mode="r", allow_pickle=False), path.name)
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            if npz_key is None and len(keys) != 1:
                raise ScoreError(
                    f"{text} holds {len(keys)} arrays ({', '.join(keys) or 'none'}); name one with --npz-key."
                )
            key = keys[0] if npz_key is None else npz_key
            if key not in keys:
                raise ScoreError(f"{text} has no array {key!r}; its arrays are {', '.join(keys)}.")
            return ArrayImages(text, archive[key], f"{path.name}:{key}")
    except ScoreError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise ScoreError(f"cannot read the array {text} ({_first_line(exc)}).") from None


def _open_hub(text: str) -> HubRows:
    from lightning_checkerboard.data.hub import (
        HubImages,
        hub_is_cached,
        hub_is_offline,
        image_column,
        load_hub_dataset,
    )
    from lightning_checkerboard.data.sources import parse_dataset

    spec = parse_dataset(text).hub
    if hub_is_offline() and not hub_is_cached(spec):
        raise ScoreError(
            f"{spec.name} is not in the local Hugging Face cache and the Hub is offline (HF_HUB_OFFLINE=1); "
            "download it once with network access, or score a folder or an .npz of its images."
        )
    loaded = load_hub_dataset(spec)[spec.split]
    return HubRows(text, HubImages(loaded, image_column(loaded, spec.name), spec.split, spec.name))


def open_source(text: str, role: str, npz_key: str | None = None) -> ImageSource | PhotosSource:
    """Turn what the user typed into a source, reading no pixels.

    Args:
        text: a folder (searched recursively, hidden entries skipped; ``folder:<path>`` also works), an
            image file, a glob pattern (``**`` recurses), a ``.npy``/``.npz`` array,
            ``hf:<owner/repo>[:split]``, or ``photos``.
        role: ``"GENERATED"`` or ``"--reference"``, for messages.
        npz_key: the array to take from an ``.npz`` holding several.

    Raises:
        ScoreError: an unknown source, a folder or glob with no image file, an unreadable array.
        DatasetError: a Hub dataset that cannot be loaded.
    """
    if text == "photos":
        return PhotosSource()
    if text.startswith("hf:"):
        return _open_hub(text)
    path = Path(text.removeprefix("folder:")).expanduser()
    if path.is_dir():
        files = _image_files(list_image_files(path))
        if not files:
            raise ScoreError(
                f"no images found in {role} {text} (subfolders included; extensions {' '.join(IMAGE_EXTENSIONS)})."
            )
        return FileImages(text, files)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".npy", ".npz"):
            return _open_array(text, path, npz_key)
        if suffix in IMAGE_EXTENSIONS:
            return FileImages(text, [path])
        raise ScoreError(f"{role} {text} is a file of unknown type; give {SOURCE_FORMS}.")
    if _GLOB_CHARS.search(text):
        files = _image_files(Path(p) for p in sorted(glob.glob(os.path.expanduser(text), recursive=True)))
        if not files:
            raise ScoreError(f"no images found: the pattern {role} {text!r} matches no image file.")
        return FileImages(text, files)
    raise ScoreError(f"unknown {role} source {text!r}: it is not {SOURCE_FORMS}.")


def survey(source: ImageSource, corrupt: str, skipped: SkipReport) -> list[Entry]:
    """Read every image's header; unreadable images are skipped and counted, or stop the run.

    Args:
        source: from :func:`open_source`.
        corrupt: ``"skip"`` or ``"error"``.
        skipped: collects the labels of unreadable images.

    Raises:
        ScoreError: on the first unreadable image when ``corrupt="error"``, or when no image is readable.
    """
    entries = []
    for index in range(len(source)):
        try:
            height, width, channels = source.probe(index)
        except _UNREADABLE as exc:
            unreadable(source.label(index), exc, corrupt, skipped)
            continue
        entries.append(Entry(index, source.label(index), height, width, channels))
    if not entries:
        raise ScoreError(
            f"no images found in {source.text}: none of its {len(source)} file(s) could be read "
            f"({len(skipped.unreadable)} unreadable)."
        )
    return entries


def unreadable(label: str, exc: BaseException, corrupt: str, skipped: SkipReport) -> None:
    """Count an unreadable image, or raise :class:`ScoreError` for it under ``corrupt="error"``."""
    if corrupt == "error":
        raise ScoreError(
            f"cannot read image {label} ({_first_line(exc)}); remove or repair it, or pass --corrupt skip "
            "to count and skip unreadable images."
        )
    skipped.unreadable.append(label)


def load_checked(source: ImageSource, entry: Entry, corrupt: str, skipped: SkipReport) -> np.ndarray | None:
    """Decode ``entry``; an unreadable image is counted (``None``) or raised as :func:`unreadable` says."""
    try:
        return source.load(entry.index)
    except _UNREADABLE as exc:
        if isinstance(exc, ScoreError):  # a float array out of range is a mistake in the data, not damage
            raise
        unreadable(entry.label, exc, corrupt, skipped)
        return None

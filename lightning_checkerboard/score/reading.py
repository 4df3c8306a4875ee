"""Where the images to score come from: folders, globs, image files, arrays, Hub splits, the embedded photos.

Every source is read in two passes. :func:`survey` opens each image's header only (size and colour
mode, no pixels) so that sizes can be grouped, the grid levels chosen and every size mistake
reported before any pixel is decoded; :meth:`ImageSource.load` then decodes one image at a time, so
memory holds a batch, never the whole set. Files are decoded by the data layer
(:func:`~lightning_checkerboard.data.images.decode_native`): alpha dropped, 16-bit and float
greyscale rescaled to 8 bits, everything else converted to 8-bit RGB.

What is read is treated as untrusted: an image whose header claims more than ``max_pixels`` pixels
(a small file can claim 13000 x 13000) is skipped and counted before anything is decoded; files are
opened only when they are regular files, those of a folder only inside it; an array's shape and
dtype come from its ``.npy`` header (object arrays, which would unpickle, are refused), a ``.npy`` is
memory-mapped and an ``.npz`` member is read one image at a time from the archive, never whole.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from lightning_checkerboard._untrusted import (
    UntrustedFileError,
    array_header,
    describe_kind,
    open_image,
    open_regular,
)
from lightning_checkerboard.data.decode import CORRUPT_POLICIES
from lightning_checkerboard.data.folder import list_image_files
from lightning_checkerboard.data.images import DEFAULT_MAX_PIXELS, decode_native
from lightning_checkerboard.run_samples import FINAL_SAMPLES_KEY, find_final_samples

__all__ = [
    "CORRUPT_POLICIES",
    "DEFAULT_MAX_PIXELS",
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
SOURCE_FORMS = ("a run directory, a folder, an image file, a glob pattern, a .npy/.npz array, "
                "hf:<owner/repo>[:split] or photos")

# The errors PIL raises for unreadable data: OSError for truncated or unknown files, ValueError and
# SyntaxError for some malformed headers.
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, zipfile.BadZipFile, Image.DecompressionBombError)
_GLOB_CHARS = re.compile(r"[*?\[]")
# Array names an error message lists before "… N more".
_KEYS_SHOWN = 5
# An .npz member is refused past this many values in all (the per-image pixel limit applies as well).
_MAX_ARRAY_VALUES = 1 << 40


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
    """Labels of the images a pass left out, by reason.

    Attributes:
        unreadable: images that could not be read or decoded.
        too_small: images smaller than ``--size``.
        too_large: images of more than ``max_pixels`` pixels (never decoded).
        too_large_example: the first of those with its size, ``"label (W×H)"``, for messages.
    """

    unreadable: list[str] = field(default_factory=list)
    too_small: list[str] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)
    too_large_example: str | None = None


def _channels_of(mode: str) -> int:
    # getmodebase maps every PIL mode to "L" or "RGB" ("LA", "I;16", "F" -> L; "P", "RGBA", "CMYK" -> RGB),
    # which is how decode_native converts them.
    try:
        return 1 if Image.getmodebase(mode) == "L" else 3
    except KeyError:
        return 3


def _to_chw(array: np.ndarray) -> np.ndarray:
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _first_line(exc: BaseException, label: str | None = None) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, UntrustedFileError):  # its reason alone: the message names the file already
        return (text.removeprefix(f"{label}: ") if label else text)[:160].rstrip(".")
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


class ImageSource:
    """A sequence of images with cheap headers: ``len``, :meth:`probe` and :meth:`load` by index.

    Attributes:
        text: the source as the user gave it.
        kind: ``"files"``, ``"array"`` or ``"hub"``.
    """

    kind = "files"
    #: One line on where the images were found, when that is not plain from ``text`` (a run directory's samples).
    note: str | None = None

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

    def close(self) -> None:
        """Release the files the source holds open (nothing for most sources)."""


class FileImages(ImageSource):
    """Image files read with PIL: a folder's, a glob's matches, or one file.

    Args:
        text: the source as the user gave it.
        paths: the files.
        root: the folder the files must stay in once links are followed (``None`` for files named
            one by one).
        max_pixels: the most pixels an image may have to be decoded.
    """

    def __init__(self, text: str, paths: list[Path], root: Path | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        super().__init__(text)
        self.paths = paths
        self.root = root
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def label(self, index: int) -> str:
        return str(self.paths[index])

    def _open(self, index: int, max_pixels: int) -> Image.Image:
        return open_image(self.paths[index], max_pixels=max_pixels, root=self.root)

    def probe(self, index: int) -> tuple[int, int, int]:
        # The size is compared with max_pixels by survey(), which counts the images it skips.
        with self._open(index, _MAX_ARRAY_VALUES) as image:
            width, height = image.size
            return height, width, _channels_of(image.mode)

    def load(self, index: int) -> np.ndarray:
        with self._open(index, self.max_pixels) as image:  # checked again: the file may have changed
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

    def _open(self, index: int, max_pixels: int) -> Image.Image:
        chunk, k = self._row(index)
        image = chunk.open(k)
        width, height = image.size
        if width * height > max_pixels:
            image.close()
            raise UntrustedFileError(f"{self.label(index)}: {width}×{height} pixels, more than the {max_pixels} "
                                     "allowed; refusing to decode it.")
        return image


class _NpzMember:
    """One ``.npz`` member read an image at a time from the archive: never decompressed whole.

    The member's shape and dtype come from its ``.npy`` header. Images are read in order from one
    open stream (a read behind the current position starts the stream again), so scoring the
    member decompresses it once and holds one image in memory.
    """

    def __init__(self, path: Path, key: str, name: str, root: Path | None = None) -> None:
        self._stack = contextlib.ExitStack()
        try:
            handle = self._stack.enter_context(open_regular(path, root=root))
            self._archive = self._stack.enter_context(zipfile.ZipFile(handle))
            self._member_name = f"{key}.npy"
            self._name = name
            self._stream = None
            shape, dtype, fortran = self._start()
        except BaseException:
            self._stack.close()
            raise
        if fortran and len(shape) > 1:
            self._stack.close()
            raise ScoreError(f"{name}: the array is stored in Fortran order, which cannot be read an image at a "
                             "time; save numpy.ascontiguousarray(array) instead.")
        self.shape, self.dtype, self.ndim = shape, dtype, len(shape)
        self._image_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize if shape else 0
        self._next = 0

    def _start(self):
        if self._stream is not None:
            self._stream.close()
        self._stream = self._archive.open(self._member_name)
        header = array_header(self._stream, max_elements=_MAX_ARRAY_VALUES, name=self._name)
        self._data_start = self._stream.tell()
        self._next = 0
        return header

    def __getitem__(self, index: int) -> np.ndarray:
        if index < self._next:
            self._start()
        if index > self._next:
            self._stream.seek(self._data_start + index * self._image_bytes)  # reads forward to it
        data = self._stream.read(self._image_bytes)
        if len(data) != self._image_bytes:
            self._next = -1  # the stream's position is unknown: start again next time
            raise ValueError(f"the archive member ends inside image {index} (its header claims {self.shape[0]})")
        self._next = index + 1
        return np.frombuffer(data, dtype=self.dtype).reshape(self.shape[1:])

    def close(self) -> None:
        self._stack.close()


class ArrayImages(ImageSource):
    """An ``(N, H, W, C)`` or ``(N, H, W)`` array of uint8, or of floats in [0, 1]; alpha (C = 4) is dropped.

    Args:
        text: the source as the user gave it.
        array: an array (a memory map of a ``.npy``), or anything with ``shape``, ``dtype`` and
            ``array[index]`` for one image (an ``.npz`` member read from the archive).
        name: how images are named in messages (``name[index]``).
    """

    kind = "array"

    def __init__(self, text: str, array, name: str) -> None:
        super().__init__(text)
        shape = tuple(int(s) for s in array.shape)
        if len(shape) == 4 and shape[1] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
            raise ScoreError(
                f"{text}: the array looks like N x C x H x W (shape {shape}); images are read as "
                "N x H x W x C: save array.transpose(0, 2, 3, 1)."
            )
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] not in (1, 3, 4)) or shape[0] == 0:
            raise ScoreError(
                f"{text}: the array must be N x H x W x C with C 1, 3 or 4 (or N x H x W) and N >= 1; "
                f"got shape {shape}."
            )
        if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
            raise ScoreError(f"{text}: the array must be uint8, or float in [0, 1]; got dtype {array.dtype}.")
        self.array = array
        self.shape = shape if len(shape) == 4 else shape + (1,)
        self.name = name

    def __len__(self) -> int:
        return self.shape[0]

    def label(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def probe(self, index: int) -> tuple[int, int, int]:
        _, height, width, channels = self.shape
        return height, width, 1 if channels == 1 else 3

    def load(self, index: int) -> np.ndarray:
        image = np.asarray(self.array[index]).reshape(self.shape[1:])[..., :3]
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

    def close(self) -> None:
        if isinstance(self.array, _NpzMember):
            self.array.close()


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


def _listed(keys: list[str]) -> str:
    """Array names for a message: the first few, then how many more."""
    shown = ", ".join(k if len(k) <= 40 else k[:39] + "…" for k in keys[:_KEYS_SHOWN]) or "none"
    return shown + (f", … {len(keys) - _KEYS_SHOWN} more" if len(keys) > _KEYS_SHOWN else "")


def _open_array(text: str, path: Path, npz_key: str | None, root: Path | None = None) -> ArrayImages:
    """A ``.npy`` is memory-mapped (read as it is scored); an ``.npz`` member is read an image at a time.

    Either way the array's shape and dtype are read from its header first: an object (pickled) array
    is refused before anything else of it is read. With ``root``, the file must be a regular file
    inside it (a link that leaves it is refused).
    """
    try:
        if path.suffix.lower() == ".npy":
            if npz_key is not None:
                raise ScoreError(f"--npz-key applies to .npz files; {text} is a .npy array.")
            with open_regular(path) as handle:
                shape, dtype, _ = array_header(handle, max_elements=_MAX_ARRAY_VALUES, name=text)
                needed = handle.tell() + int(np.prod(shape, dtype=object)) * dtype.itemsize
                size = os.fstat(handle.fileno()).st_size
            if size < needed:
                raise ScoreError(f"{text}: the file holds {size} bytes, fewer than the {needed} its header "
                                 f"claims (shape {shape}, {dtype}); it is truncated.")
            # Memory-mapped: images are read from disk as they are scored.
            return ArrayImages(text, np.load(path, mmap_mode="r", allow_pickle=False), path.name)
        with open_regular(path, root=root) as handle, zipfile.ZipFile(handle) as archive:
            keys = [n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")]
        if npz_key is None and len(keys) != 1:
            raise ScoreError(f"{text} holds {len(keys)} arrays ({_listed(keys)}); name one with --npz-key.")
        key = keys[0] if npz_key is None else npz_key
        if key not in keys:
            raise ScoreError(f"{text} has no array {key!r}; its arrays are {_listed(keys)}.")
        member = _NpzMember(path, key, f"{path.name}:{key}", root)
        try:
            return ArrayImages(text, member, f"{path.name}:{key}")
        except BaseException:
            member.close()
            raise
    except ScoreError:
        raise
    except UntrustedFileError as exc:
        raise ScoreError(f"cannot read the array {text}: {' '.join(str(exc).split())}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
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


def _run_samples(text: str, run_dir: Path, samples: Path) -> ArrayImages:
    """A run directory's final evaluation samples (:mod:`lightning_checkerboard.run_samples`), read from inside it."""
    shown = samples.relative_to(run_dir).as_posix()
    try:
        source = _open_array(text, samples, FINAL_SAMPLES_KEY, root=run_dir)
    except ScoreError as exc:
        raise ScoreError(f"{text} is a run directory, but its {shown} cannot be scored: {exc}") from None
    source.note = (f"{text} is a run directory: scoring the {len(source)} final evaluation samples of {shown}, "
                   "one by one (not the sample grids)")
    return source


def open_source(text: str, role: str, npz_key: str | None = None,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageSource | PhotosSource:
    """Turn what the user typed into a source, reading no pixels.

    Args:
        text: a run directory (its final evaluation samples, ``samples/final_samples.npz``), a folder
            (searched recursively, hidden entries skipped; ``folder:<path>`` also works), an image file, a glob pattern (``**`` recurses), a ``.npy``/``.npz`` array,
            ``hf:<owner/repo>[:split]``, or ``photos``.
        role: ``"GENERATED"`` or ``"--reference"``, for messages.
        npz_key: the array to take from an ``.npz`` holding several.
        max_pixels: the most pixels an image file may have to be decoded (see :func:`survey`).

    Raises:
        ScoreError: a path that does not exist, an unknown source, a folder or glob with no image
            file, an unreadable array.
        DatasetError: a folder with an entry that cannot be listed or leads outside it (a link loop,
            an unreadable subfolder, a link out of the folder), or a Hub dataset that cannot be loaded.
    """
    if text == "photos":
        return PhotosSource()
    if text.startswith("hf:"):
        return _open_hub(text)
    if not text.strip():
        raise ScoreError(f"{role} is empty; give {SOURCE_FORMS}.")
    path = Path(text.removeprefix("folder:")).expanduser()
    if path.is_dir() and (samples := find_final_samples(path)) is not None:
        if npz_key is not None:
            raise ScoreError(f"{role} {text} is a run directory, whose samples are one array; --npz-key applies "
                             "to .npz files.")
        return _run_samples(text, path, samples)
    if path.is_dir():
        files = _image_files(list_image_files(path))
        if not files:
            raise ScoreError(
                f"no images found in {role} {text} (subfolders included; extensions {' '.join(IMAGE_EXTENSIONS)})."
            )
        return FileImages(text, files, root=path, max_pixels=max_pixels)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".npy", ".npz"):
            return _open_array(text, path, npz_key)
        if suffix in IMAGE_EXTENSIONS:
            return FileImages(text, [path], max_pixels=max_pixels)
        raise ScoreError(f"{role} {text} is a file of unknown type; give {SOURCE_FORMS}.")
    if _GLOB_CHARS.search(text):
        files = _image_files(Path(p) for p in sorted(glob.glob(os.path.expanduser(text), recursive=True)))
        if not files:
            raise ScoreError(f"no images found: the pattern {role} {text!r} matches no image file.")
        return FileImages(text, files, max_pixels=max_pixels)
    if os.path.lexists(path):
        try:
            kind = describe_kind(os.stat(path).st_mode)
        except OSError as exc:  # a dangling link or a link loop
            raise ScoreError(f"{role} {text} cannot be read ({exc.strerror or exc}).") from None
        raise ScoreError(f"{role} {text} is {kind}, not {SOURCE_FORMS}.")
    raise ScoreError(f"{role} {text!r} does not exist: there is no such file or folder (relative paths are read "
                     f"from {os.getcwd()}), and it is not photos or hf:<owner/repo>[:split].")


def survey(source: ImageSource, corrupt: str, skipped: SkipReport,
           max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Entry]:
    """Read every image's header; unreadable images are skipped and counted, or stop the run.

    Images of more than ``max_pixels`` pixels are skipped and counted (``skipped.too_large``) whatever
    ``corrupt`` says, without decoding them: a few hundred kilobytes of PNG can claim gigabytes of pixels.

    Args:
        source: from :func:`open_source`.
        corrupt: ``"skip"`` or ``"error"``.
        skipped: collects the labels of unreadable and too large images.
        max_pixels: the most pixels (width × height) an image may have.

    Raises:
        ScoreError: on the first unreadable image when ``corrupt="error"``, or when no image is left.
    """
    entries = []
    for index in range(len(source)):
        try:
            height, width, channels = source.probe(index)
        except _UNREADABLE as exc:
            unreadable(source.label(index), exc, corrupt, skipped)
            continue
        if height * width > max_pixels:
            skipped.too_large.append(source.label(index))
            if skipped.too_large_example is None:
                skipped.too_large_example = f"{source.label(index)} ({width}×{height})"
            continue
        entries.append(Entry(index, source.label(index), height, width, channels))
    if not entries:
        if skipped.too_large:
            raise ScoreError(
                f"no image of {source.text} can be scored: {len(skipped.too_large)} of its {len(source)} image(s) "
                f"have more than --max-pixels {max_pixels} pixels (the first: {skipped.too_large_example}) and "
                f"{len(skipped.unreadable)} are unreadable; pass a larger --max-pixels to score them."
            )
        raise ScoreError(
            f"no images found in {source.text}: none of its {len(source)} file(s) could be read "
            f"({len(skipped.unreadable)} unreadable)."
        )
    return entries


def unreadable(label: str, exc: BaseException, corrupt: str, skipped: SkipReport) -> None:
    """Count an unreadable image, or raise :class:`ScoreError` for it under ``corrupt="error"``."""
    if corrupt == "error":
        raise ScoreError(
            f"cannot read image {label} ({_first_line(exc, label)}); remove or repair it, or pass --corrupt skip "
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

"""``folder:<path>``: every image file below a directory, read with PIL.

PIL is used directly rather than ``load_dataset("imagefolder")`` so that each file is opened inside
its own ``try``: one corrupt file is skipped (or reported by name) instead of failing the whole
dataset at the first batch.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lightning_checkerboard.data.errors import DatasetError

__all__ = ["FileChunk", "FolderImages", "folder_images", "list_image_files"]


def _image_extensions() -> frozenset[str]:
    # Every format this PIL build can open, so a folder of .webp or .tif works where PIL supports it.
    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def _scan(root: Path) -> list[tuple[str, int, int]]:
    # (relative posix path, size, mtime_ns) of every image file, hidden entries excluded; os.scandir
    # hands over the stat results the fingerprint needs without a second pass over the files.
    extensions = _image_extensions()
    found, pending = [], [""]
    while pending:
        relative = pending.pop()
        prefix = relative + "/" if relative else ""
        with os.scandir(os.path.join(root, relative)) as entries:
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue
                if entry.is_dir(follow_symlinks=False):  # as os.walk: no loops through links
                    pending.append(prefix + name)
                elif "." + name.rpartition(".")[2].lower() in extensions and entry.is_file():
                    stat = entry.stat()
                    found.append((prefix + name, stat.st_size, stat.st_mtime_ns))
    found.sort()
    return found


def list_image_files(root: Path) -> list[Path]:
    """Image files below ``root`` (recursively, hidden entries excluded), in a sorted, stable order.

    Args:
        root: an existing directory.
    """
    return [root / relative for relative, _, _ in _scan(root)]


@dataclass(frozen=True)
class FileChunk:
    """Image files to decode together; picklable, so a worker process can open them itself."""

    paths: tuple[str, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """How each image is named in messages: its path."""
        return self.paths

    def open(self, k: int) -> Image.Image:
        """Open image ``k`` of the chunk (not yet decoded)."""
        return Image.open(self.paths[k])


class FolderImages:
    """The image files below a folder, in a stable order, with a fingerprint of their state.

    Args:
        root: the folder.
        dataset: canonical dataset name, for messages.
    """

    split = "all"

    def __init__(self, root: Path, dataset: str):
        self.dataset = dataset
        entries = _scan(root)
        if not entries:
            raise DatasetError(
                f"Dataset {dataset!r}: no image files found in {root} (subfolders included); add .png or .jpg "
                "images, or train on the embedded 'photos' dataset."
            )
        self._root = str(root)
        self._paths = [relative for relative, _, _ in entries]
        digest = hashlib.sha256()
        for relative, size, mtime in entries:
            digest.update(f"{relative}\0{size}\0{mtime}\n".encode())
        self._fingerprint = digest.hexdigest()

    def __len__(self) -> int:
        return len(self._paths)

    def fingerprint(self) -> str:
        """Hash of every file's relative name, size and modification time: any change changes it."""
        return self._fingerprint

    def chunk(self, indices) -> FileChunk:
        """The images at ``indices`` as one :class:`FileChunk`."""
        return FileChunk(tuple(f"{self._root}/{self._paths[int(i)]}" for i in indices))


def folder_images(root: Path, dataset: str) -> FolderImages:
    """The images below ``root`` as a :class:`FolderImages`.

    Args:
        root: the folder.
        dataset: canonical dataset name, for messages.

    Raises:
        DatasetError: if ``root`` is missing, not a directory, or holds no image file.
    """
    if not root.exists():
        raise DatasetError(f"Dataset {dataset!r}: the folder {root} does not exist; check the path after 'folder:'.")
    if not root.is_dir():
        raise DatasetError(f"Dataset {dataset!r}: {root} is not a directory; 'folder:' takes a directory of images.")
    return FolderImages(root, dataset)

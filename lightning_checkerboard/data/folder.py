"""``folder:<path>``: every image file below a directory, read with PIL.

PIL is used directly rather than ``load_dataset("imagefolder")`` so that each file is opened inside
its own ``try``: one corrupt file is skipped (or reported by name) instead of failing the whole
dataset at the first batch.

A folder is listed by one rule: every entry with an image file's extension must be a regular file
inside the folder once links are followed, and every subfolder must be readable. An entry that breaks
the rule (a link loop, a link leading out of the folder, a dangling link, a FIFO or device named
like an image, a subfolder that cannot be read) stops the listing with one line that names it, since
skipping it would silently score or train on a different set. Links to subfolders are not followed.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_module
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lightning_checkerboard._untrusted import IMAGE_FORMATS, UntrustedFileError, describe_kind, open_image, open_regular, resolve_inside
from lightning_checkerboard.data.errors import DatasetError

__all__ = ["FileChunk", "FolderImages", "folder_images", "list_image_files"]


def _image_extensions() -> frozenset[str]:
    # The extensions of the formats open_image decodes (PNG, JPEG, WebP, BMP, TIFF, GIF), as this PIL build
    # registers them.
    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in IMAGE_FORMATS)


def _refuse(root: Path, relative: str, what: str) -> DatasetError:
    return DatasetError(
        f"{os.path.join(root, relative)}: {what}; every image below {root} must be a regular file inside it and "
        "every subfolder readable: fix or remove this entry."
    )


def _scan(root: Path) -> list[tuple[str, int, int]]:
    # (relative posix path, size, mtime_ns) of every image file, hidden entries excluded; os.scandir
    # hands over the stat results the fingerprint needs without a second pass over the files.
    extensions = _image_extensions()
    found, pending = [], [""]
    while pending:
        relative = pending.pop()
        prefix = relative + "/" if relative else ""
        try:
            with os.scandir(os.path.join(root, relative)) as entries:
                listed = list(entries)
        except OSError as err:
            raise _refuse(root, relative, f"a folder that cannot be read ({err.strerror or err})") from None
        for entry in listed:
            name = entry.name
            if name[0] == ".":
                continue
            if entry.is_dir(follow_symlinks=False):  # as os.walk: no loops through links
                pending.append(prefix + name)
                continue
            if "." + name.rpartition(".")[2].lower() not in extensions:
                continue
            try:
                if entry.is_symlink():
                    resolve_inside(entry.path, root)
                stat = entry.stat()
            except UntrustedFileError as err:
                reason = str(err).split(": ", 1)[-1].rstrip(".").removesuffix("; refusing to read it")
                raise _refuse(root, prefix + name, reason) from None
            except OSError as err:
                raise _refuse(root, prefix + name, f"cannot be read ({err.strerror or err})") from None
            if not stat_module.S_ISREG(stat.st_mode):
                if stat_module.S_ISDIR(stat.st_mode):
                    continue  # a link to a folder: not followed
                raise _refuse(root, prefix + name, f"{describe_kind(stat.st_mode)}, not a regular file")
            found.append((prefix + name, stat.st_size, stat.st_mtime_ns))
    found.sort()
    return found


def list_image_files(root: Path) -> list[Path]:
    """Image files below ``root`` (recursively, hidden entries excluded), in a sorted, stable order.

    Args:
        root: an existing directory.

    Raises:
        DatasetError: an entry the module's rule refuses (a link loop or a link out of ``root``, a
            FIFO or device named like an image, a subfolder that cannot be read).
    """
    return [root / relative for relative, _, _ in _scan(root)]


#: The most pixels an image file may claim to be opened at all; the decoders set tighter limits.
_OPEN_MAX_PIXELS = 1 << 40
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileChunk:
    """Image files to decode together; picklable, so a worker process can open them itself.

    Attributes:
        paths: the files.
        root: the folder they must stay in once links are followed (``None``: anywhere).
    """

    paths: tuple[str, ...]
    root: str | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """How each image is named in messages: its path."""
        return self.paths

    def open(self, k: int) -> Image.Image:
        """Open image ``k`` of the chunk (its header only; nothing is decoded).

        Raises:
            UntrustedFileError: the file is not a regular file inside ``root``, or not a picture.
        """
        return open_image(self.paths[k], max_pixels=_OPEN_MAX_PIXELS, root=self.root)


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
        self._entries = entries
        self._paths = [relative for relative, _, _ in entries]
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self._paths)

    def fingerprint(self) -> str:
        """Hash of every file's relative name, size, modification time and content: any change changes it.

        The content is read and hashed (SHA-256) on first use (the data cache asks for it), so a file
        replaced by another of the same size with its modification time put back is noticed; it costs
        one read of the folder, a small fraction of decoding it. A file that cannot be read hashes
        as such (decoding then reports it under the ``corrupt`` policy).
        """
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for relative, size, mtime in self._entries:
                digest.update(f"{relative}\0{size}\0{mtime}\0".encode())
                digest.update(_content_hash(os.path.join(self._root, relative), self._root))
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def chunk(self, indices) -> FileChunk:
        """The images at ``indices`` as one :class:`FileChunk`."""
        return FileChunk(tuple(f"{self._root}/{self._paths[int(i)]}" for i in indices), self._root)


def _content_hash(path: str, root: str) -> bytes:
    digest = hashlib.sha256()
    try:
        with open_regular(path, root=root) as handle:
            while block := handle.read(_HASH_CHUNK):
                digest.update(block)
    except (OSError, UntrustedFileError) as err:
        return f"unreadable: {type(err).__name__}\n".encode()
    return digest.digest()


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

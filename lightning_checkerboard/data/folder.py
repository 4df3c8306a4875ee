"""``folder:<path>``: every image file below a directory, read with PIL.

PIL is used directly rather than ``load_dataset("imagefolder")`` so that each file is opened inside
its own ``try``: one corrupt file is skipped (or reported by name) instead of failing the whole
dataset at the first batch.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from lightning_checkerboard.data.errors import DatasetError

__all__ = ["folder_images", "list_image_files"]


def _image_extensions() -> frozenset[str]:
    # Every format this PIL build can open, so a folder of .webp or .tif works where PIL supports it.
    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def list_image_files(root: Path) -> list[Path]:
    """Image files below ``root`` (recursively, hidden entries excluded), in a sorted, stable order.

    Args:
        root: an existing directory.
    """
    extensions = _image_extensions()
    files = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        files.extend(
            Path(directory, n) for n in names if not n.startswith(".") and Path(n).suffix.lower() in extensions
        )
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def folder_images(root: Path, dataset: str) -> list[tuple[str, object]]:
    """The images below ``root`` as ``(label, opener)`` pairs for :func:`~.decode.decode_all`.

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
    files = list_image_files(root)
    if not files:
        raise DatasetError(
            f"Dataset {dataset!r}: no image files found in {root} (subfolders included); add .png or .jpg "
            "images, or use --dataset photos."
        )
    return [(str(f), lambda f=f: Image.open(f)) for f in files]

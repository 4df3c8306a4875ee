"""The one way in for files a user receives: run directories, records, pictures, arrays, weights, caches.

Every such file is read as data that may have been written to hurt: a symbolic link that leads out of
the folder it came in, a FIFO or a device where a file should be (a read that never ends, or never
stops), a small file that claims a huge picture or array. The helpers here refuse each of those with
:class:`UntrustedFileError`, a ``ValueError`` whose message is one line naming the path and the
reason, before any of the expensive or unbounded work is done:

- :func:`resolve_inside` follows links and refuses a path whose target leaves ``root``;
- :func:`open_regular` opens without blocking (a FIFO cannot hang the open) and checks, on the open
  descriptor, that it is a regular file; :func:`read_bytes` then reads at most ``max_bytes``, counting
  the bytes actually read (``/dev/zero`` reports a size of 0);
- :func:`open_image` reads a picture's size from its header and refuses more than ``max_pixels``
  before anything is decoded;
- :func:`array_header` reads an ``.npy`` member's shape and dtype from its header, refusing object
  arrays (they unpickle) and more than ``max_elements`` values.

Only the standard library, numpy and Pillow are imported here, lazily where it matters.

Example:
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> with open(os.path.join(root, "result.json"), "w") as f:
    ...     _ = f.write("{}")
    >>> read_bytes(os.path.join(root, "result.json"), root=root, max_bytes=10)
    b'{}'
    >>> os.symlink("/etc/hostname", os.path.join(root, "leak.json"))
    >>> read_bytes(os.path.join(root, "leak.json"), root=root, max_bytes=10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    lightning_checkerboard._untrusted.UntrustedFileError: .../leak.json: a link that leads outside ...
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "IMAGE_FORMATS",
    "UntrustedFileError",
    "array_header",
    "describe_kind",
    "is_regular_file",
    "open_image",
    "open_regular",
    "read_bytes",
    "resolve_inside",
]

_CHUNK = 1 << 20

#: The picture formats :func:`open_image` decodes. Pillow can open more, but some of those hand the file to
#: another program (EPS and PostScript run Ghostscript on it), which a received file must never reach.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")


class UntrustedFileError(ValueError):
    """A received file that is refused: outside its folder, not a regular file, too large, or malformed."""


def describe_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in the words an error message uses."""
    for test, words in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a link")):
        if test(mode):
            return words
    return "not a regular file"


def resolve_inside(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """``path`` with every symbolic link followed, refused when it leaves ``root``.

    Args:
        path: the path as received (relative to the working directory or absolute).
        root: the folder the file must stay in after links are followed (``None``: anywhere, links are
            still resolved, and a link loop is still refused).

    Returns:
        The resolved path.

    Raises:
        UntrustedFileError: a link loop, or a target outside ``root``.
    """
    try:
        resolved = Path(os.path.realpath(path, strict=False))
        # realpath leaves a looping link unresolved; a strict resolve names the loop.
        if os.path.islink(resolved):
            Path(resolved).resolve(strict=True)
    except (OSError, RuntimeError) as err:
        raise UntrustedFileError(f"{path}: cannot be resolved ({_reason(err)}).") from None
    if root is not None:
        base = Path(os.path.realpath(root))
        if resolved != base and not resolved.is_relative_to(base):
            raise UntrustedFileError(f"{path}: a link that leads outside {root}; refusing to read it.")
    return resolved


def is_regular_file(path: str | os.PathLike, root: str | os.PathLike | None = None) -> bool:
    """Whether ``path`` resolves (inside ``root``) to a regular file; never raises, never blocks."""
    try:
        return stat.S_ISREG(os.stat(resolve_inside(path, root)).st_mode)
    except (OSError, UntrustedFileError):
        return False


def _open_checked(path: str | os.PathLike, root: str | os.PathLike | None) -> IO[bytes]:
    resolved = resolve_inside(path, root)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(resolved, flags)
    except FileNotFoundError:
        raise UntrustedFileError(f"{path}: does not exist.") from None
    except OSError as err:
        raise UntrustedFileError(f"{path}: cannot be opened ({_reason(err)}).") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UntrustedFileError(f"{path}: {describe_kind(mode)}, not a regular file; refusing to read it.")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def open_regular(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Iterator[IO[bytes]]:
    """Open ``path`` for binary reading, once it is known to be a regular file inside ``root``.

    The open does not block (a FIFO is opened non-blocking and then refused), and the file kind is
    checked on the opened descriptor, so a file swapped after the check cannot slip through.

    Raises:
        UntrustedFileError: outside ``root``, missing, unreadable, or not a regular file.
    """
    with _open_checked(path, root) as handle:
        yield handle


def read_bytes(path: str | os.PathLike, *, max_bytes: int, root: str | os.PathLike | None = None) -> bytes:
    """The bytes of a regular file inside ``root``, refused past ``max_bytes`` actually read.

    Raises:
        UntrustedFileError: see :func:`open_regular`, or more than ``max_bytes`` bytes.
    """
    with open_regular(path, root=root) as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as err:
            raise UntrustedFileError(f"{path}: unreadable ({_reason(err)}).") from None
    if len(data) > max_bytes:
        raise UntrustedFileError(f"{path}: more than {max_bytes} bytes, more than such a file may hold.")
    return data


def open_image(path: str | os.PathLike, *, max_pixels: int, root: str | os.PathLike | None = None,
               ) -> "PILImage.Image":
    """A picture opened lazily from a regular file inside ``root``, its pixel count checked from the header.

    Pillow reads only the header when it opens a file; the pixels are decoded on first use. A picture of
    more than ``max_pixels`` pixels (width × height, every frame alike) is refused here, before any of
    its pixels is decoded, so a small file that expands to gigabytes costs nothing. The returned image
    holds its file open: use it as a context manager.

    Raises:
        UntrustedFileError: see :func:`open_regular`; not a picture in one of :data:`IMAGE_FORMATS`; more
            than ``max_pixels`` pixels.
    """
    from PIL import Image, UnidentifiedImageError

    stream = _open_checked(path, root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=IMAGE_FORMATS)
            image._exclusive_fp = True  # the stream is the image's own: closing the image (or loading it) closes it
    except Image.DecompressionBombError:
        stream.close()
        raise UntrustedFileError(f"{path}: a picture too large to decode; refusing it.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        stream.close()
        # PIL names the stream it was handed ("<_io.BufferedReader name=23>"), which says nothing here.
        reason = re.sub(r"\s*<_io\.\w+ name=[^>]*>", "", _reason(err))
        raise UntrustedFileError(f"{path}: not a picture that can be read ({reason}).") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise UntrustedFileError(
            f"{path}: {width}×{height} pixels, more than the {max_pixels} allowed; refusing to decode it.")
    return image


def array_header(handle: IO[bytes], *, max_elements: int, name: str) -> tuple[tuple[int, ...], Any, bool]:
    """Shape, dtype and Fortran order of the ``.npy`` data that ``handle`` is positioned at.

    Only the header is read; ``handle`` is left at the first byte of the data.

    Args:
        handle: a binary stream at the start of an ``.npy`` file or ``.npz`` member.
        max_elements: the most values the array may hold.
        name: what to call the array in messages.

    Raises:
        UntrustedFileError: not ``.npy`` data, an object (pickled) dtype, or more than ``max_elements``.
    """
    import numpy as np
    from numpy.lib import format as npy_format

    try:
        version = npy_format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"version {version}")
    except (ValueError, OSError, SyntaxError, TypeError) as err:
        raise UntrustedFileError(f"{name}: not a readable .npy array ({_reason(err)}).") from None
    if dtype.hasobject:
        raise UntrustedFileError(f"{name}: holds Python objects (which would be unpickled); refusing it.")
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count > max_elements:
        shown = "×".join(str(s) for s in shape)
        raise UntrustedFileError(
            f"{name}: an array of {shown} values, more than the {max_elements} allowed; refusing to load it.")
    return tuple(int(s) for s in shape), dtype, bool(fortran)


def _reason(err: BaseException) -> str:
    # The OS's own words without the path it repeats ("[Errno 40] Too many levels of symbolic links").
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return " ".join(str(text).split())

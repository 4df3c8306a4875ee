"""Style images for style transfer: a photograph bundled with scikit-image by name, or an image file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lightning_checkerboard._validation import check_positive_int
from lightning_checkerboard.data.errors import DatasetError
from lightning_checkerboard.data.images import decode_native, resize_square, to_unit_float

__all__ = ["STYLE_IMAGES", "load_style_image"]

#: scikit-image images that ship with the package (no download): usable as ``--style NAME``.
STYLE_IMAGES = (
    "astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins", "colorwheel", "gravel",
    "grass", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "retina", "rocket", "text",
)


def _bundled(name: str) -> Image.Image:
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    if array.dtype != np.uint8:
        array = (array > 0).astype(np.uint8) * 255 if array.dtype == bool else array.astype(np.uint8)
    return Image.fromarray(array)


def load_style_image(style: str | os.PathLike, size: int) -> torch.Tensor:
    """The style image as a ``(3, size, size)`` float tensor in [0, 1].

    The image is center-cropped to a square and resized (antialiased) to ``size``; greyscale images
    are repeated to three channels, alpha is dropped.

    Args:
        style: a name from :data:`STYLE_IMAGES` or the path of an image file.
        size: side in pixels.

    Raises:
        DatasetError: an unknown name that is not a file either, or a file that is not a readable
            image (one line, naming the file).
        ValueError: a non-positive ``size``.

    Example:
        >>> load_style_image("gravel", 64).shape
        torch.Size([3, 64, 64])
    """
    check_positive_int(size, "size")
    text = os.fspath(style)
    if text in STYLE_IMAGES:
        image = _bundled(text)
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise DatasetError(
                f"Style image {text!r} is neither a file nor a bundled image; bundled: {', '.join(STYLE_IMAGES)}."
            )
        if not path.is_file():
            raise DatasetError(f"Style image {text!r} is not a file.")
        try:
            with Image.open(path) as opened:
                image = decode_native(opened)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise DatasetError(f"Style image {text!r} cannot be read as an image ({reason}).") from None
    array = resize_square(decode_native(image), size)
    tensor = to_unit_float(torch.from_numpy(np.array(array)))  # a writable copy
    return tensor.expand(3, -1, -1).contiguous() if tensor.shape[0] == 1 else tensor

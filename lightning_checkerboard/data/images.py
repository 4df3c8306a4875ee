"""Pixel plumbing shared by every source: decode to a native mode, resize, convert channels.

Everything here works on ``uint8`` so a decoded dataset costs one byte per value in memory; scaling
to floats happens per batch.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "RESIZE_MAX_PIXELS",
    "convert_channels",
    "decode_native",
    "max_pixels_for",
    "resize_square",
    "to_unit_float",
]

#: The most pixels (width × height) an image is decoded with when it is scored at its own size: 4096².
#: A 164 KB PNG can claim 13000 × 13000 pixels (10 GB once decoded and transformed); its header is
#: read, compared with the limit, and the image skipped before any pixel is decoded.
DEFAULT_MAX_PIXELS = 4096 * 4096
#: The floor of the limit for images that are centre-cropped and resized to a small square (training
#: folders): 8192², so that photographs of any current camera are read; see :func:`max_pixels_for`.
RESIZE_MAX_PIXELS = 8192 * 8192

# Modes PIL reads from greyscale files; everything else is treated as colour.
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})

# ITU-R BT.601 luma weights, the ones PIL's ``convert("L")`` uses, so a greyscale conversion here
# matches what users get from PIL.
_LUMA = (0.299, 0.587, 0.114)


def max_pixels_for(size: int | None, floor: int = DEFAULT_MAX_PIXELS) -> int:
    """The most pixels an image may have to be decoded for a ``size x size`` result: ``max(64 · size², floor)``.

    Sixty-four times the pixels that are kept leaves room for any reasonable downscale (8x per side);
    the floor keeps ordinary photographs readable whatever the size.

    >>> max_pixels_for(None), max_pixels_for(1024), max_pixels_for(64, RESIZE_MAX_PIXELS)
    (16777216, 67108864, 67108864)
    """
    return floor if size is None else max(64 * size * size, floor)


def decode_native(image: Image.Image) -> Image.Image:
    """Return ``image`` as 8-bit ``"L"`` (greyscale sources) or ``"RGB"`` (everything else).

    Alpha is dropped, not composited: transparent pixels keep their colour, which is what a generator
    trained on the colour channels should see. 16-bit and float greyscale are rescaled to 8 bits
    rather than clipped.

    Args:
        image: an opened PIL image (``load()`` is called here).

    Raises:
        OSError: if the file behind ``image`` is truncated or not an image.
    """
    image.load()
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode in ("1", "LA", "La"):
        return image.convert("L")
    if mode in _GREY_MODES:  # I, I;16*, F: wide-range greyscale
        values = np.asarray(image, dtype=np.float64)
        top = float(values.max()) if values.size else 0.0
        # Integers above 255 are 16-bit data; floats at most 1.0 are unit-range data.
        scale = 65535.0 if top > 255 else (1.0 if mode == "F" and top <= 1.0 else 255.0)
        return Image.fromarray(np.clip(np.rint(values / scale * 255.0), 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


def resize_square(image: Image.Image, size: int) -> np.ndarray:
    """Center-crop ``image`` to a square and resize it to ``size x size`` (antialiased bilinear).

    Args:
        image: an ``"L"`` or ``"RGB"`` PIL image.
        size: output side in pixels.

    Returns:
        ``uint8`` array ``(C, size, size)``, ``C`` 1 or 3.
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    if (width, height) != (size, size):
        # PIL's bilinear filter widens its support when shrinking, so downscaling is antialiased.
        image = image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert a ``(N, C, H, W)`` uint8 batch to ``channels`` (1 or 3).

    Greyscale to RGB repeats the channel; RGB to greyscale takes BT.601 luminance.

    Args:
        images: ``uint8`` tensor with 1 or 3 channels.
        channels: 1 or 3.

    Raises:
        ValueError: if ``channels`` or the input's channel count is not 1 or 3.
    """
    have = images.shape[1]
    if channels not in (1, 3) or have not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels} (input has {have}).")
    if have == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor(_LUMA, dtype=torch.float32).view(1, 3, 1, 1)
    return (images.float() * weights).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` in [0, 255] to ``float32`` in [0, 1]."""
    return images.float().div_(255.0)
